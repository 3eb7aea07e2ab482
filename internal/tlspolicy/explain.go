package tlspolicy

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// Explain computes a listener's effective policy and the reasons behind it. The stages run in this
// order because each reads what the previous ones left: versions, groups (TLS 1.3 needs one), the
// server's certificate and its signature schemes, TLS 1.0–1.2 suites (they need a version, the
// certificate's key and, for ECDHE, a group), TLS 1.3 suites, then what each java.security entry did.
func Explain(l Listener, layers Layers) *Explanation {
	e := newExplainer(l, layers)
	e.versions()
	e.groups()
	e.certificate()
	e.signatureSchemes()
	e.suites()
	e.tls13WithoutSuites()
	e.tls13Suites()
	e.versionsWithoutSuites()
	// Hybrid and ML-KEM groups exist only in TLS 1.3: without it they are not offered.
	if !e.p.Allows(TLSv1_3) {
		e.p.Groups = slices.DeleteFunc(e.p.Groups, func(id tls.CurveID) bool { g, _ := GroupByID(id); return g.PostQuantum })
	}
	e.entries()
	e.settingNotes()
	e.finalWarnings()
	return e.ex
}

// settingNotes says which fleet settings reach the listener: enableStrongCiphers, for one, does not
// reach the Manager's ports, although its name suggests it does.
func (e *explainer) settingNotes() {
	minimum, name := e.settings.minimumFor(e.l.Role)
	e.ex.SettingNotes = append(e.ex.SettingNotes, fmt.Sprintf("%s=%s applies here", name, minimum))
	if e.l.Role.managerPort() {
		e.ex.SettingNotes = append(e.ex.SettingNotes, fmt.Sprintf("%s=%t does not apply here: it reaches %s", SettingStrongCiphers, e.settings.StrongCiphers, SettingScope(SettingStrongCiphers)))
		return
	}
	e.ex.SettingNotes = append(e.ex.SettingNotes, fmt.Sprintf("%s=%t applies here", SettingStrongCiphers, e.settings.StrongCiphers))
}

// explainer is the state of one Explain call, shared by its stages.
type explainer struct {
	l        Listener
	p        *Policy
	ex       *Explanation
	cp       *ConfigProperties // configuration.properties when it applies to the listener (the console)
	settings Settings          // with defaults filled in
	java     []DisabledEntry   // java.security entries when it applies (the Manager's ports)
	used     []entryUse        // what each java entry did here
	// listed is the set of ciphers= suites; nil when configuration.properties lists none.
	listed map[uint16]bool
	// earlyTLS is set when TLS 1.0 or 1.1 is accepted (after the versions stage); classicGroup when a
	// group that is not post-quantum is left (after the groups stage).
	earlyTLS, classicGroup bool
}

// newExplainer picks the layers that apply to the listener and collects their warnings.
func newExplainer(l Listener, layers Layers) *explainer {
	p := &Policy{Listener: l, Cert: layers.Cert}
	if p.Cert.KeyAlgorithm == "" {
		p.Cert = DefaultCert
	}
	e := &explainer{l: l, p: p, ex: &Explanation{Policy: p}}
	js := layers.JavaSecurity
	if l.Role.managerPort() && js == nil {
		js = DefaultJavaSecurity()
		p.Warnings = append(p.Warnings, "java.security is missing: the default content applies (TLSv1 and TLSv1.1 disabled); `tlsfleet manager` writes it on first start")
	}
	if !l.Role.managerPort() {
		js = nil
	}
	if l.Role == RoleConsole {
		e.cp = layers.Config
	}
	var settingWarnings []string
	e.settings, settingWarnings = layers.Settings.withDefaults()
	p.Warnings = append(p.Warnings, settingWarnings...)

	if js != nil {
		e.java = js.Disabled
		p.Warnings = append(p.Warnings, js.Warnings...)
	}
	if e.cp != nil {
		p.Warnings = append(p.Warnings, e.cp.Warnings...)
	}
	e.used = make([]entryUse, len(e.java))
	return e
}

