package tlspolicy

import (
	"fmt"
	"strings"
)

// This file says when a policy would leave a listener unable to complete any handshake, and builds the
// one text that the Manager logs (keeping the last good policy) and `tlsfleet policy` exits with.

// LockOutError is a policy under which a listener can complete no handshake.
type LockOutError struct {
	Listener Listener
	// Reasons say why each version is gone; Fixes what would make the port usable again.
	Reasons []string
	Fixes   []string
}

func (e *LockOutError) Error() string {
	s := fmt.Sprintf("port %d (%s) could complete no TLS handshake under this policy: %s", e.Listener.Port, e.Listener.Role, strings.Join(e.Reasons, "; "))
	if len(e.Fixes) > 0 {
		s += ". Fix: " + strings.Join(e.Fixes, "; or ")
	}
	return s
}

// LockOut returns a *LockOutError when no handshake can complete on the listener (no protocol version is
// left, or the listener's own certificate is forbidden), nil otherwise.
func (ex *Explanation) LockOut() error {
	p := ex.Policy
	if len(p.Versions) > 0 && p.CertError == "" {
		return nil
	}
	lo := &LockOutError{Listener: p.Listener}
	if p.CertError != "" {
		lo.Reasons = append(lo.Reasons, p.CertError)
	}
	if len(p.Versions) == 0 {
		ex.explainNoVersion(lo)
	}
	return lo
}

// explainNoVersion says, version by version, what removed it, and what would bring one back.
func (ex *Explanation) explainNoVersion(lo *LockOutError) {
	var noSuite []Version
	byWhat := map[string][]string{} // a layer's removal → the versions it removed
	var order []string
	for _, v := range ServedVersions {
		vd := findVerdict(ex.Versions, v.String())
		if vd == nil {
			continue
		}
		for _, r := range vd.By {
			if r.Layer == LayerDerived && strings.HasPrefix(r.Reason, noSuiteReason) {
				noSuite = append(noSuite, v)
				break
			}
			// One reason per version: the first layer that removed it.
			k := removalText(r)
			if r.Layer == LayerJava {
				k = fmt.Sprintf("%s (%s)", LayerJava, r.Where)
			}
			if _, ok := byWhat[k]; !ok {
				order = append(order, k)
			}
			byWhat[k] = append(byWhat[k], v.String())
			break
		}
	}
	for _, v := range noSuite {
		lo.Reasons = append(lo.Reasons, fmt.Sprintf("%s has no cipher suite left (%s)", v, strings.Join(ex.whyNoSuite(v), "; ")))
	}
	for _, k := range order {
		lo.Reasons = append(lo.Reasons, fmt.Sprintf("%s removed by %s", strings.Join(byWhat[k], ", "), k))
	}
	lo.Fixes = ex.lockOutFixes(noSuite)
}

// removalText names a removal for people: its layer, entry and place, and its reason.
func removalText(r Removal) string {
	s := r.Layer
	if d := describeRemoval(r); d != "" {
		s += " " + d
	}
	if r.Reason != "" && r.Layer != LayerJava {
		s += ": " + r.Reason
	}
	return s
}

// whyNoSuite groups what removed the suites a version could otherwise use: those listed in ciphers= when
// it lists any, else Go's secure defaults and the legacy suites.
func (ex *Explanation) whyNoSuite(v Version) []string {
	p := ex.Policy
	var order []string
	groups := map[string][]string{}
	for _, s := range ex.candidates() {
		vd := findVerdict(ex.Suites, s.Name)
		if vd == nil || !s.SupportsVersion(v) {
			continue
		}
		for _, r := range vd.By {
			if r.Layer == LayerGo || r.Layer == LayerDefaults || r.Layer == LayerConfig && ex.ciphers != nil {
				continue
			}
			k := removalText(r)
			if r.Layer == LayerCert {
				k = fmt.Sprintf("need an %s certificate and this listener's is %s", s.Auth, p.Cert)
			}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], s.Name)
			break
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, fmt.Sprintf("%s: %s", strings.Join(groups[k], ", "), k))
	}
	return out
}

// candidates are the suites the listener would offer but for java.security, its certificate and its
// versions: those ciphers= lists when it lists any, in its order; else Go's defaults and the legacy suites.
func (ex *Explanation) candidates() []Suite {
	var out []Suite
	if ex.ciphers != nil {
		for _, s := range ex.ciphers.Ciphers {
			if s.GoImplemented() && !s.TLS13 {
				out = append(out, s)
			}
		}
		return out
	}
	for _, s := range Registry() {
		if !s.TLS13 && (defaultSuite(s) || legacySuite(s)) {
			out = append(out, s)
		}
	}
	return out
}

// lockOutFixes suggests the smallest changes that bring a version back.
func (ex *Explanation) lockOutFixes(noSuite []Version) []string {
	p := ex.Policy
	var fixes []string
	if ex.ciphers != nil {
		var twins, mismatched []string
		for _, s := range ex.ciphers.Ciphers {
			if s.TLS13 || s.Auth == certAuth(p.Cert) || s.Auth == "" {
				continue
			}
			mismatched = append(mismatched, s.Name)
			if t, ok := twinSuite(s, certAuth(p.Cert)); ok {
				twins = append(twins, t.Name)
			}
		}
		if len(twins) > 0 {
			fixes = append(fixes, fmt.Sprintf("in %s write ciphers=%s (the %s twins of %s, for this listener's %s certificate)",
				where(ex.ciphers.CiphersEntry.File, ex.ciphers.CiphersEntry.Line), strings.Join(twins, ","), certAuth(p.Cert), strings.Join(mismatched, ", "), p.Cert))
		}
		fixes = append(fixes, fmt.Sprintf("remove ciphers= from %s: the defaults keep ECDHE suites for this certificate (%s=true restricts relays and agents to ECDHE with AEAD, not the Manager's ports)",
			ex.ciphers.CiphersEntry.File, SettingStrongCiphers))
	}
	if vd := findVerdict(ex.Versions, TLSv1_3.String()); vd != nil && !vd.Allowed {
		for _, r := range vd.By {
			if r.Layer == LayerConfig {
				fixes = append(fixes, fmt.Sprintf("allow TLS 1.3 in %s: protocols=TLSv1.2,TLSv1.3", r.Where))
			}
		}
	}
	if len(noSuite) == 0 && len(fixes) == 0 {
		fixes = append(fixes, "allow at least TLSv1.2: take it out of java.security's "+DisabledAlgorithmsKey+" and add it to protocols=")
	}
	return fixes
}

// twinSuite returns the suite that differs from s only by its authentication (TLS_ECDHE_RSA_… ↔
// TLS_ECDHE_ECDSA_…).
func twinSuite(s Suite, auth string) (Suite, bool) {
	if s.KeyExchange != "ECDHE" || auth == "" {
		return Suite{}, false
	}
	name := strings.Replace(s.Name, "_ECDHE_"+s.Auth+"_", "_ECDHE_"+auth+"_", 1)
	t, ok := LookupSuite(name)
	return t, ok && t.GoImplemented()
}
