package scan

import (
	"context"
	"crypto/tls"
	"slices"

	"tlsfleet/internal/tlspolicy"
)

// groupCandidates lists the groups offered when enumerating groups: nmap's first, then every other
// registered group (for TLS 1.3 including finite-field groups and the post-quantum hybrids; for TLS 1.2
// only elliptic curves, which is all ECDHE can use).
func groupCandidates(v uint16) []uint16 {
	out := slices.Clone(nmapGroups)
	if v < tls.VersionTLS13 {
		out = slices.DeleteFunc(out, func(g uint16) bool { return g >= 256 })
	}
	for _, g := range tlspolicy.Groups() {
		id := uint16(g.ID)
		if slices.Contains(out, id) {
			continue
		}
		if v < tls.VersionTLS13 && (g.ECBits == 0 || g.PostQuantum) {
			continue
		}
		out = append(out, id)
	}
	return out
}

// fallbackCurves are the curves re-tested alongside the certificate's curve on ECDSA servers that accept
// other curves only when their own is offered too (OpenSSL does this in TLS 1.2).
var fallbackCurves = []uint16{29, 30, 23, 24, 25, 26, 27, 28}

// enumerateGroups finds the named groups a version accepts, in the order the server picks them: TLS 1.3
// through HelloRetryRequests (an empty key_share makes the server name its group), TLS 1.2 through the
// curve in the ServerKeyExchange of an ECDHE suite.
//
// It needs only one accepted suite that uses a group (any TLS 1.3 suite, an ECDHE suite before), so the
// scan starts it as soon as the suite enumeration has found one, and both run side by side.
//
// seed is the group the suite's own probe used (0 if unknown): the server picked it from nmap's list, so
// it is known to be accepted and is not asked for again. (The order of the groups found is then the
// server's, except that the seed, its favourite among nmap's groups, comes first.)
func (t *target) enumerateGroups(ctx context.Context, v uint16, suite uint16, cert *certInfo, seed uint16) []uint16 {
	suites := []uint16{suite}
	offer := groupCandidates(v)
	var found []uint16
	if seed != 0 && slices.Contains(offer, seed) {
		found = append(found, seed)
		offer = slices.DeleteFunc(offer, func(x uint16) bool { return x == seed })
	}
	pick := func(groups []uint16) uint16 {
		r := t.probe(ctx, t.hello(v, suites, groups, nil), v < tls.VersionTLS13)
		if r.hello == nil || r.version() != v || r.kx == nil || !slices.Contains(groups, r.kx.group) {
			return 0
		}
		return r.kx.group
	}
	for len(offer) > 0 && ctx.Err() == nil {
		g := pick(offer)
		if g == 0 {
			break
		}
		found = append(found, g)
		offer = slices.DeleteFunc(offer, func(x uint16) bool { return x == g })
	}
	if v == tls.VersionTLS12 && cert != nil && cert.keyType == "ec" {
		if own, ok := tlspolicy.LookupGroup(cert.curve); ok && slices.Contains(found, uint16(own.ID)) {
			for _, g := range fallbackCurves {
				if !slices.Contains(found, g) && g != uint16(own.ID) && pick([]uint16{g, uint16(own.ID)}) == g {
					found = append(found, g)
				}
			}
		}
	}
	return found
}
