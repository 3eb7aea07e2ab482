package tlspolicy

import (
	"crypto/tls"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sys/cpu"
)

// Decision is what a listener does with a ClientHello: accept it with a version and suite, or reject it.
type Decision struct {
	Accepted bool
	Version  Version
	Suite    uint16
	// Group is the predicted key-exchange group (TLS 1.3 and ECDHE suites). ClientHelloInfo does not carry
	// the client's key shares, so when several groups are mutual and none is post-quantum this is the first
	// in Go's order, which the real handshake may replace by one the client sent a share for.
	Group tls.CurveID
	// Reason explains a rejection in words an operator can act on.
	Reason string
	// Alert is the TLS alert the listener sends when it rejects.
	Alert string
}

func (d Decision) String() string {
	if !d.Accepted {
		return "rejected: " + d.Reason
	}
	return fmt.Sprintf("accepted: %s %s", d.Version, SuiteName(d.Suite))
}

// hasAESGCMHardware mirrors crypto/tls's test for AES-GCM hardware, which decides its suite order.
var hasAESGCMHardware = cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3 ||
	cpu.ARM64.HasAES && cpu.ARM64.HasPMULL ||
	cpu.S390X.HasAES && cpu.S390X.HasAESCTR && cpu.S390X.HasGHASH ||
	runtime.GOARCH == "ppc64" || runtime.GOARCH == "ppc64le"

// aesGCMPreferred says whether Go puts AES-GCM first for this client: this machine has AES hardware and
// the first suite the client lists that Go knows is an AES-GCM one.
func aesGCMPreferred(clientSuites []uint16) bool {
	if !hasAESGCMHardware {
		return false
	}
	for _, id := range clientSuites {
		if s, ok := SuiteByID(id); ok && s.GoImplemented() {
			// Go counts only the ECDHE and TLS 1.3 AES-GCM suites, not RSA key exchange ones.
			return s.CipherFamily == "AES" && s.Mode == "GCM" && (s.TLS13 || s.KeyExchange == "ECDHE")
		}
	}
	return false
}

const fallbackSCSV = 0x5600

// Evaluate predicts what a listener serving policy p does with a ClientHello, following Go's server
// handshake rules (version by server preference, suites in Go's fixed order, group and signature checks).
// It must agree with the real listener: tests compare both with real clients. It assumes Go's default
// GODEBUG settings; GODEBUGWarnings names the ones that would break that assumption.
func Evaluate(p *Policy, hello *tls.ClientHelloInfo) Decision {
	reject := func(alert, format string, args ...any) Decision {
		return Decision{Reason: fmt.Sprintf(format, args...), Alert: alert}
	}
	if p.CertError != "" {
		return reject("internal_error", "%s", p.CertError)
	}
	clientVersions := clientVersionsOf(hello)
	vers, pin := negotiateVersion(p, clientVersions)
	if vers == 0 {
		return reject("protocol_version", "client offered %s; port %d accepts %s", versionList(clientVersions), p.Listener.Port, versionList(toUint16s(p.Versions)))
	}
	if vers == TLSv1_3 {
		return evaluateTLS13(p, hello)
	}
	d := evaluateTLS12(p, hello, vers)
	if !d.Accepted {
		return d
	}
	// RFC 7507, checked by Go once the suite is chosen: a client that signals a fallback must not be
	// below the newest version the listener's config accepts.
	configMax := p.MaxVersion()
	if pin != 0 {
		configMax = pin
	}
	if legacy := legacyVersion(hello, clientVersions); slices.Contains(hello.CipherSuites, fallbackSCSV) && legacy < configMax {
		return reject("inappropriate_fallback", "client signalled a fallback (TLS_FALLBACK_SCSV) to %s while port %d accepts %s", legacy, p.Listener.Port, configMax)
	}
	return d
}

// clientVersionsOf returns the versions the client offers as Go's server sees them: without a
// supported_versions extension a client cannot get TLS 1.3, whatever its legacy version says.
func clientVersionsOf(hello *tls.ClientHelloInfo) []uint16 {
	vs := hello.SupportedVersions
	if hello.Extensions != nil && !slices.Contains(hello.Extensions, extSupportedVersions) {
		vs = slices.DeleteFunc(slices.Clone(vs), func(v uint16) bool { return v > uint16(TLSv1_2) })
	}
	return vs
}