// javaRemoval is the removal of an item by a java.security entry.
func javaRemoval(item, kind string, e DisabledEntry, reason string) Removal {
	return Removal{Item: item, Kind: kind, Layer: LayerJava, Entry: e.Text, Where: where(e.File, e.Line), Reason: reason}
}

// note records an effect of java.security entry i.
func (e *explainer) note(i int, what string) { e.used[i].add(what) }

// versions is stage 1: protocol versions.
func (e *explainer) versions() {
	p, cp := e.p, e.cp
	minSetting, minName := e.settings.minimumFor(e.l.Role)
	for _, v := range AllVersions {
		var by []Removal
		if v == SSLv3 {
			by = append(by, Removal{Item: v.String(), Kind: "version", Layer: LayerGo, Reason: "SSL 3.0 is never offered or accepted (Go has no SSL 3.0)"})
		}
		for i, je := range e.java {
			if je.matchesVersion(v) {
				by = append(by, javaRemoval(v.String(), "version", je, "protocol disabled"))
				e.used[i].versions = append(e.used[i].versions, v.String())
			}
		}
		if cp != nil && cp.Protocols != nil && !slices.Contains(cp.Protocols, v) && v != SSLv3 {
			by = append(by, Removal{Item: v.String(), Kind: "version", Layer: LayerConfig, Entry: "protocols=" + cp.ProtocolsEntry.Value,
				Where: where(cp.ProtocolsEntry.File, cp.ProtocolsEntry.Line), Reason: "not listed in protocols="})
		}
		if v != SSLv3 && v < minSetting {
			by = append(by, Removal{Item: v.String(), Kind: "version", Layer: LayerSettings, Entry: minName + "=" + minSetting.String(), Reason: "below the minimum for " + string(e.l.Role)})
		}
		e.ex.Versions = append(e.ex.Versions, Verdict{Item: v.String(), Allowed: len(by) == 0, By: by})
		if len(by) == 0 {
			p.Versions = append(p.Versions, v)
		}
		p.Removed = append(p.Removed, by...)
	}
	if cp != nil && cp.Protocols != nil && slices.Contains(cp.Protocols, TLSv1_2) && !slices.Contains(cp.Protocols, TLSv1_3) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s: protocols= lists TLSv1.2 but not TLSv1.3, so port %d does not offer TLS 1.3; write protocols=TLSv1.2,TLSv1.3 to keep it", where(cp.ProtocolsEntry.File, cp.ProtocolsEntry.Line), e.l.Port))
	}
	e.earlyTLS = p.Allows(TLSv1) || p.Allows(TLSv1_1)
	if e.l.Role.managerPort() && !slices.ContainsFunc(e.java, func(je DisabledEntry) bool { return je.matchesVersion(SSLv3) }) {
		p.Warnings = append(p.Warnings, "java.security does not disable SSLv3: a JDK would negotiate SSL 3.0 with a client that offers nothing newer it accepts; tlsfleet never accepts SSL 3.0 (Go has none)")
	}
}

// groups is stage 2: key-exchange groups. Without one, TLS 1.3 is removed.
func (e *explainer) groups() {
	p := e.p
	for _, g := range Groups() {
		var by []Removal
		if !g.Go {
			by = append(by, Removal{Item: g.Name, Kind: "group", Layer: LayerGo, Reason: "not implemented by Go's crypto/tls"})
		}
		for i, je := range e.java {
			if je.forbidsGroup(g) {
				by = append(by, javaRemoval(g.Name, "group", je, "key-exchange group disabled"))
				if g.Go {
					e.used[i].groups = append(e.used[i].groups, g.Name)
				}
			}
		}
		e.ex.Groups = append(e.ex.Groups, Verdict{Item: g.Name, Allowed: len(by) == 0, By: by})
		if g.Go {
			p.Removed = append(p.Removed, by...)
		}
	}
	for _, g := range goGroups() {
		if v := findVerdict(e.ex.Groups, g.Name); v != nil && v.Allowed {
			p.Groups = append(p.Groups, g.ID)
		}
	}
	e.classicGroup = slices.ContainsFunc(p.Groups, func(id tls.CurveID) bool { g, _ := GroupByID(id); return !g.PostQuantum })
	if len(p.Groups) == 0 && p.Allows(TLSv1_3) {
		e.dropVersion(TLSv1_3, "no key-exchange group is left, and TLS 1.3 needs one")
	}
}

