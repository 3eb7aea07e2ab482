package testtarget

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// NmapCipher is one accepted suite as ssl-enum-ciphers reports it.
type NmapCipher struct {
	Name     string `json:"name"`     // nmap's name: IANA, except TLS 1.3 suites ("TLS_AKE_WITH_AES_128_GCM_SHA256")
	KexInfo  string `json:"kex_info"` // "rsa 2048", "dh 1024", "secp256r1", "ecdh_x25519", ...
	Strength string `json:"strength"` // letter grade "A" ... "F"
}

// NmapProtocol is what ssl-enum-ciphers reports for one protocol version.
type NmapProtocol struct {
	Ciphers          []NmapCipher      `json:"ciphers"`
	Compressors      []string          `json:"compressors,omitempty"` // "NULL"; absent for TLS 1.3
	CipherPreference string            `json:"cipher_preference"`     // "server", "client", "indeterminate"
	Warnings         []string          `json:"warnings,omitempty"`
	Extra            map[string]string `json:"extra,omitempty"` // other elements, e.g. "cipher preference error"
}

// NmapResult is the outcome of `nmap --script ssl-enum-ciphers` against one port.
type NmapResult struct {
	Addr      string   `json:"addr"`
	Args      []string `json:"args"`
	PortState string   `json:"port_state"` // "open", "closed", ...
	Service   string   `json:"service"`    // nmap's service name for the port ("postgresql", "unknown", ...)
	// Protocols is keyed by nmap's version names: SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3. Empty when
	// the script found no TLS (or did not run).
	Protocols     map[string]*NmapProtocol `json:"protocols"`
	LeastStrength string                   `json:"least_strength"`
	Output        string                   `json:"output"` // the script's text output, as nmap prints it
	Elapsed       time.Duration            `json:"elapsed"`
	XML           []byte                   `json:"-"`
}

// Versions returns the protocol versions nmap found, oldest first.
func (r *NmapResult) Versions() []string {
	var vs []string
	for _, v := range AllVersions {
		if r.Protocols[v] != nil {
			vs = append(vs, v)
		}
	}
	return vs
}

// Suites returns, per version, the IANA names of the suites nmap found, in nmap's order (the server's
// preference when it has one, else alphabetical).
func (r *NmapResult) Suites() map[string][]string {
	m := map[string][]string{}
	for v, p := range r.Protocols {
		for _, c := range p.Ciphers {
			m[v] = append(m[v], NmapToIANA(c.Name))
		}
	}
	return m
}

// nmapTLS13Names maps the names nmap 7.93's tls.lua gives TLS 1.3 suites to the IANA names.
var nmapTLS13Names = map[string]string{
	"TLS_AKE_WITH_AES_128_GCM_SHA256":       "TLS_AES_128_GCM_SHA256",
	"TLS_AKE_WITH_AES_256_GCM_SHA384":       "TLS_AES_256_GCM_SHA384",
	"TLS_AKE_WITH_CHACHA20_POLY1305_SHA256": "TLS_CHACHA20_POLY1305_SHA256",
	"TLS_AKE_WITH_AES_128_CCM_SHA256":       "TLS_AES_128_CCM_SHA256",
	"TLS_AKE_WITH_AES_128_CCM_8_SHA256":     "TLS_AES_128_CCM_8_SHA256",
	"TLS_AKE_WITH_SM4_GCM_SM3":              "TLS_SM4_GCM_SM3",
	"TLS_AKE_WITH_SM4_CCM_SM3":              "TLS_SM4_CCM_SM3",
	"TLS_AKE_WITH_NULL_SHA256":              "TLS_SHA256_SHA256",
	"TLS_AKE_WITH_NULL_SHA384":              "TLS_SHA384_SHA384",
}

// NmapToIANA returns the IANA name of a suite name nmap prints. nmap 7.93 uses the IANA names except for
// TLS 1.3, where it writes "TLS_AKE_WITH_" for "TLS_" (TLS_AKE_WITH_AES_128_GCM_SHA256 is
// TLS_AES_128_GCM_SHA256) and names the RFC 9150 integrity-only suites TLS_AKE_WITH_NULL_SHA256/384.
func NmapToIANA(name string) string {
	if n, ok := nmapTLS13Names[name]; ok {
		return n
	}
	return name
}

