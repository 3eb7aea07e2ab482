package dsmc

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

type work = func(ctx context.Context, s *session) error

func writeJSON(s *session, v any) error {
	enc := json.NewEncoder(s.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// allowedText says which values a setting takes.
func allowedText(st settings.Setting) string {
	if st.Kind == settings.Int {
		return fmt.Sprintf("%d-%d %s", st.Min, st.Max, st.Unit)
	}
	return strings.Join(st.Allowed, ", ")
}

// --- changesetting ---

// changeResult is changesetting's JSON output; a change adds what it released (releaseReport's fields).
type changeResult struct {
	Name    string `json:"name"`
	Old     string `json:"old"`
	New     string `json:"new"`
	Changed bool   `json:"changed"`
	*releaseReport
}

func prepareChangeSetting(o *options) (work, error) {
	name := strings.TrimSpace(o.name.val)
	if name == "" {
		return nil, bad("-action changesetting needs -name N -value V; the settings are: %s", strings.Join(settings.Names(), ", "))
	}
	st, ok := settings.Lookup(name)
	if !ok {
		return nil, bad("-name: %v", settings.UnknownNameError(name))
	}
	if strings.TrimSpace(o.value.val) == "" {
		return nil, bad("-action changesetting needs -value V for %s; allowed: %s", name, allowedText(st))
	}
	value, err := settings.Validate(name, o.value.val)
	if err != nil {
		return nil, bad("-value: %v", err)
	}
	return func(ctx context.Context, s *session) error {
		res := changeResult{Name: name, New: value}
		current, err := s.db.Settings(ctx)
		if err != nil {
			return err
		}
		if _, stored := current[name]; !stored && value == st.Default {
			// Nothing stored means the default is in force already: storing it would change nothing.
			res.Old = st.Default
		} else {
			before, err := sentPolicies(ctx, s.db)
			if err != nil {
				return err
			}
			old, changed, err := s.db.SetSetting(ctx, name, value, actor())
			if err != nil {
				return err
			}
			if old == "" {
				old = st.Default
			}
			res.Old, res.Changed = old, changed
			if changed {
				// A setting that is part of the policies (relay minimum, ciphers, heartbeat, direction)
				// changes them: they go out now when automaticallySendPolicy is true.
				if res.releaseReport, err = releaseSince(ctx, s.db, before); err != nil {
					return fmt.Errorf("%s changed to %s, but releasing the policies failed: %w; run dsm_c -action sendpolicy", name, value, err)
				}
			}
		}
		if s.json {
			return writeJSON(s, res)
		}
		if res.Changed {
			_, err = fmt.Fprintf(s.stdout, "%s: %s -> %s\n", name, res.Old, res.New)
		} else {
			_, err = fmt.Fprintf(s.stdout, "%s: already %s (unchanged)\n", name, res.New)
		}
		if err != nil {
			return err
		}
		return printReport(s, res.releaseReport)
	}, nil
}

// --- viewsetting ---

// settingView is one viewsetting JSON object. Allowed lists the values of enum and bool settings; an
// int setting has Min, Max and Unit instead.
type settingView struct {
	Name        string        `json:"name"`
	Value       string        `json:"value"`
	Default     string        `json:"default"`
	Type        settings.Kind `json:"type"`
	Allowed     []string      `json:"allowed,omitempty"`
	Min         *int          `json:"min,omitempty"`
	Max         *int          `json:"max,omitempty"`
	Unit        string        `json:"unit,omitempty"`
	Description string        `json:"description"`
	IsDefault   bool          `json:"is_default"` // the value equals the default
	Stored      bool          `json:"stored"`     // a value is stored (false: the default applies)
}

func prepareViewSetting(o *options) (work, error) {
	list := settings.Registry
	if o.name.set {
		name := strings.TrimSpace(o.name.val)
		st, ok := settings.Lookup(name)
		if !ok {
			return nil, bad("-name: %v", settings.UnknownNameError(name))
		}
		list = []settings.Setting{st}
	}
	return func(ctx context.Context, s *session) error {
		current, err := s.db.Settings(ctx)
		if err != nil {
			return err
		}
		views := make([]settingView, 0, len(list))
		for _, st := range list {
			v, stored := current[st.Name]
			if !stored {
				v = st.Default
			}
			sv := settingView{Name: st.Name, Value: v, Default: st.Default, Type: st.Kind, Allowed: st.Allowed,
				Unit: st.Unit, Description: st.Description, IsDefault: v == st.Default, Stored: stored}
			if st.Kind == settings.Int {
				sv.Min, sv.Max = &st.Min, &st.Max
			}
			views = append(views, sv)
		}
		if s.json {
			return writeJSON(s, views)
		}
		for _, v := range views {
			st, _ := settings.Lookup(v.Name)
			fmt.Fprintf(s.stdout, "%s=%s  (default %s; allowed: %s)\n", v.Name, v.Value, v.Default, allowedText(st))
			if len(list) == 1 {
				fmt.Fprintf(s.stdout, "  %s\n", v.Description)
			}
		}
		return nil
	}, nil
}

// --- createapikey ---

const maxKeyName = 64

const keyNameRule = "ASCII letters, digits, '.', '_', '-' and spaces, up to 64 characters"

func checkKeyName(name string) error {
	if name == "" {
		return bad("-action createapikey needs -name N, a name for the key (%s), e.g. -name ci-pipeline", keyNameRule)
	}
	if len(name) > maxKeyName {
		return bad("-name %q is %d characters long; use %s", name, len(name), keyNameRule)
	}
	for _, r := range name {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._- ", r)) {
			return bad("-name %q: %q is not allowed in a key name; use %s", name, r, keyNameRule)
		}
	}
	return nil
}

// keyResult is createapikey's JSON output.
type keyResult struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	Prefix string `json:"prefix"`
}

