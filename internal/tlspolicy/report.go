package tlspolicy

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// File names in a Manager's install folder.
const (
	JavaSecurityFile = "java.security"
	ConfigFile       = "configuration.properties"
)

// LoadDir reads the layers kept in a Manager's install folder. Either file may be missing; a malformed one
// is an error naming the file and line.
func LoadDir(dir string) (Layers, error) {
	l := Layers{Settings: DefaultSettings()}
	if st, err := os.Stat(dir); err != nil {
		return Layers{}, fmt.Errorf("install folder: %w", err)
	} else if !st.IsDir() {
		return Layers{}, fmt.Errorf("install folder %s is not a folder", dir)
	}
	js, err := LoadJavaSecurity(filepath.Join(dir, JavaSecurityFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Layers{}, err
	default:
		l.JavaSecurity = js
	}
	cp, err := LoadConfigProperties(filepath.Join(dir, ConfigFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Layers{}, err
	default:
		l.Config = cp
	}
	return l, nil
}

// LoadCertFile describes the first certificate of a PEM file (the Manager's manager.pem).
func LoadCertFile(path string) (CertInfo, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return CertInfo{}, err
	}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return CertInfo{}, fmt.Errorf("%s holds no PEM CERTIFICATE block", path)
		}
		if b.Type == "CERTIFICATE" {
			ci, err := CertInfoOf(tls.Certificate{Certificate: [][]byte{b.Bytes}})
			if err != nil {
				return CertInfo{}, fmt.Errorf("%s: %w", path, err)
			}
			return ci, nil
		}
	}
}

// godebugKnobs are the GODEBUG settings that change what crypto/tls negotiates even with the explicit
// versions, suites and groups the policy engine sets, and so make Evaluate's predictions (which assume
// Go's defaults) wrong. Knobs that only change Go's defaults (tlsrsakex, tls3des, tlsmlkem, tls10server)
// do not matter here.
var godebugKnobs = []string{"tlssha1", "fips140", "tlsmaxrsasize"}

// GODEBUGWarnings names the GODEBUG settings in godebug (the environment variable's value) that change
// crypto/tls's behaviour away from what the policy engine predicts.
func GODEBUGWarnings(godebug string) []string {
	var out []string
	for _, kv := range strings.Split(godebug, ",") {
		k, _, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if slices.Contains(godebugKnobs, k) {
			out = append(out, fmt.Sprintf("GODEBUG sets %s: crypto/tls then negotiates differently from Go's defaults, which this report and the audit predictions assume", strings.TrimSpace(kv)))
		}
	}
	return out
}

// PortReport is the JSON form of one listener's explanation.
type PortReport struct {
	Port           int           `json:"port"`
	Role           Role          `json:"role"`
	Versions       []string      `json:"versions"`
	CipherSuites   []string      `json:"cipher_suites"`
	TLS13Suites    []string      `json:"tls13_cipher_suites"`
	Groups         []string      `json:"groups"`
	Certificate    CertInfo      `json:"certificate"`
	Removed        []Removal     `json:"removed"`
	NotEnforced    []Removal     `json:"not_enforced,omitempty"`
	Entries        []EntryEffect `json:"java_security_entries,omitempty"`
	Settings       []string      `json:"settings,omitempty"`
	NotImplemented int           `json:"suites_not_implemented_by_go"`
	Warnings       []string      `json:"warnings"`
}

// Report is the JSON document `tlsfleet policy --json` prints.
type Report struct {
	// Warnings concern the whole process (its GODEBUG settings), not one port.
	Warnings []string `json:"warnings,omitempty"`
	// Certificate says which certificate the ports were computed for: a file and its key, or what was
	// assumed without one.
	Certificate string `json:"certificate_used,omitempty"`
	// SettingsSource says where the fleet settings came from (the install's database, or the defaults).
	SettingsSource string `json:"settings_from,omitempty"`
	// DatabaseTLS is the TLS state of the install's database connection, and DatabaseBlocker what keeps
	// it below the ports' lowest accepted version ("" when nothing does).
	DatabaseTLS     string       `json:"database_tls,omitempty"`
	DatabaseBlocker string       `json:"database_blocker,omitempty"`
	Ports           []PortReport `json:"ports"`
}