const extSupportedVersions = 43

// legacyVersion estimates the ClientHello's legacy_version field, which ClientHelloInfo does not carry:
// without supported_versions it is the client's maximum; with it, clients send TLS 1.2 (or less).
func legacyVersion(hello *tls.ClientHelloInfo, clientVersions []uint16) Version {
	var max Version
	for _, v := range clientVersions {
		if Version(v).Known() && Version(v) > max {
			max = Version(v)
		}
	}
	if slices.Contains(hello.Extensions, extSupportedVersions) || hello.Extensions == nil {
		max = min(max, TLSv1_2)
	}
	return max
}

// negotiateVersion returns the version a listener serving p negotiates with a client (0 if none), and
// the version its config must be pinned to (0 if none). Go picks the newest client version between
// MinVersion and MaxVersion; when p's versions have a gap (TLSv1 and TLSv1.2 without TLSv1.1) and that
// pick falls into it, the config is pinned to the right version — or, when the client has no allowed
// version, to one it lacks, so that Go refuses it.
func negotiateVersion(p *Policy, clientVersions []uint16) (vers, pin Version) {
	for i := len(p.Versions) - 1; i >= 0; i-- {
		if slices.Contains(clientVersions, uint16(p.Versions[i])) {
			vers = p.Versions[i]
			break
		}
	}
	var goPick Version
	for v := p.MaxVersion(); v >= p.MinVersion() && v != 0; v-- {
		if slices.Contains(clientVersions, uint16(v)) {
			goPick = v
			break
		}
	}
	switch {
	case goPick == vers:
		return vers, 0
	case vers != 0:
		return vers, vers
	default:
		return 0, p.MaxVersion()
	}
}

func evaluateTLS13(p *Policy, hello *tls.ClientHelloInfo) Decision {
	d := Decision{Version: TLSv1_3}
	order := tls13OrderNoAES
	if aesGCMPreferred(hello.CipherSuites) {
		order = tls13Order
	}
	for _, id := range order {
		if slices.Contains(p.TLS13Suites, id) && slices.Contains(hello.CipherSuites, id) {
			d.Suite = id
			break
		}
	}
	if d.Suite == 0 {
		return Decision{Reason: "no TLS 1.3 cipher suite in common; client offered " + suiteList(hello.CipherSuites), Alert: "handshake_failure"}
	}
	var mutual []tls.CurveID
	for _, g := range p.Groups {
		if slices.Contains(hello.SupportedCurves, g) {
			mutual = append(mutual, g)
		}
	}
	if len(mutual) == 0 {
		return Decision{Reason: fmt.Sprintf("no key-exchange group in common: client offered %s; port accepts %s", groupList(hello.SupportedCurves), groupList(p.Groups)), Alert: "handshake_failure"}
	}
	d.Group = mutual[0]
	if reject, bad := checkSignatures(p, TLSv1_3, hello); bad {
		return reject
	}
	d.Accepted = true
	return d
}

// checkSignatures rejects a hello whose signature_algorithms leave the listener nothing to sign with
// (TLS 1.3, and TLS 1.2 ECDHE suites).
func checkSignatures(p *Policy, vers Version, hello *tls.ClientHelloInfo) (Decision, bool) {
	if len(hello.SignatureSchemes) == 0 {
		if vers == TLSv1_3 {
			return Decision{Reason: "client sent no signature_algorithms, which TLS 1.3 requires", Alert: "missing_extension"}, true
		}
		return Decision{Reason: "TLS 1.2 client sent no signature_algorithms (Go requires it since 1.25)", Alert: "handshake_failure"}, true
	}
	if !signatureOK(p, vers, hello.SignatureSchemes) {
		return Decision{Reason: fmt.Sprintf("client accepts no signature scheme usable with the %s certificate", p.Cert), Alert: "handshake_failure"}, true
	}
	return Decision{}, false
}