// dropVersion removes a version that the layers allow but the listener cannot negotiate.
func (e *explainer) dropVersion(v Version, reason string) {
	p := e.p
	r := Removal{Item: v.String(), Kind: "version", Layer: LayerDerived, Reason: reason}
	p.Removed = append(p.Removed, r)
	p.Versions = slices.DeleteFunc(p.Versions, func(x Version) bool { return x == v })
	if vd := findVerdict(e.ex.Versions, v.String()); vd != nil {
		vd.Allowed, vd.By = false, append(vd.By, r)
	}
}

// certificate is stage 3: the server's own certificate, its key and its signature.
func (e *explainer) certificate() {
	p := e.p
	for i, je := range e.java {
		switch {
		case !je.forbidsKey(certKeyFamily(p.Cert), p.Cert.KeyBits):
		case len(je.KeySize) > 0:
			// JDK 17's default key manager does not check the server's own certificate against
			// jdk.tls.disabledAlgorithms: it serves it, and only peers that apply the rule refuse it.
			p.Warnings = append(p.Warnings, fmt.Sprintf("the listener's own certificate key (%s) is below java.security entry %q (%s): the port still serves it, as the JDK does (it checks peers' keys, not its own), but clients applying the same rule will refuse it; issue a certificate with a stronger key", p.Cert, je.Text, where(je.File, je.Line)))
			e.note(i, "the listener's own certificate key is below it (served anyway, as the JDK does)")
		default:
			p.CertError = fmt.Sprintf("the listener's certificate key (%s) is forbidden by java.security entry %q (%s): no handshake can complete; issue a certificate with another key", p.Cert, je.Text, where(je.File, je.Line))
			e.note(i, "forbids this listener's certificate key")
		}
		if p.Cert.SignatureAlgorithm != "" && je.forbidsCertSignature(p.Cert.SignatureAlgorithm, "TLSServer") {
			p.Warnings = append(p.Warnings, fmt.Sprintf("the listener's certificate is signed with %s, which java.security entry %q forbids: clients applying the same rule will reject it", p.Cert.SignatureAlgorithm, je.Text))
			e.note(i, "flags this listener's certificate signature")
		}
	}
}

