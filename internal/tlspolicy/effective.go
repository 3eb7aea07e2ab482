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

// Explain computes a listener's effective policy and the reasons behind it.
func Explain(l Listener, layers Layers) *Explanation {
	p := &Policy{Listener: l, Cert: layers.Cert}
	if p.Cert.KeyAlgorithm == "" {
		p.Cert = DefaultCert
	}
	ex := &Explanation{Policy: p}
	js := layers.JavaSecurity
	if l.Role.managerPort() && js == nil {
		js = DefaultJavaSecurity()
		p.Warnings = append(p.Warnings, "java.security is missing: the default content applies (TLSv1 and TLSv1.1 disabled); `tlsfleet manager` writes it on first start")
	}
	if !l.Role.managerPort() {
		js = nil
	}
	var cp *ConfigProperties
	if l.Role == RoleConsole {
		cp = layers.Config
	}
	settings, settingWarnings := layers.Settings.withDefaults()
	p.Warnings = append(p.Warnings, settingWarnings...)

	var javaEntries []DisabledEntry
	if js != nil {
		javaEntries = js.Disabled
		p.Warnings = append(p.Warnings, js.Warnings...)
	}
	if cp != nil {
		p.Warnings = append(p.Warnings, cp.Warnings...)
	}
	used := make([]entryUse, len(javaEntries)) // what each java.security entry did here

	javaRemoval := func(item, kind string, e DisabledEntry, reason string) Removal {
		return Removal{Item: item, Kind: kind, Layer: LayerJava, Entry: e.Text, Where: where(e.File, e.Line), Reason: reason}
	}
	note := func(i int, what string) { used[i].add(what) }

	// 1. Protocol versions.
	minSetting, minName := settings.minimumFor(l.Role)
	for _, v := range AllVersions {
		var by []Removal
		if v == SSLv3 {
			by = append(by, Removal{Item: v.String(), Kind: "version", Layer: LayerGo, Reason: "SSL 3.0 is never offered or accepted (Go has no SSL 3.0)"})
		}
		for i, e := range javaEntries {
			if e.matchesVersion(v) {
				by = append(by, javaRemoval(v.String(), "version", e, "protocol disabled"))
				used[i].versions = append(used[i].versions, v.String())
			}
		}
		if cp != nil && cp.Protocols != nil && !slices.Contains(cp.Protocols, v) && v != SSLv3 {
			by = append(by, Removal{Item: v.String(), Kind: "version", Layer: LayerConfig, Entry: "protocols=" + cp.ProtocolsEntry.Value,
				Where: where(cp.ProtocolsEntry.File, cp.ProtocolsEntry.Line), Reason: "not listed in protocols="})
		}
		if v != SSLv3 && v < minSetting {
			by = append(by, Removal{Item: v.String(), Kind: "version", Layer: LayerSettings, Entry: minName + "=" + minSetting.String(), Reason: "below the minimum for " + string(l.Role)})
		}
		ex.Versions = append(ex.Versions, Verdict{Item: v.String(), Allowed: len(by) == 0, By: by})
		if len(by) == 0 {
			p.Versions = append(p.Versions, v)
		}
		p.Removed = append(p.Removed, by...)
	}
	if cp != nil && cp.Protocols != nil && slices.Contains(cp.Protocols, TLSv1_2) && !slices.Contains(cp.Protocols, TLSv1_3) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s: protocols= lists TLSv1.2 but not TLSv1.3, so port %d does not offer TLS 1.3; write protocols=TLSv1.2,TLSv1.3 to keep it", where(cp.ProtocolsEntry.File, cp.ProtocolsEntry.Line), l.Port))
	}
	earlyTLS := p.Allows(TLSv1) || p.Allows(TLSv1_1)

	// 2. Key-exchange groups.
	for _, g := range Groups() {
		var by []Removal
		if !g.Go {
			by = append(by, Removal{Item: g.Name, Kind: "group", Layer: LayerGo, Reason: "not implemented by Go's crypto/tls"})
		}
		for i, e := range javaEntries {
			if e.forbidsGroup(g) {
				by = append(by, javaRemoval(g.Name, "group", e, "key-exchange group disabled"))
				if g.Go {
					used[i].groups = append(used[i].groups, g.Name)
				}
			}
		}
		ex.Groups = append(ex.Groups, Verdict{Item: g.Name, Allowed: len(by) == 0, By: by})
		if g.Go {
			p.Removed = append(p.Removed, by...)
		}
	}
	for _, g := range goGroups() {
		if v := findVerdict(ex.Groups, g.Name); v != nil && v.Allowed {
			p.Groups = append(p.Groups, g.ID)
		}
	}
	classicGroup := slices.ContainsFunc(p.Groups, func(id tls.CurveID) bool { g, _ := GroupByID(id); return !g.PostQuantum })
	if len(p.Groups) == 0 && p.Allows(TLSv1_3) {
		r := Removal{Item: TLSv1_3.String(), Kind: "version", Layer: LayerDerived, Reason: "no key-exchange group is left, and TLS 1.3 needs one"}
		p.Removed = append(p.Removed, r)
		p.Versions = slices.DeleteFunc(p.Versions, func(v Version) bool { return v == TLSv1_3 })
		if v := findVerdict(ex.Versions, TLSv1_3.String()); v != nil {
			v.Allowed, v.By = false, append(v.By, r)
		}
	}

	// 3. The server's own certificate.
	auth := certAuth(p.Cert)
	for i, e := range javaEntries {
		if e.forbidsKey(certKeyFamily(p.Cert), p.Cert.KeyBits) {
			p.CertError = fmt.Sprintf("the listener's certificate key (%s) is forbidden by java.security entry %q (%s): no handshake can complete; issue a certificate with a stronger key", p.Cert, e.Text, where(e.File, e.Line))
			note(i, "forbids this listener's certificate key")
		}
		if p.Cert.SignatureAlgorithm != "" && e.forbidsCertSignature(p.Cert.SignatureAlgorithm, "TLSServer") {
			p.Warnings = append(p.Warnings, fmt.Sprintf("the listener's certificate is signed with %s, which java.security entry %q forbids: clients applying the same rule will reject it", p.Cert.SignatureAlgorithm, e.Text))
			note(i, "flags this listener's certificate signature")
		}
	}

	// Handshake signature schemes the certificate can use.
	var schemesLeft []tls.SignatureScheme
	restricted := false
	for _, sc := range schemesFor(p.Cert) {
		removed := false
		for i, e := range javaEntries {
			if e.forbidsHandshakeScheme(sc) {
				p.Removed = append(p.Removed, javaRemoval(sc.name, "signature", e, "handshake signature scheme disabled"))
				note(i, "disables handshake signatures with "+sc.name)
				removed = true
			}
		}
		if removed {
			restricted = true
		} else {
			schemesLeft = append(schemesLeft, sc.id)
		}
	}
	if restricted {
		p.SignatureSchemes = append([]tls.SignatureScheme{}, schemesLeft...)
		if len(schemesLeft) == 0 {
			p.Warnings = append(p.Warnings, fmt.Sprintf("no handshake signature scheme is left for the %s certificate: TLS 1.3 and TLS 1.2 ECDHE handshakes will fail", p.Cert))
		}
	}

	// 4. Cipher suites (TLS 1.0–1.2).
	var listed map[uint16]bool
	if cp != nil && cp.Ciphers != nil {
		listed = map[uint16]bool{}
		for _, s := range cp.Ciphers {
			listed[s.ID] = true
		}
	}
	allowed := map[uint16]bool{}
	for _, s := range Registry() {
		if s.SCSV || s.TLS13 {
			continue
		}
		var by []Removal
		rm := func(layer, entry, wh, reason string) {
			by = append(by, Removal{Item: s.Name, Kind: "suite", Layer: layer, Entry: entry, Where: wh, Reason: reason})
		}
		switch {
		case !s.GoImplemented():
			rm(LayerGo, "", "", "not implemented by Go's crypto/tls")
		case listed[s.ID] || defaultSuite(s):
		case legacySuite(s) && earlyTLS:
		case legacySuite(s):
			rm(LayerDefaults, "", "", "legacy suite, offered only while the port accepts TLS 1.0 or 1.1 (or when listed in ciphers=)")
		default:
			rm(LayerDefaults, "", "", "not in Go's secure defaults; list it in ciphers= to enable it")
		}
		for i, e := range javaEntries {
			if e.matchesSuite(s) {
				by = append(by, javaRemoval(s.Name, "suite", e, "matches a disabled algorithm"))
				if s.GoImplemented() {
					used[i].suites = append(used[i].suites, s.Name)
				}
			}
		}
		if listed != nil && !listed[s.ID] {
			rm(LayerConfig, "ciphers=", where(cp.CiphersEntry.File, cp.CiphersEntry.Line), "not listed in ciphers=")
		}
		if settings.StrongCiphers && (l.Role == RoleRelay || l.Role == RoleAgent) && !s.Strong() {
			rm(LayerSettings, SettingStrongCiphers+"=true", "", "not an ECDHE suite with an AEAD cipher")
		}
		if len(by) == 0 {
			usable := false
			for _, v := range p.Versions {
				usable = usable || s.SupportsVersion(v)
			}
			switch {
			case !usable:
				rm(LayerDerived, "", "", "no accepted protocol version can negotiate it")
			case s.Auth != auth:
				rm(LayerCert, "", "", fmt.Sprintf("needs an %s certificate; this listener's key is %s", s.Auth, p.Cert))
			case s.KeyExchange == "ECDHE" && !classicGroup:
				rm(LayerDerived, "", "", "no elliptic-curve group is left for ECDHE")
			}
		}
		ex.Suites = append(ex.Suites, Verdict{Item: s.Name, Allowed: len(by) == 0, By: by})
		if len(by) == 0 {
			allowed[s.ID] = true
		}
		if s.GoImplemented() {
			p.Removed = append(p.Removed, by...)
		}
	}
	for _, id := range goServerOrder {
		if allowed[id] {
			p.Suites = append(p.Suites, id)
		}
	}

	// 5. TLS 1.3 suites: Go always offers all three. A layer that forbids one is reported, not obeyed.
	for _, s := range Registry() {
		if !s.TLS13 {
			continue
		}
		var by []Removal
		if !s.GoImplemented() {
			by = append(by, Removal{Item: s.Name, Kind: "suite", Layer: LayerGo, Reason: "not implemented by Go's crypto/tls"})
			ex.Suites = append(ex.Suites, Verdict{Item: s.Name, By: by})
			continue
		}
		var forbidden []Removal
		for i, e := range javaEntries {
			if e.matchesSuite(s) {
				forbidden = append(forbidden, javaRemoval(s.Name, "suite", e, ""))
				note(i, "forbids "+s.Name+" (not enforceable)")
			}
		}
		if listed != nil && !listed[s.ID] {
			forbidden = append(forbidden, Removal{Item: s.Name, Kind: "suite", Layer: LayerConfig, Entry: "ciphers=", Where: where(cp.CiphersEntry.File, cp.CiphersEntry.Line)})
		}
		tls13 := p.Allows(TLSv1_3)
		for i := range forbidden {
			if tls13 {
				forbidden[i].Reason = fmt.Sprintf("Go's crypto/tls cannot disable single TLS 1.3 suites: port %d still negotiates %s over TLS 1.3; to honour this, remove TLSv1.3 from the port", l.Port, s.Name)
			} else {
				forbidden[i].Reason = "TLS 1.3 is off on this port, so the suite is not negotiated anyway"
			}
		}
		if !tls13 {
			by = append(by, Removal{Item: s.Name, Kind: "suite", Layer: LayerDerived, Reason: "TLS 1.3 is not accepted on this port"})
		}
		if tls13 {
			p.TLS13Suites = append(p.TLS13Suites, s.ID)
			p.NotEnforced = append(p.NotEnforced, forbidden...)
		} else {
			by = append(by, forbidden...)
		}
		ex.Suites = append(ex.Suites, Verdict{Item: s.Name, Allowed: tls13, By: by})
		p.Removed = append(p.Removed, by...)
	}
	if listed != nil && p.Allows(TLSv1_3) && !slices.ContainsFunc(cp.Ciphers, func(s Suite) bool { return s.TLS13 }) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("ciphers= names no TLS 1.3 suite: on a JDK that would leave TLS 1.3 unusable; Go negotiates its three TLS 1.3 suites (all AEAD with forward secrecy) on port %d regardless; add protocols=TLSv1.2 to turn TLS 1.3 off", l.Port))
	}
	slices.SortFunc(p.TLS13Suites, func(a, b uint16) int { return slices.Index(tls13Order, a) - slices.Index(tls13Order, b) })

	// Hybrid and ML-KEM groups exist only in TLS 1.3: without it they are not offered.
	if !p.Allows(TLSv1_3) {
		p.Groups = slices.DeleteFunc(p.Groups, func(id tls.CurveID) bool { g, _ := GroupByID(id); return g.PostQuantum })
	}

	// 6. Rules for peer certificates (mutual TLS), and what each entry did.
	for i, e := range javaEntries {
		if fams, ok := keyAlgorithmAliases[strings.ToUpper(e.Algorithm)]; ok && fams[0] != "DH" && fams[0] != "XDH" && (len(e.KeySize) > 0 || !e.Constrained()) {
			p.PeerRules = append(p.PeerRules, e)
			note(i, "applied to peer certificates on mutual-TLS ports")
		} else if isSignatureName(e.Algorithm) && (!e.Constrained() || usageOnly(e, "CertificateSignature", "TLSClient")) {
			p.PeerRules = append(p.PeerRules, e)
			note(i, "applied to certificate signatures of peers on mutual-TLS ports")
		}
		ex.Entries = append(ex.Entries, describeEntry(e, used[i].String()))
	}
	for _, ee := range ex.Entries {
		if ee.NoOp {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s: java.security entry %q has no effect here: %s", ee.Where, ee.Entry, ee.Effect))
		}
	}
	if len(p.Versions) == 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("no protocol version is left on port %d: every handshake will fail", l.Port))
	} else if p.MinVersion() <= TLSv1_2 && len(p.Suites) == 0 && !(len(p.Versions) == 1 && p.Versions[0] == TLSv1_3) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("no TLS 1.0–1.2 cipher suite is left on port %d: only TLS 1.3 clients can connect", l.Port))
	}
	if p.CertError != "" {
		p.Warnings = append(p.Warnings, p.CertError)
	}
	return ex
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
		if _, err := ParseVersion(e.Algorithm); err == nil && !strings.HasPrefix(name, "TLSV") && name != "SSLV3" {
			ee.Effect += fmt.Sprintf("; note: the JDK spells protocols TLSv1, TLSv1.1, TLSv1.2 and would ignore %q", e.Algorithm)
		}
		return ee
	}
	ee.NoOp = true
	switch {
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

func matchesAnySuite(e DisabledEntry) bool {
	for _, s := range Registry() {
		if e.matchesSuite(s) {
			return true
		}
	}
	return false
}