// RunNmap runs `nmap -Pn -n --script ssl-enum-ciphers -p PORT -oX - [extraArgs] HOST` against addr
// ("host:port") and parses the XML. extraArgs can add e.g. "--script-args", "tls.servername=localhost".
// nmap runs the script on a port it believes is TLS: a well-known TLS port, or any port whose first
// answer to a TLS hello looks like TLS. For STARTTLS services use RunNmapService.
func RunNmap(ctx context.Context, addr string, extraArgs ...string) (*NmapResult, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	args := []string{"-Pn", "-n", "--script", "ssl-enum-ciphers", "-p", port, "-oX", "-"}
	args = append(args, extraArgs...)
	args = append(args, host)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "nmap", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	elapsed := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("nmap %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	r, err := ParseNmapXML(out)
	if err != nil {
		return nil, fmt.Errorf("nmap %s: %w", strings.Join(args, " "), err)
	}
	r.Addr, r.Args, r.Elapsed = addr, append([]string{"nmap"}, args...), elapsed
	return r, nil
}

// RunNmapService is RunNmap for a port that speaks service — nmap's service name, e.g. "postgresql",
// "smtp", "ftp" — without a service scan: nmap's ssl-enum-ciphers does the service's STARTTLS only when
// the port's service is known (it looks the port up in nmap-services, so 5432 works without help). It
// writes a one-line nmap-services ("postgresql 15432/tcp") into a temporary --datadir; nmap falls back
// to its installed data for everything else. (`--servicedb FILE` would do the same but implies -F, which
// nmap refuses together with -p; `-sV` works too but takes ~7 s more.)
func RunNmapService(ctx context.Context, addr, service string, extraArgs ...string) (*NmapResult, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testtarget-nmap-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	line := fmt.Sprintf("%s\t%s/tcp\t0.5\n", service, port)
	if err := os.WriteFile(filepath.Join(dir, "nmap-services"), []byte(line), 0o644); err != nil {
		return nil, err
	}
	return RunNmap(ctx, addr, append([]string{"--datadir", dir}, extraArgs...)...)
}

// nmapServices maps `openssl s_client -starttls` names to nmap's service names where they differ.
var nmapServices = map[string]string{"postgres": "postgresql", "xmpp": "xmpp-client"}

// Nmap runs ssl-enum-ciphers against the target, through its STARTTLS preamble when it has one.
func (tg *Target) Nmap(ctx context.Context, extraArgs ...string) (*NmapResult, error) {
	if tg.StartTLS == "" {
		return RunNmap(ctx, tg.Addr, extraArgs...)
	}
	return RunNmapService(ctx, tg.Addr, orDefault(nmapServices[tg.StartTLS], tg.StartTLS), extraArgs...)
}

// XML shapes: <nmaprun><host><ports><port><state/><service/><script id output>TABLES</script>.
type nmapRun struct {
	Hosts []struct {
		Ports []struct {
			Protocol string `xml:"protocol,attr"`
			PortID   string `xml:"portid,attr"`
			State    struct {
				State string `xml:"state,attr"`
			} `xml:"state"`
			Service struct {
				Name string `xml:"name,attr"`
			} `xml:"service"`
			Scripts []nseScript `xml:"script"`
		} `xml:"ports>port"`
	} `xml:"host"`
}

type nseScript struct {
	ID     string     `xml:"id,attr"`
	Output string     `xml:"output,attr"`
	Tables []nseTable `xml:"table"`
	Elems  []nseElem  `xml:"elem"`
}

type nseTable struct {
	Key    string     `xml:"key,attr"`
	Tables []nseTable `xml:"table"`
	Elems  []nseElem  `xml:"elem"`
}

type nseElem struct {
	Key   string `xml:"key,attr"`
	Value string `xml:",chardata"`
}

func (t *nseTable) elem(key string) string {
	for _, e := range t.Elems {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

// ParseNmapXML parses nmap's -oX output for one host and port with the ssl-enum-ciphers script.
func ParseNmapXML(b []byte) (*NmapResult, error) {
	var run nmapRun
	if err := xml.Unmarshal(b, &run); err != nil {
		return nil, fmt.Errorf("nmap XML: %w", err)
	}
	r := &NmapResult{Protocols: map[string]*NmapProtocol{}, XML: b}
	if len(run.Hosts) == 0 || len(run.Hosts[0].Ports) == 0 {
		return nil, fmt.Errorf("nmap XML: no host or port in the report")
	}
	port := run.Hosts[0].Ports[0]
	r.PortState, r.Service = port.State.State, port.Service.Name
	for _, s := range port.Scripts {
		if s.ID != "ssl-enum-ciphers" {
			continue
		}
		r.Output = s.Output
		for _, e := range s.Elems {
			if e.Key == "least strength" {
				r.LeastStrength = e.Value
			}
		}
		for _, pt := range s.Tables {
			p := &NmapProtocol{}
			for _, sub := range pt.Tables {
				switch sub.Key {
				case "ciphers":
					for _, c := range sub.Tables {
						p.Ciphers = append(p.Ciphers, NmapCipher{Name: c.elem("name"), KexInfo: c.elem("kex_info"), Strength: c.elem("strength")})
					}
				case "compressors":
					for _, e := range sub.Elems {
						p.Compressors = append(p.Compressors, e.Value)
					}
				case "warnings":
					for _, e := range sub.Elems {
						p.Warnings = append(p.Warnings, e.Value)
					}
				}
			}
			for _, e := range pt.Elems {
				if e.Key == "cipher preference" {
					p.CipherPreference = e.Value
					continue
				}
				if p.Extra == nil {
					p.Extra = map[string]string{}
				}
				p.Extra[e.Key] = e.Value
			}
			r.Protocols[pt.Key] = p
		}
	}
	return r, nil
}