// signatureSchemes is the rest of stage 3: the handshake signature schemes the certificate can use.
func (e *explainer) signatureSchemes() {
	p := e.p
	var schemesLeft []tls.SignatureScheme
	restricted := false
	for _, sc := range schemesFor(p.Cert) {
		removed := false
		for i, je := range e.java {
			if je.forbidsHandshakeScheme(sc) {
				p.Removed = append(p.Removed, javaRemoval(sc.name, "signature", je, "handshake signature scheme disabled"))
				e.note(i, "disables handshake signatures with "+sc.name)
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
	e.curveBoundScheme(schemesLeft)
}

// curveBoundScheme applies JDK 17's binding of ECDSA signature schemes to the certificate's curve: in
// TLS 1.3 an EC key signs only with the scheme of its curve (ecdsa_secp256r1_sha256 for P-256), and the
// JDK refuses that scheme when java.security disables its group (secp256r1), so TLS 1.3 cannot
// authenticate. In TLS 1.2 the JDK also signs with the curve's scheme only (or ecdsa_sha1, which Go does
// not use); Go may use another ECDSA scheme there, which a note says.
func (e *explainer) curveBoundScheme(left []tls.SignatureScheme) {
	p := e.p
	if certKeyFamily(p.Cert) != "EC" || len(e.java) == 0 {
		return
	}
	i := slices.IndexFunc(sigSchemes, func(s sigScheme) bool { return s.key == "EC" && s.bits == p.Cert.KeyBits })
	if i < 0 {
		return
	}
	sc := sigSchemes[i]
	group := map[int]string{256: "secp256r1", 384: "secp384r1", 521: "secp521r1"}[sc.bits]
	if vd := findVerdict(e.ex.Groups, group); vd != nil && !vd.Allowed && p.Allows(TLSv1_3) {
		for _, r := range vd.By {
			if r.Layer == LayerJava {
				e.dropVersion(TLSv1_3, fmt.Sprintf("the %s certificate signs TLS 1.3 handshakes only with %s, which the JDK refuses once java.security entry %q (%s) disables its group %s", p.Cert, sc.name, r.Entry, r.Where, group))
				break
			}
		}
	}
	if !slices.Contains(left, sc.id) && len(left) > 0 && slices.Contains(p.Versions, TLSv1_2) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("java.security disables %s: in TLS 1.2 the JDK would sign with this %s key only with ecdsa_sha1 (and refuse ECDHE_ECDSA suites when SHA1 is disabled too); tlsfleet signs with the ECDSA schemes left (%s), which TLS 1.2 allows for any curve", sc.name, p.Cert, schemeNames(left)))
	}
}

func schemeNames(ids []tls.SignatureScheme) string {
	var out []string
	for _, id := range ids {
		if i := slices.IndexFunc(sigSchemes, func(s sigScheme) bool { return s.id == id }); i >= 0 {
			out = append(out, sigSchemes[i].name)
		}
	}
	return strings.Join(out, ", ")
}

// suites is stage 4: cipher suites of TLS 1.0–1.2, in Go's server order.
func (e *explainer) suites() {
	p, cp := e.p, e.cp
	if cp != nil && cp.Ciphers != nil {
		e.listed = map[uint16]bool{}
		e.ex.ciphers = cp
		for _, s := range cp.Ciphers {
			e.listed[s.ID] = true
		}
	}
	auth := certAuth(p.Cert)
	allowed := map[uint16]bool{}
	for _, s := range Registry() {
		if s.SCSV || s.TLS13 {
			continue
		}
		by := e.suiteRemovals(s, auth)
		e.ex.Suites = append(e.ex.Suites, Verdict{Item: s.Name, Allowed: len(by) == 0, By: by})
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
}

// suiteRemovals returns what removes a TLS 1.0–1.2 suite: Go, tlsfleet's defaults and each layer, and
// when none does, what the listener's versions, certificate (auth) and groups leave of it.
func (e *explainer) suiteRemovals(s Suite, auth string) []Removal {
	var by []Removal
	rm := func(layer, entry, wh, reason string) {
		by = append(by, Removal{Item: s.Name, Kind: "suite", Layer: layer, Entry: entry, Where: wh, Reason: reason})
	}
	switch {
	case !s.GoImplemented():
		rm(LayerGo, "", "", "not implemented by Go's crypto/tls")
	case e.listed[s.ID] || defaultSuite(s):
	case legacySuite(s) && e.earlyTLS:
	case legacySuite(s):
		rm(LayerDefaults, "", "", "legacy suite, offered only while the port accepts TLS 1.0 or 1.1 (or when listed in ciphers=)")
	default:
		rm(LayerDefaults, "", "", "not in Go's secure defaults; list it in ciphers= to enable it")
	}
	for i, je := range e.java {
		if je.matchesSuite(s) {
			by = append(by, javaRemoval(s.Name, "suite", je, "matches a disabled algorithm"))
			if s.GoImplemented() {
				e.used[i].suites = append(e.used[i].suites, s.Name)
			}
		}
	}
	if e.listed != nil && !e.listed[s.ID] {
		rm(LayerConfig, "ciphers=", where(e.cp.CiphersEntry.File, e.cp.CiphersEntry.Line), "not listed in ciphers=")
	}
	if e.settings.StrongCiphers && (e.l.Role == RoleRelay || e.l.Role == RoleAgent) && !s.Strong() {
		rm(LayerSettings, SettingStrongCiphers+"=true", "", "not an ECDHE suite with an AEAD cipher")
	}
	if len(by) == 0 {
		usable := false
		for _, v := range e.p.Versions {
			usable = usable || s.SupportsVersion(v)
		}
		switch {
		case !usable:
			rm(LayerDerived, "", "", "no accepted protocol version can negotiate it")
		case s.Auth != auth:
			rm(LayerCert, "", "", fmt.Sprintf("needs an %s certificate; this listener's key is %s", s.Auth, e.p.Cert))
		case s.KeyExchange == "ECDHE" && !e.classicGroup:
			rm(LayerDerived, "", "", "no elliptic-curve group is left for ECDHE")
		}
	}
	return by
}

// tls13WithoutSuites drops TLS 1.3 when java.security forbids every TLS 1.3 suite Go has: a JDK would
// have no TLS 1.3 suite left, and Go, which cannot take single TLS 1.3 suites away, can still take TLS 1.3.
func (e *explainer) tls13WithoutSuites() {
	if !e.p.Allows(TLSv1_3) || len(e.java) == 0 {
		return
	}
	var by []string
	for _, s := range Registry() {
		if !s.TLS13 || !s.GoImplemented() {
			continue
		}
		i := slices.IndexFunc(e.java, func(je DisabledEntry) bool { return je.matchesSuite(s) })
		if i < 0 {
			return
		}
		by = append(by, fmt.Sprintf("%s by %q", s.Name, e.java[i].Text))
	}
	e.dropVersion(TLSv1_3, "java.security forbids every TLS 1.3 suite ("+strings.Join(by, ", ")+"), as a JDK would")
}

// tls13Suites is stage 5: TLS 1.3 suites. Go always offers all three; a layer that forbids one is
// reported, not obeyed.
func (e *explainer) tls13Suites() {
	p, cp := e.p, e.cp
	tls13 := p.Allows(TLSv1_3)
	for _, s := range Registry() {
		if !s.TLS13 {
			continue
		}
		var by []Removal
		if !s.GoImplemented() {
			by = append(by, Removal{Item: s.Name, Kind: "suite", Layer: LayerGo, Reason: "not implemented by Go's crypto/tls"})
			e.ex.Suites = append(e.ex.Suites, Verdict{Item: s.Name, By: by})
			continue
		}
		var forbidden []Removal
		for i, je := range e.java {
			if je.matchesSuite(s) {
				forbidden = append(forbidden, javaRemoval(s.Name, "suite", je, ""))
				e.note(i, "forbids "+s.Name+" (not enforceable)")
			}
		}
		if e.listed != nil && !e.listed[s.ID] {
			forbidden = append(forbidden, Removal{Item: s.Name, Kind: "suite", Layer: LayerConfig, Entry: "ciphers=", Where: where(cp.CiphersEntry.File, cp.CiphersEntry.Line)})
		}
		for i := range forbidden {
			if tls13 {
				forbidden[i].Reason = fmt.Sprintf("Go's crypto/tls cannot disable single TLS 1.3 suites: port %d still negotiates %s over TLS 1.3 (a JDK would refuse it); to honour this, remove TLSv1.3 from the port", e.l.Port, s.Name)
			} else {
				forbidden[i].Reason = "TLS 1.3 is off on this port, so the suite is not negotiated anyway"
			}
		}
		if tls13 {
			p.TLS13Suites = append(p.TLS13Suites, s.ID)
			p.NotEnforced = append(p.NotEnforced, forbidden...)
		} else {
			by = append(by, Removal{Item: s.Name, Kind: "suite", Layer: LayerDerived, Reason: "TLS 1.3 is not accepted on this port"})
			by = append(by, forbidden...)
		}
		e.ex.Suites = append(e.ex.Suites, Verdict{Item: s.Name, Allowed: tls13, By: by})
		p.Removed = append(p.Removed, by...)
	}
	if e.listed != nil && tls13 && !slices.ContainsFunc(cp.Ciphers, func(s Suite) bool { return s.TLS13 }) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("ciphers= names no TLS 1.3 suite: on a JDK that would leave TLS 1.3 unusable; Go negotiates its three TLS 1.3 suites (all AEAD with forward secrecy) on port %d regardless; add protocols=TLSv1.2 to turn TLS 1.3 off", e.l.Port))
	}
	slices.SortFunc(p.TLS13Suites, func(a, b uint16) int { return slices.Index(tls13Order, a) - slices.Index(tls13Order, b) })
}