func prepareCreateAPIKey(o *options) (work, error) {
	name := strings.TrimSpace(o.name.val)
	if err := checkKeyName(name); err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		taken := func() error {
			return bad("-name %q: an API key of that name exists already; choose another name (%s)", name, keyNameRule)
		}
		if t, err := s.db.APIKeyNameTaken(ctx, name); err != nil {
			return err
		} else if t {
			return taken()
		}
		key, err := auth.NewAPIKey()
		if err != nil {
			return err
		}
		if err := s.db.InsertAPIKey(ctx, name, key.Prefix, key.Hash); err != nil {
			if t, err2 := s.db.APIKeyNameTaken(ctx, name); err2 == nil && t {
				return taken() // created by someone else meanwhile
			}
			return err
		}
		if s.json {
			return writeJSON(s, keyResult{Name: name, Key: key.Plaintext, Prefix: key.Prefix})
		}
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "HOST"
		}
		_, err = fmt.Fprintf(s.stdout, `API key %q created:

  %s

Store it now: it cannot be shown again (the Manager keeps only its hash). Send it as a bearer token:

  curl --cacert %s -H "Authorization: Bearer %s" https://%s:%d/api/settings
`, name, key.Plaintext, s.folder.Path(pki.CAFile), key.Plaintext, host, s.folder.ConsolePort)
		return err
	}, nil
}

// --- tlsclients ---

const (
	defaultDays = 7
	maxDays     = 36500
)

// oneOf returns the value of whichever of two synonymous flags was given, refusing both.
func oneOf(a, b *strFlag, aName, bName string) (string, bool, error) {
	if a.set && b.set {
		return "", false, bad("give %s or %s, not both (they mean the same)", aName, bName)
	}
	if a.set {
		return strings.TrimSpace(a.val), true, nil
	}
	return strings.TrimSpace(b.val), b.set, nil
}

