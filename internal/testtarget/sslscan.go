package testtarget

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// SSLScanCipher is one suite sslscan found accepted.
type SSLScanCipher struct {
	Name      string `json:"name"`    // IANA name (mapped from OpenSSL's via OpenSSLToIANA)
	OpenSSL   string `json:"openssl"` // sslscan's (OpenSSL's) name, e.g. "ECDHE-RSA-AES128-GCM-SHA256"
	ID        uint16 `json:"id"`
	Bits      int    `json:"bits"`
	Preferred bool   `json:"preferred"` // sslscan's status="preferred": the server's pick from the full list
	Strength  string `json:"strength"`  // "strong", "acceptable", "weak", ...
	Curve     string `json:"curve,omitempty"`
	DHBits    int    `json:"dh_bits,omitempty"`
}

// SSLScanResult is the outcome of `sslscan --xml=-` against one port.
type SSLScanResult struct {
	Addr string `json:"addr"`
	// Enabled lists the versions sslscan says the server accepts (SSLv2 and SSLv3 as "SSLv2"/"SSLv3"),
	// oldest first.
	Enabled []string `json:"enabled"`
	// Ciphers maps a version (TLSv1.0 ... TLSv1.3) to the accepted suites in sslscan's order.
	Ciphers map[string][]SSLScanCipher `json:"ciphers"`
	Elapsed time.Duration              `json:"elapsed"`
	XML     []byte                     `json:"-"`
}

// Suites returns, per version, the IANA names of the accepted suites.
func (r *SSLScanResult) Suites() map[string][]string {
	m := map[string][]string{}
	for v, cs := range r.Ciphers {
		for _, c := range cs {
			m[v] = append(m[v], c.Name)
		}
	}
	return m
}

type sslscanDoc struct {
	Tests []struct {
		Protocols []struct {
			Type    string `xml:"type,attr"`
			Version string `xml:"version,attr"`
			Enabled string `xml:"enabled,attr"`
		} `xml:"protocol"`
		Ciphers []struct {
			Status     string `xml:"status,attr"`
			SSLVersion string `xml:"sslversion,attr"`
			Bits       string `xml:"bits,attr"`
			Cipher     string `xml:"cipher,attr"`
			ID         string `xml:"id,attr"`
			Strength   string `xml:"strength,attr"`
			Curve      string `xml:"curve,attr"`
			DHEBits    string `xml:"dhebits,attr"`
		} `xml:"cipher"`
	} `xml:"ssltest"`
}

// RunSSLScan runs `sslscan --no-colour --xml=- [extraArgs] addr` and parses the accepted suites per
// version. sslscan uses the system OpenSSL (3.0 on Debian 12), so it cannot test SSLv3, RC4 or 3DES on
// its own; extraArgs can add e.g. "--starttls-psql".
func RunSSLScan(ctx context.Context, addr string, extraArgs ...string) (*SSLScanResult, error) {
	args := append([]string{"--no-colour", "--xml=-"}, extraArgs...)
	args = append(args, addr)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "sslscan", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	elapsed := time.Since(start)
	if err != nil {
		return nil, fmt.Errorf("sslscan %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	r, err := ParseSSLScanXML(out)
	if err != nil {
		return nil, err
	}
	r.Addr, r.Elapsed = addr, elapsed
	return r, nil
}

// ParseSSLScanXML parses sslscan's --xml output. The XML follows the text output on stdout when both go
// there, so parsing starts at the XML declaration.
func ParseSSLScanXML(b []byte) (*SSLScanResult, error) {
	if i := bytes.Index(b, []byte("<?xml")); i > 0 {
		b = b[i:]
	}
	var doc sslscanDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("sslscan XML: %w", err)
	}
	r := &SSLScanResult{Ciphers: map[string][]SSLScanCipher{}, XML: b}
	if len(doc.Tests) == 0 {
		return nil, fmt.Errorf("sslscan XML: no ssltest element")
	}
	test := doc.Tests[0]
	for _, p := range test.Protocols {
		if p.Enabled != "1" {
			continue
		}
		name := "TLSv" + p.Version
		if p.Type == "ssl" {
			name = "SSLv" + p.Version
		}
		if name == "TLSv1" {
			name = TLSv10
		}
		r.Enabled = append(r.Enabled, name)
	}
	for _, c := range test.Ciphers {
		v := c.SSLVersion
		if v == "TLSv1" {
			v = TLSv10
		}
		id, _ := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(c.ID), "0x"), 16, 16)
		bits, _ := strconv.Atoi(c.Bits)
		dh, _ := strconv.Atoi(c.DHEBits)
		r.Ciphers[v] = append(r.Ciphers[v], SSLScanCipher{
			Name: OpenSSLToIANA(c.Cipher), OpenSSL: c.Cipher, ID: uint16(id), Bits: bits,
			Preferred: c.Status == "preferred", Strength: c.Strength, Curve: c.Curve, DHBits: dh,
		})
	}
	return r, nil
}

// sslscanStartTLS maps `openssl s_client -starttls` names to sslscan's options.
var sslscanStartTLS = map[string]string{
	"postgres": "--starttls-psql", "smtp": "--starttls-smtp", "ftp": "--starttls-ftp", "imap": "--starttls-imap",
	"pop3": "--starttls-pop3", "ldap": "--starttls-ldap", "mysql": "--starttls-mysql", "xmpp": "--starttls-xmpp",
	"irc": "--starttls-irc",
}

// SSLScan runs sslscan against the target, through its STARTTLS preamble when it has one.
func (tg *Target) SSLScan(ctx context.Context, extraArgs ...string) (*SSLScanResult, error) {
	if tg.StartTLS != "" {
		opt, ok := sslscanStartTLS[tg.StartTLS]
		if !ok {
			return nil, fmt.Errorf("sslscan has no STARTTLS option for %q", tg.StartTLS)
		}
		extraArgs = append([]string{opt}, extraArgs...)
	}
	return RunSSLScan(ctx, tg.Addr, extraArgs...)
}