// entries is stage 6: the rules for peer certificates (mutual TLS), and what each java.security entry
// did, with a warning for each that did nothing.
func (e *explainer) entries() {
	p := e.p
	for i, je := range e.java {
		if fams, ok := keyAlgorithmAliases[strings.ToUpper(je.Algorithm)]; ok && fams[0] != "DH" && fams[0] != "XDH" && (len(je.KeySize) > 0 || !je.Constrained()) {
			p.PeerRules = append(p.PeerRules, je)
			e.note(i, "applied to peer certificates on mutual-TLS ports")
		} else if isSignatureName(je.Algorithm) && (!je.Constrained() || usageOnly(je, "CertificateSignature", "TLSClient")) {
			p.PeerRules = append(p.PeerRules, je)
			e.note(i, "applied to certificate signatures of peers on mutual-TLS ports")
		}
		e.ex.Entries = append(e.ex.Entries, describeEntry(je, e.used[i].String()))
	}
	var defaults []string
	for _, ee := range e.ex.Entries {
		switch {
		case !ee.NoOp:
		case slices.Contains(jdkDefaultEntries(), ee.Entry):
			defaults = append(defaults, ee.Entry)
		default:
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s: java.security entry %q has no effect here: %s", ee.Where, ee.Entry, ee.Effect))
		}
	}
	if len(defaults) > 0 {
		// The JDK's own default entries that find nothing to restrict in Go are not the operator's doing:
		// one line, not one each (`tlsfleet policy` lists why under "java.security entries").
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d entries of the JDK's default list have no effect here, as Go's crypto/tls has nothing they restrict: %s", len(defaults), strings.Join(defaults, ", ")))
	}
}

