package dsmc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"tlsfleet/internal/ops"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

// Every action parses its flags, calls one operation of internal/ops and renders the result: the
// operations layer is where the work and the checks live, shared with the REST API.

type work = func(ctx context.Context, s *session) error

func writeJSON(s *session, v any) error {
	enc := json.NewEncoder(s.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cell is how tables show text a client chose.
var cell = ops.Cell

// --- changesetting ---

func prepareChangeSetting(o *options) (work, error) {
	name := strings.TrimSpace(o.name.val)
	if name == "" {
		return nil, bad("-action changesetting needs -name N -value V; the settings are: %s", strings.Join(settings.Names(), ", "))
	}
	if st, ok := settings.Lookup(name); ok && strings.TrimSpace(o.value.val) == "" {
		return nil, bad("-action changesetting needs -value V for %s; allowed: %s", name, ops.AllowedText(st))
	}
	if _, _, err := ops.CheckSetting(name, o.value.val); err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		res, err := s.ops.ChangeSetting(ctx, actor(), name, o.value.val)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, res)
		}
		if res.Changed {
			_, err = fmt.Fprintf(s.stdout, "%s: %s -> %s\n", res.Name, res.Old, res.New)
		} else {
			_, err = fmt.Fprintf(s.stdout, "%s: already %s (unchanged)\n", res.Name, res.New)
		}
		if err != nil {
			return err
		}
		if res.Applies != "" {
			if _, err := fmt.Fprintf(s.stdout, "Applies to %s.\n", res.Applies); err != nil {
				return err
			}
		}
		if err := printPortImpact(s.stdout, res.ManagerPorts); err != nil {
			return err
		}
		return printReport(s, res.ReleaseReport)
	}, nil
}

// printPortImpact tells what a settings change does to the Manager's own ports, and whom it cuts off.
func printPortImpact(w io.Writer, ports []ops.PortImpact) error {
	if len(ports) == 0 {
		return nil
	}
	changed := 0
	for _, p := range ports {
		if !p.Changed {
			continue
		}
		if changed == 0 {
			fmt.Fprintln(w, "The Manager's ports (a running Manager applies this at once and closes the connections it no longer accepts):")
		}
		changed++
		fmt.Fprintf(w, "  %d (%s): %s (%d suites) -> %s (%d suites)\n", p.Port, p.Role, strings.Join(p.VersionsBefore, ", "), p.SuitesBefore,
			strings.Join(p.Versions, ", "), p.Suites)
		if len(p.CutOff) == 0 {
			fmt.Fprintf(w, "    no client seen on %d in the last %d days is cut off\n", p.Port, ops.CutOffDays)
			continue
		}
		fmt.Fprintf(w, "    cuts off %s seen on %d in the last %d days:\n", ops.Plural(len(p.CutOff), "client", "clients"), p.Port, ops.CutOffDays)
		if err := printCutOff(w, p.CutOff); err != nil {
			return err
		}
	}
	for _, p := range ports {
		if !p.Changed {
			fmt.Fprintf(w, "The Manager's port %d (%s) is unchanged: it accepts %s.\n", p.Port, p.Role, strings.Join(p.Versions, ", "))
		}
	}
	return nil
}

// printCutOff lists the clients a change cuts off, at most ops.MaxListed.
func printCutOff(w io.Writer, list []ops.CutOffClient) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, c := range list {
		if i == ops.MaxListed {
			fmt.Fprintf(tw, "      … and %d more (dsm_c -action tlsclients lists them)\n", len(list)-ops.MaxListed)
			break
		}
		who := c.Computer
		if who == "" {
			who = cell(c.UserAgent)
		}
		fmt.Fprintf(tw, "      %s\t%s\t%s\t%s\tlast seen %s\n", cell(c.Address), who, cell(c.Version), cell(c.Suite), cell(shortTime(c.LastSeen)))
	}
	return tw.Flush()
}

// --- viewsetting ---

func prepareViewSetting(o *options) (work, error) {
	name := ""
	if o.name.set {
		name = strings.TrimSpace(o.name.val)
		if _, ok := settings.Lookup(name); !ok {
			return nil, bad("-name: %v", settings.UnknownNameError(name))
		}
	}
	return func(ctx context.Context, s *session) error {
		views, err := s.ops.ViewSettings(ctx, name)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, views)
		}
		for _, v := range views {
			st, _ := settings.Lookup(v.Name)
			fmt.Fprintf(s.stdout, "%s=%s  (default %s; allowed: %s)\n", v.Name, v.Value, v.Default, ops.AllowedText(st))
			if name != "" {
				fmt.Fprintf(s.stdout, "  %s\n", v.Description)
			}
		}
		return nil
	}, nil
}

