package tlspolicy

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// Layer names, as reports print them.
const (
	LayerGo       = "crypto/tls"
	LayerDefaults = "tlsfleet defaults"
	LayerJava     = "java.security"
	LayerConfig   = "configuration.properties"
	LayerSettings = "settings"
	LayerCert     = "certificate"
	LayerDerived  = "derived"
)

// CertInfo describes the certificate a listener serves, as far as the policy cares.
type CertInfo struct {
	KeyAlgorithm       string `json:"key_algorithm"`                 // RSA, EC, Ed25519
	KeyBits            int    `json:"key_bits"`                      // 2048, 256, ...
	SignatureAlgorithm string `json:"signature_algorithm,omitempty"` // x509.SignatureAlgorithm.String()
}

// DefaultCert is what a listener is assumed to serve when no certificate is given: the Manager's default
// ECDSA P-256 key.
var DefaultCert = CertInfo{KeyAlgorithm: "EC", KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256"}

func (c CertInfo) String() string { return fmt.Sprintf("%s %d", c.KeyAlgorithm, c.KeyBits) }

// Layers holds the three configuration layers and the listener's certificate. Effective and Explain are
// pure functions of it.
type Layers struct {
	// JavaSecurity is the parsed java.security; nil means the file is missing, and the default content
	// (DefaultJavaSecurity) applies, as a JRE always has one.
	JavaSecurity *JavaSecurity
	// Config is configuration.properties; nil means the file is missing.
	Config   *ConfigProperties
	Settings Settings
	// Cert is the listener's certificate; the zero value means DefaultCert.
	Cert CertInfo
}

// Removal says that a layer removed (or, for TLS 1.3 suites, would remove) an item from a listener.
type Removal struct {
	Item   string `json:"item"`
	Kind   string `json:"kind"` // version, suite, group
	Layer  string `json:"layer"`
	Entry  string `json:"entry,omitempty"`
	Where  string `json:"where,omitempty"` // file:line of the entry
	Reason string `json:"reason,omitempty"`
}

// Policy is the effective TLS policy of one listener.
type Policy struct {
	Listener Listener
	// Versions are the accepted protocol versions, oldest first.
	Versions []Version
	// Suites are the accepted TLS 1.0–1.2 suites in the order Go's server prefers them.
	Suites []uint16
	// TLS13Suites are the suites the listener really negotiates in TLS 1.3 (Go does not let them be
	// restricted); empty when TLS 1.3 is off.
	TLS13Suites []uint16
	// Groups are the accepted key-exchange groups in Go's preference order.
	Groups []tls.CurveID
	Cert   CertInfo
	// CertError is set when a layer forbids the listener's own certificate: every handshake then fails.
	CertError string
	// SignatureSchemes restricts the schemes the listener signs handshakes with; nil means Go's own
	// choice (a layer removed none).
	SignatureSchemes []tls.SignatureScheme
	// PeerRules are the java.security entries that apply to peer certificates on mutual-TLS ports.
	PeerRules []DisabledEntry
	// Removed lists what each layer removed; NotEnforced lists TLS 1.3 suites a layer forbids that Go
	// cannot switch off.
	Removed     []Removal
	NotEnforced []Removal
	Warnings    []string
}

// Allows reports whether the policy accepts a version.
func (p *Policy) Allows(v Version) bool { return slices.Contains(p.Versions, v) }

// MinVersion and MaxVersion bound Versions (0 when no version is left).
func (p *Policy) MinVersion() Version {
	if len(p.Versions) == 0 {
		return 0
	}
	return p.Versions[0]
}

// MaxVersion returns the newest accepted version.
func (p *Policy) MaxVersion() Version {
	if len(p.Versions) == 0 {
		return 0
	}
	return p.Versions[len(p.Versions)-1]
}

// Verdict is the fate of one item on one listener.
type Verdict struct {
	Item    string    `json:"item"`
	Allowed bool      `json:"allowed"`
	By      []Removal `json:"removed_by,omitempty"`
}

// EntryEffect says what one java.security entry does on a listener.
type EntryEffect struct {
	Entry  string `json:"entry"`
	Where  string `json:"where"`
	Effect string `json:"effect"`
	NoOp   bool   `json:"no_effect,omitempty"`
}

// Explanation is Explain's answer: the policy plus a verdict for every version, every registered suite and
// every group, and what each java.security entry does.
type Explanation struct {
	Policy   *Policy
	Versions []Verdict
	Suites   []Verdict
	Groups   []Verdict
	Entries  []EntryEffect
	// SettingNotes say which fleet settings apply to the listener and which do not.
	SettingNotes []string

	// ciphers is configuration.properties when its ciphers= applies to the listener (LockOut's fixes).
	ciphers *ConfigProperties
}

// Effective returns the effective policy of a listener.
func Effective(l Listener, layers Layers) *Policy { return Explain(l, layers).Policy }

// goServerOrder is the order in which Go's server picks TLS 1.0–1.2 suites when both peers have AES
// hardware (crypto/tls's documented rules: no RC4, CBC_SHA256 or 3DES first; ECDHE first; AEAD before CBC;
// AES-128 before AES-256; ECDSA before RSA). goServerOrderNoAES moves ChaCha20 to the front.
var goServerOrder = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA, tls.TLS_RSA_WITH_RC4_128_SHA,
}

var goServerOrderNoAES = append([]uint16{
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
}, goServerOrder[6:]...)

// tls13Order and tls13OrderNoAES are Go's TLS 1.3 server preference orders.
var (
	tls13Order      = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}
	tls13OrderNoAES = []uint16{tls.TLS_CHACHA20_POLY1305_SHA256, tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384}
)