// NewPortReport turns an explanation into its report form.
func NewPortReport(ex *Explanation) PortReport {
	p := ex.Policy
	r := PortReport{Port: p.Listener.Port, Role: p.Listener.Role, Certificate: p.Cert, Entries: ex.Entries, Settings: ex.SettingNotes,
		Versions: []string{}, CipherSuites: []string{}, TLS13Suites: []string{}, Groups: []string{},
		Removed: []Removal{}, NotEnforced: p.NotEnforced, Warnings: append([]string{}, p.Warnings...)}
	for _, v := range p.Versions {
		r.Versions = append(r.Versions, v.String())
	}
	for _, id := range p.Suites {
		r.CipherSuites = append(r.CipherSuites, SuiteName(id))
	}
	for _, id := range p.TLS13Suites {
		r.TLS13Suites = append(r.TLS13Suites, SuiteName(id))
	}
	for _, g := range p.Groups {
		r.Groups = append(r.Groups, GroupName(g))
	}
	r.Removed = append(r.Removed, p.Removed...)
	for _, v := range ex.Suites {
		if !v.Allowed && len(v.By) > 0 && v.By[0].Layer == LayerGo {
			r.NotImplemented++
		}
	}
	return r
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if r.Certificate != "" {
		fmt.Fprintf(tw, "certificate: %s\n", r.Certificate)
	}
	if r.SettingsSource != "" {
		fmt.Fprintf(tw, "settings: %s\n", r.SettingsSource)
	}
	if r.DatabaseTLS != "" {
		fmt.Fprintf(tw, "database connection: %s\n", r.DatabaseTLS)
	}
	if r.DatabaseBlocker != "" {
		fmt.Fprintf(tw, "BLOCKER: %s\n", r.DatabaseBlocker)
	}
	if r.Certificate != "" || r.SettingsSource != "" {
		fmt.Fprintln(tw)
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(tw, "warning: %s\n", warning)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(tw)
	}
	for i, p := range r.Ports {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "Port %d (%s)\n", p.Port, p.Role)
		fmt.Fprintf(tw, "  versions:\t%s\n", orNone(strings.Join(p.Versions, ", ")))
		fmt.Fprintf(tw, "  certificate:\t%s %d\n", p.Certificate.KeyAlgorithm, p.Certificate.KeyBits)
		fmt.Fprintf(tw, "  groups:\t%s\n", orNone(strings.Join(p.Groups, ", ")))
		fmt.Fprintf(tw, "  TLS 1.3 suites:\t%s\n", orNone(strings.Join(p.TLS13Suites, ", ")))
		fmt.Fprintf(tw, "  TLS 1.0-1.2 suites (server order):\t%s\n", orNone(""+countOrNone(len(p.CipherSuites))))
		for _, s := range p.CipherSuites {
			fmt.Fprintf(tw, "    %s\n", s)
		}
		if len(p.Removed) > 0 {
			fmt.Fprintln(tw, "  removed:")
			for _, rm := range p.Removed {
				fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", rm.Item, rm.Layer, describeRemoval(rm), rm.Reason)
			}
		}
		fmt.Fprintf(tw, "  (%d more registered suites are not implemented by Go's crypto/tls and never negotiated)\n", p.NotImplemented)
		for _, ne := range p.NotEnforced {
			fmt.Fprintf(tw, "  NOT ENFORCED: %s (%s %s): %s\n", ne.Item, ne.Layer, describeRemoval(ne), ne.Reason)
		}
		if len(p.Entries) > 0 {
			fmt.Fprintln(tw, "  java.security entries:")
			for _, e := range p.Entries {
				fmt.Fprintf(tw, "    %s\t%s\n", e.Entry, e.Effect)
			}
		}
		if len(p.Settings) > 0 {
			fmt.Fprintln(tw, "  settings:")
			for _, n := range p.Settings {
				fmt.Fprintf(tw, "    %s\n", n)
			}
		}
		if len(p.Warnings) > 0 {
			fmt.Fprintln(tw, "  warnings:")
			for _, wn := range p.Warnings {
				fmt.Fprintf(tw, "    - %s\n", wn)
			}
		}
	}
	return tw.Flush()
}

func describeRemoval(r Removal) string {
	s := r.Entry
	if s != "" {
		s = fmt.Sprintf("%q", s)
	}
	if r.Where != "" {
		s += " (" + r.Where + ")"
	}
	return strings.TrimSpace(s)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func countOrNone(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}