// noSuiteReason begins the reason of a version removed because no suite it can negotiate is left.
const noSuiteReason = "no cipher suite it can negotiate is left"

// versionsWithoutSuites is stage 5b: a TLS 1.0–1.2 version with no suite left cannot complete a
// handshake, so it is not accepted (the JDK drops such a version from its active protocols too).
func (e *explainer) versionsWithoutSuites() {
	p := e.p
	var dropped []string
	for _, v := range slices.Clone(p.Versions) {
		if v == TLSv1_3 || slices.ContainsFunc(p.Suites, func(id uint16) bool { s, _ := SuiteByID(id); return s.SupportsVersion(v) }) {
			continue
		}
		e.dropVersion(v, noSuiteReason+" (see the suites removed below)")
		dropped = append(dropped, v.String())
	}
	if len(dropped) > 0 && len(p.Versions) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s not accepted on port %d: no cipher suite %s can negotiate is left", strings.Join(dropped, " and "), e.l.Port, pronoun(len(dropped))))
	}
	e.earlyTLS = p.Allows(TLSv1) || p.Allows(TLSv1_1)
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "they"
}

// finalWarnings warns about a listener that no handshake, or only TLS 1.3, can reach.
func (e *explainer) finalWarnings() {
	p := e.p
	if err := e.ex.LockOut(); err != nil {
		p.Warnings = append(p.Warnings, err.Error())
	} else if len(p.Versions) == 1 && p.Versions[0] == TLSv1_3 && len(p.Suites) == 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("no TLS 1.0–1.2 cipher suite is left on port %d: only TLS 1.3 clients can connect", e.l.Port))
	}
}