// defaultSuite reports whether a suite is in Go's default server set (the secure suites minus RSA key
// exchange and 3DES, which Go ≥1.22/1.23 only uses when listed explicitly).
func defaultSuite(s Suite) bool {
	if !s.GoImplemented() || s.CipherFamily == "RC4" || s.CipherFamily == "3DES" || s.KeyExchange == "RSA" {
		return false
	}
	return !(s.MAC == "SHA256" && s.Mode == "CBC")
}

// legacySuite reports whether a suite is one that early-TLS clients may need and that tlsfleet adds when a
// listener accepts TLS 1.0 or 1.1: RSA key exchange with AES, and 3DES (never RC4 or CBC-SHA256).
func legacySuite(s Suite) bool {
	if !s.GoImplemented() || s.CipherFamily == "RC4" || s.MAC == "SHA256" && s.Mode == "CBC" {
		return false
	}
	return s.KeyExchange == "RSA" || s.CipherFamily == "3DES"
}

// certFamily maps CertInfo.KeyAlgorithm to the suite authentication it can serve.
func certAuth(c CertInfo) string {
	switch c.KeyAlgorithm {
	case "RSA":
		return "RSA"
	case "EC", "ECDSA", "Ed25519":
		return "ECDSA"
	}
	return ""
}

func where(file string, line int) string {
	if file == "" {
		return ""
	}
	if line == 0 {
		return file
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// entryUse collects what one java.security entry did on a listener.
type entryUse struct {
	versions, suites, groups, other []string
}

func (u *entryUse) add(what string) {
	if !slices.Contains(u.other, what) {
		u.other = append(u.other, what)
	}
}

func (u entryUse) String() string {
	var parts []string
	if len(u.versions) > 0 {
		parts = append(parts, "disables "+strings.Join(u.versions, ", "))
	}
	if n := len(u.suites); n > 0 {
		list := u.suites
		if n > 4 {
			list = append(slices.Clone(list[:4]), fmt.Sprintf("and %d more", n-4))
		}
		parts = append(parts, fmt.Sprintf("disables %d suite(s): %s", n, strings.Join(list, ", ")))
	}
	if len(u.groups) > 0 {
		parts = append(parts, "disables group(s) "+strings.Join(u.groups, ", "))
	}
	parts = append(parts, u.other...)
	return strings.Join(parts, "; ")
}

func findVerdict(vs []Verdict, item string) *Verdict {
	for i := range vs {
		if vs[i].Item == item {
			return &vs[i]
		}
	}
	return nil
}

func certKeyFamily(c CertInfo) string {
	switch c.KeyAlgorithm {
	case "ECDSA":
		return "EC"
	}
	return c.KeyAlgorithm
}

// describeEntry says what a java.security entry does on a listener; "used" lists its effects found above.
func describeEntry(e DisabledEntry, used string) EntryEffect {
	ee := EntryEffect{Entry: e.Text, Where: where(e.File, e.Line)}
	name := strings.ToUpper(e.Algorithm)
	if used != "" {
		ee.Effect = used
		if e.Property != DisabledAlgorithmsKey {
			ee.Effect += " (from " + e.Property + ")"
		}
		return ee
	}
	ee.NoOp = true
	_, versionErr := ParseVersion(e.Algorithm)
	switch {
	case strings.Contains(name, "*"):
		ee.Effect = "JDK 17 has no wildcards in " + DisabledAlgorithmsKey + " (JDK 24 added them): it ignores the entry, and so does tlsfleet; name the suites one by one"
	case versionErr == nil && !e.Constrained():
		ee.Effect = fmt.Sprintf("the JDK knows protocols only as SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 (in any case) and ignores %q, and so does tlsfleet; write %s", e.Algorithm, mustVersion(e.Algorithm))
	case e.JDKCA:
		ee.Effect = "jdkCA limits the entry to chains ending at a JDK cacerts anchor; tlsfleet's fleet CA is not one"
	case e.DenyAfter != "":
		ee.Effect = "denyAfter applies to signed JARs and certificates in the JDK; tlsfleet does not apply date constraints"
	case strings.HasPrefix(name, "DTLS"):
		ee.Effect = "tlsfleet has no DTLS listener"
	case name == "SSLV2HELLO":
		ee.Effect = "Go never accepts SSLv2-compatible hellos"
	case (name == "DH" || name == "DIFFIEHELLMAN") && len(e.KeySize) > 0:
		ee.Effect = "Go's crypto/tls has no finite-field DH key exchange, so there is no DH key to restrict"
	case name == "EC" && len(e.KeySize) > 0:
		ee.Effect = "every group and certificate curve Go offers is at least 255 bits"
	case len(e.KeySize) > 0:
		ee.Effect = "no key of that algorithm and size is used on this listener"
	case isSignatureName(e.Algorithm):
		ee.Effect = "Go never signs handshakes with it"
	default:
		if matchesAnySuite(e) {
			ee.Effect = "every suite it matches is one Go's crypto/tls does not implement (already never negotiated)"
		} else if _, ok := keyAlgorithmAliases[name]; ok {
			ee.Effect = "no key of that algorithm is used on this listener"
		} else {
			ee.Effect = "it matches no protocol, cipher suite, group, key or signature algorithm tlsfleet knows; check the spelling"
		}
	}
	return ee
}

func mustVersion(s string) string {
	v, _ := ParseVersion(s)
	return v.String()
}

func matchesAnySuite(e DisabledEntry) bool {
	for _, s := range Registry() {
		if e.matchesSuite(s) {
			return true
		}
	}
	return false
}
