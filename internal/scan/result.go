package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Result is a whole scan.
type Result struct {
	Targets []TargetResult `json:"targets"`
}

// TargetResult is what one HOST:PORT accepts.
type TargetResult struct {
	Target string `json:"target"`
	// Error is set when the target could not be scanned at all (refused, not TLS, STARTTLS failed).
	Error         string           `json:"error,omitempty"`
	Protocols     []ProtocolResult `json:"protocols"`
	LeastStrength string           `json:"least_strength,omitempty"`
	Groups        []Group          `json:"groups,omitempty"`
	Certificate   *Certificate     `json:"certificate,omitempty"`
	// Notes explain versions whose enumeration ended early or oddly.
	Notes     []string `json:"notes,omitempty"`
	Probes    int      `json:"connections"`
	ElapsedMS int64    `json:"elapsed_ms"`
}

// ProtocolResult is one accepted protocol version, as nmap's ssl-enum-ciphers reports it.
type ProtocolResult struct {
	Version               string   `json:"version"`
	CipherPreference      string   `json:"cipher_preference"`
	CipherPreferenceError string   `json:"cipher_preference_error,omitempty"`
	Ciphers               []Cipher `json:"ciphers"`
	Compressors           []string `json:"compressors,omitempty"`
	Warnings              []string `json:"warnings,omitempty"`
}

// Cipher is one accepted suite with nmap's key-exchange column and grade.
type Cipher struct {
	Name  string `json:"name"`
	ID    string `json:"id"`
	Kex   string `json:"kex,omitempty"`
	Grade string `json:"grade"`
}

// Group is a named group the server accepts, with the versions it was seen in.
type Group struct {
	Name        string   `json:"name"`
	ID          uint16   `json:"id"`
	Versions    []string `json:"versions"`
	PostQuantum bool     `json:"post_quantum,omitempty"`
}

// Certificate is the server certificate's key.
type Certificate struct {
	Type      string `json:"type"`
	Bits      int    `json:"bits"`
	Curve     string `json:"curve,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// Accepts reports whether the target accepted a version (nmap's name).
func (t *TargetResult) Accepts(version string) bool {
	for _, p := range t.Protocols {
		if p.Version == version {
			return true
		}
	}
	return false
}

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes each target in the shape of nmap's ssl-enum-ciphers block.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	for i, t := range r.Targets {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s\n", t.Target)
		if t.Error != "" {
			fmt.Fprintf(&b, "  error: %s\n", t.Error)
			continue
		}
		if len(t.Protocols) == 0 {
			b.WriteString("  no SSL/TLS version accepted\n")
		}
		for _, p := range t.Protocols {
			fmt.Fprintf(&b, "  %s:\n    ciphers:\n", p.Version)
			for _, c := range p.Ciphers {
				if c.Kex != "" {
					fmt.Fprintf(&b, "      %s (%s) - %s\n", c.Name, c.Kex, c.Grade)
				} else {
					fmt.Fprintf(&b, "      %s - %s\n", c.Name, c.Grade)
				}
			}
			if len(p.Compressors) > 0 {
				b.WriteString("    compressors:\n")
				for _, c := range p.Compressors {
					fmt.Fprintf(&b, "      %s\n", c)
				}
			}
			if p.CipherPreference != "" {
				fmt.Fprintf(&b, "    cipher preference: %s\n", p.CipherPreference)
			}
			if p.CipherPreferenceError != "" {
				fmt.Fprintf(&b, "    cipher preference error: %s\n", p.CipherPreferenceError)
			}
			if len(p.Warnings) > 0 {
				b.WriteString("    warnings:\n")
				for _, w := range p.Warnings {
					fmt.Fprintf(&b, "      %s\n", w)
				}
			}
		}
		if len(t.Groups) > 0 {
			b.WriteString("  groups:\n")
			for _, g := range t.Groups {
				pq := ""
				if g.PostQuantum {
					pq = ", post-quantum hybrid"
				}
				fmt.Fprintf(&b, "    %s (%s%s)\n", g.Name, strings.Join(g.Versions, ", "), pq)
			}
		}
		if c := t.Certificate; c != nil {
			key := fmt.Sprintf("%s %d", c.Type, c.Bits)
			if c.Curve != "" {
				key = fmt.Sprintf("%s %s", c.Type, c.Curve)
			}
			fmt.Fprintf(&b, "  certificate: %s, signed %s\n", key, c.Signature)
		}
		for _, n := range t.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		if t.LeastStrength != "" {
			fmt.Fprintf(&b, "  least strength: %s\n", t.LeastStrength)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