// --- createapikey ---

func prepareCreateAPIKey(o *options) (work, error) {
	name := strings.TrimSpace(o.name.val)
	if name == "" {
		return nil, bad("-action createapikey needs -name N, a name for the key (%s), e.g. -name ci-pipeline", ops.KeyNameRule)
	}
	req := ops.KeyRequest{Name: name, Expires: o.expires.val, Scope: o.scope.val}
	if _, err := req.Check(time.Now()); err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		key, err := s.ops.CreateAPIKey(ctx, req)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, key)
		}
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "HOST"
		}
		_, err = fmt.Fprintf(s.stdout, `API key %q created, scope %s, %s:

  %s

Store it now: it cannot be shown again (the Manager keeps only its hash). Send it as a bearer token:

  curl --cacert %s -H "Authorization: Bearer %s" https://%s:%d/api/settings
`, key.Name, key.Scope, expiresText(key.ExpiresAt), key.Key, s.folder.Path(pki.CAFile), key.Key, host, s.folder.ConsolePort)
		return err
	}, nil
}

// --- tlsclients ---

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
	days := ops.DefaultDays
	d, ok, err := oneOf(&o.value, &o.days, "-value DAYS", "-days DAYS")
	if err != nil {
		return nil, err
	}
	if ok {
		n, err := strconv.Atoi(d)
		if err != nil || ops.CheckTLSClients(n, 0) != nil {
			return nil, bad("-action tlsclients reads -value (or -days) as a number of days: %q is not a whole number from 1 to %d; e.g. -value 30", d, ops.MaxDays)
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
		if err != nil || n < 1 || ops.CheckTLSClients(days, n) != nil {
			return nil, bad("-action tlsclients reads -name (or -port) as a port: %q is not a port number from 1 to 65535; e.g. -name 4119", p)
		}
		port = n
	}
	return func(ctx context.Context, s *session) error {
		rep, err := s.ops.TLSClients(ctx, days, port)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, rep.Clients)
		}
		return printTLSClients(s, rep)
	}, nil
}

func printTLSClients(s *session, rep ops.TLSClientsReport) error {
	where := "all ports"
	if rep.Port != 0 {
		where = fmt.Sprintf("port %d", rep.Port)
	}
	if len(rep.Clients) == 0 {
		_, err := fmt.Fprintf(s.stdout, "No TLS handshakes recorded in the last %d days on %s.\n", rep.Days, where)
		return err
	}
	fmt.Fprintf(s.stdout, "%d of %d clients used TLS older than TLSv1.2 in the last %d days on %s (negotiated it, or were refused offering nothing newer).\n\n",
		rep.Legacy, rep.Total, rep.Days, where)
	tw := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LAST SEEN\tPORT\tCLIENT\tSNI\tUSER-AGENT\tAGENT\tOFFERED\tVERSION\tSUITE\tOUTCOME\tCOUNT\tREASON")
	for _, ob := range rep.Clients {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", cell(shortTime(ob.LastSeen)), ob.Port, cell(ob.ClientIP),
			cell(ob.SNI), cell(ob.UserAgent), cell(ob.AgentGUID), cell(ob.OfferedMax), cell(ob.Version), cell(ob.Suite),
			cell(ob.Outcome), ob.Count, cell(reason(ob)))
	}
	return tw.Flush()
}

func reason(ob store.Observation) string {
	if ob.Outcome == "accepted" {
		return ""
	}
	return ob.Reason
}

func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339)
}

// --- exportdsmcert ---

// certResult is exportdsmcert's JSON output.
type certResult struct {
	ops.FleetCA
	Path string `json:"path,omitempty"`
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
		ca, err := s.ops.ReadFleetCA()
		if err != nil {
			return err
		}
		res := certResult{FleetCA: ca}
		if path != "" {
			abs, err := filepath.Abs(path)
			if err != nil {
				return err
			}
			if err := pki.WriteFile(abs, []byte(ca.PEM), 0o644); err != nil {
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
			_, err = fmt.Fprint(s.stdout, ca.PEM)
		default:
			_, err = fmt.Fprintf(s.stdout, "Wrote the fleet CA certificate to %s\nSHA-256 fingerprint: %s\n", res.Path, res.Fingerprint)
		}
		return err
	}, nil
}