func prepareTLSClients(o *options) (work, error) {
	days := defaultDays
	d, ok, err := oneOf(&o.value, &o.days, "-value DAYS", "-days DAYS")
	if err != nil {
		return nil, err
	}
	if ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > maxDays {
			return nil, bad("-action tlsclients reads -value (or -days) as a number of days: %q is not a whole number from 1 to %d; e.g. -value 30", d, maxDays)
		}
		days = n
	}
	port := 0
	p, ok, err := oneOf(&o.name, &o.port, "-name PORT", "-port PORT")
	if err != nil {
		return nil, err
	}
	if ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, bad("-action tlsclients reads -name (or -port) as a port: %q is not a port number from 1 to 65535; e.g. -name 4119", p)
		}
		port = n
	}
	return func(ctx context.Context, s *session) error {
		since := time.Now().UTC().Add(-time.Duration(days) * 24 * time.Hour).Format(time.RFC3339)
		obs, err := s.db.Observations(ctx, since, port)
		if err != nil {
			return err
		}
		if s.json {
			if obs == nil {
				obs = []store.Observation{}
			}
			return writeJSON(s, obs)
		}
		where := "all ports"
		if port != 0 {
			where = fmt.Sprintf("port %d", port)
		}
		if len(obs) == 0 {
			_, err := fmt.Fprintf(s.stdout, "No TLS handshakes recorded in the last %d days on %s.\n", days, where)
			return err
		}
		all, old := map[string]bool{}, map[string]bool{}
		for _, ob := range obs {
			all[ob.ClientIP] = true
			if legacy(ob) {
				old[ob.ClientIP] = true
			}
		}
		fmt.Fprintf(s.stdout, "%d of %d clients used TLS older than TLSv1.2 in the last %d days on %s (negotiated it, or were refused offering nothing newer).\n\n",
			len(old), len(all), days, where)
		tw := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "LAST SEEN\tPORT\tCLIENT\tSNI\tUSER-AGENT\tAGENT\tOFFERED\tVERSION\tSUITE\tOUTCOME\tCOUNT\tREASON")
		for _, ob := range obs {
			reason := ""
			if ob.Outcome != "accepted" {
				reason = ob.Reason
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", cell(shortTime(ob.LastSeen)), ob.Port, cell(ob.ClientIP),
				cell(ob.SNI), cell(ob.UserAgent), cell(ob.AgentGUID), cell(ob.OfferedMax), cell(ob.Version), cell(ob.Suite),
				cell(ob.Outcome), ob.Count, cell(reason))
		}
		return tw.Flush()
	}, nil
}

// older reports whether a version name is a known version older than TLS 1.2.
func older(name string) bool {
	v, err := tlspolicy.ParseVersion(name)
	return err == nil && v < tlspolicy.TLSv1_2
}

// legacy reports whether an observation is a client on TLS older than 1.2: it negotiated such a version,
// or its handshake did not finish (rejected or failed) while it offered nothing newer.
func legacy(o store.Observation) bool {
	return older(o.Version) || o.Outcome != "accepted" && older(o.OfferedMax)
}

func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339)
}

const maxCell = 60

// cell makes a table cell of text a client chose (SNI, User-Agent): control characters are escaped so
// that they cannot break the table or drive the terminal, long text is cut, and empty is "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxCell {
			b.WriteString("…")
			break
		}
		switch {
		case !unicode.IsPrint(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// --- exportdsmcert ---

// certResult is exportdsmcert's JSON output.
type certResult struct {
	PEM         string `json:"pem"`
	Fingerprint string `json:"fingerprint"`
	Path        string `json:"path,omitempty"`
}

func prepareExportCert(o *options) (work, error) {
	path := ""
	if o.value.set {
		path = strings.TrimSpace(o.value.val)
		if path == "" {
			return nil, bad("-action exportdsmcert -value needs a file path to write the certificate to, e.g. -value ./tlsfleet-ca.pem; leave -value out to print it")
		}
	}
	return func(ctx context.Context, s *session) error {
		cert, err := readCACert(s)
		if err != nil {
			return err
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
		res := certResult{PEM: string(out), Fingerprint: pki.Fingerprint(cert)}
		if path != "" {
			abs, err := filepath.Abs(path)
			if err != nil {
				return err
			}
			if err := pki.WriteFile(abs, out, 0o644); err != nil {
				return fmt.Errorf("write the fleet CA certificate: %w", err)
			}
			if err := os.Chmod(abs, 0o644); err != nil {
				return err
			}
			res.Path = abs
		}
		switch {
		case s.json:
			return writeJSON(s, res)
		case path == "":
			_, err = s.stdout.Write(out)
		default:
			_, err = fmt.Fprintf(s.stdout, "Wrote the fleet CA certificate to %s\nSHA-256 fingerprint: %s\n", res.Path, res.Fingerprint)
		}
		return err
	}, nil
}

// readCACert reads the fleet CA certificate from the install folder (not its key: dsm_c never creates
// or needs the CA, which the Manager's first start made).
func readCACert(s *session) (*x509.Certificate, error) {
	caPath := s.folder.Path(pki.CAFile)
	data, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("read the fleet CA certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", caPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", caPath, err)
	}
	return cert, nil
}