func evaluateTLS12(p *Policy, hello *tls.ClientHelloInfo, vers Version) Decision {
	// Go takes the client's first group that the listener allows (hybrids exist only in TLS 1.3).
	var group tls.CurveID
	for _, g := range hello.SupportedCurves {
		if gi, _ := GroupByID(g); !gi.PostQuantum && slices.Contains(p.Groups, g) {
			group = g
			break
		}
	}
	uncompressed, other := len(hello.SupportedPoints) == 0, false
	for _, pf := range hello.SupportedPoints {
		if pf == 0 {
			uncompressed = true
		} else {
			other = true
		}
	}
	if other && !uncompressed {
		return Decision{Reason: "client offered only compressed elliptic-curve point formats", Alert: "missing_extension"}
	}
	ecdheOK := group != 0 && uncompressed
	auth := certAuth(p.Cert)
	order := goServerOrderNoAES
	if aesGCMPreferred(hello.CipherSuites) {
		order = goServerOrder
	}
	var chosen Suite
	for _, id := range order {
		if !slices.Contains(p.Suites, id) || !slices.Contains(hello.CipherSuites, id) {
			continue
		}
		s, _ := SuiteByID(id)
		if s.KeyExchange == "ECDHE" && !ecdheOK || s.Auth != auth || !s.SupportsVersion(vers) {
			continue
		}
		chosen = s
		break
	}
	if chosen.ID == 0 {
		why := "no cipher suite in common"
		if group == 0 && slices.ContainsFunc(p.Suites, func(id uint16) bool { return slices.Contains(hello.CipherSuites, id) }) {
			why += " that the client can use (it offered no elliptic-curve group this port accepts)"
		}
		return Decision{Reason: fmt.Sprintf("%s for %s: client offered %s; port %d accepts %s", why, vers, suiteList(hello.CipherSuites), p.Listener.Port, suiteList(p.Suites)), Alert: "handshake_failure"}
	}
	d := Decision{Version: vers, Suite: chosen.ID}
	if p.Cert.KeyAlgorithm == "Ed25519" && vers < TLSv1_2 {
		// Go picks the ECDSA suite, then fails to sign: Ed25519 has no TLS 1.0/1.1 signature form.
		return Decision{Reason: fmt.Sprintf("an Ed25519 certificate cannot sign in %s; %s needs TLS 1.2", vers, SuiteName(chosen.ID)), Alert: "handshake_failure"}
	}
	if chosen.KeyExchange == "ECDHE" {
		d.Group = group
		if vers == TLSv1_2 {
			if reject, bad := checkSignatures(p, vers, hello); bad {
				return reject
			}
		}
	}
	d.Accepted = true
	return d
}

// signatureOK reports whether the client accepts a signature scheme the listener would sign with: one of
// Go's for the certificate's key (never SHA-1, and no PKCS #1 v1.5 in TLS 1.3), within the policy's
// restriction if a layer made one.
func signatureOK(p *Policy, vers Version, schemes []tls.SignatureScheme) bool {
	for _, sc := range schemesFor(p.Cert) {
		if vers == TLSv1_3 && (sc.tls12 || sc.key == "EC" && sc.bits != p.Cert.KeyBits) {
			continue
		}
		if p.SignatureSchemes != nil && !slices.Contains(p.SignatureSchemes, sc.id) {
			continue
		}
		if sc.key == "RSA" && p.Cert.KeyBits/8 < sc.minRSABytes() {
			continue // the modulus is too small for this hash and padding
		}
		if slices.Contains(schemes, sc.id) {
			return true
		}
	}
	return false
}

func toUint16s(vs []Version) []uint16 {
	out := make([]uint16, len(vs))
	for i, v := range vs {
		out[i] = uint16(v)
	}
	return out
}

func versionList(vs []uint16) string {
	if len(vs) == 0 {
		return "no version"
	}
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = Version(v).String()
	}
	return strings.Join(names, ", ")
}

func suiteList(ids []uint16) string {
	if len(ids) == 0 {
		return "no suite"
	}
	const max = 6
	names := make([]string, 0, max+1)
	for i, id := range ids {
		if i == max {
			names = append(names, fmt.Sprintf("and %d more", len(ids)-max))
			break
		}
		names = append(names, SuiteName(id))
	}
	return strings.Join(names, ", ")
}

func groupList(ids []tls.CurveID) string {
	if len(ids) == 0 {
		return "no group"
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = GroupName(id)
	}
	return strings.Join(names, ", ")
}
