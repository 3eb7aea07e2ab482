package scan

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"sort"

	"tlsfleet/internal/tlspolicy"
)

// chunkSize is the most suites nmap offers at once to servers that cannot take a long list of suites.
const chunkSize = 64

// commonness ranks suites for the first short hello to a server that refuses long ones: the key
// exchanges and ciphers real servers use come first.
func commonness(id uint16) int {
	s, ok := tlspolicy.SuiteByID(id)
	if !ok || s.Export {
		return 0
	}
	n := 0
	switch s.KeyExchange {
	case "ECDHE", "RSA":
		n += 4
	case "DHE":
		n += 3
	}
	switch s.Auth {
	case "RSA", "ECDSA":
		n += 2
	}
	switch s.CipherFamily {
	case "AES", "CHACHA20":
		n += 3
	case "3DES", "RC4", "CAMELLIA":
		n += 2
	}
	return n
}

// chunkSize returns how many suites fit in a hello of at most 255 bytes (as nmap computes it), between 8
// and 64.
func (t *target) chunkSize(v uint16, groups []uint16) int {
	b, err := t.hello(v, nil, groups, nil).Marshal()
	if err != nil {
		return chunkSize
	}
	return max(8, min(chunkSize, (255-len(b))/2))
}

// scanVersion enumerates one version: suites by offering everything and removing what the server picks
// (so a server that uses its own order reveals that order), then preference, compressors and groups.
func (t *target) scanVersion(ctx context.Context, v uint16) *versionScan {
	vs := &versionScan{version: v}
	all := candidates(v)
	e := &suiteEnumeration{t: t, ctx: ctx, vs: vs, v: v, groups: suiteGroups(v), remaining: slices.Clone(all),
		groupsDone: make(chan []uint16, 1), compressionSeen: map[uint8]bool{0: true}}

	first, ok := e.enumerate(all)
	chunked := false
	if ok && len(vs.suites) == 0 && first.hello == nil && len(all) > chunkSize && (first.kind == failClosed || first.kind == failTimeout || first.kind == failBroken) {
		chunked = true
		e.enumerateChunked()
	}
	if e.groupsStarted {
		defer func() { vs.groups = <-e.groupsDone }()
	}
	if len(vs.suites) == 0 {
		noteRefusal(vs, first)
		return vs
	}
	if v < tls.VersionTLS13 {
		e.finishCompressors()
	}
	t.preference(ctx, vs, e.groups, chunked)
	return vs
}

// suiteEnumeration is the state of one version's suite enumeration, shared by its probes.
type suiteEnumeration struct {
	t         *target
	ctx       context.Context
	vs        *versionScan
	v         uint16
	groups    []uint16 // the supported_groups of every hello
	remaining []uint16 // candidates not picked yet
	// groupsDone receives the group enumeration's result, which the first pick of a suite that needs a
	// group starts (groupsStarted) beside the suite enumeration.
	groupsDone    chan []uint16
	groupsStarted bool
	// Before TLS 1.3, once the version has answered, the hellos also offer DEFLATE and LZS compression
	// (NULL last), so that the picks reveal compression support without probes of their own. A server
	// that fails the first such hello is asked again without them, and never offered them again.
	compression     []byte
	compressionOK   bool
	compressionSeen map[uint8]bool
}

// take records a pick; it reports false when enumeration must stop.
func (e *suiteEnumeration) take(offer []uint16, r probeResult) bool {
	vs, v := e.vs, e.v
	id := r.hello.CipherSuite
	if !slices.Contains(offer, id) {
		vs.note = fmt.Sprintf("server chose suite 0x%04x, which was not offered; enumeration stopped", id)
		return false
	}
	s, _ := tlspolicy.SuiteByID(id)
	vs.suites = append(vs.suites, acceptedSuite{suite: s, cert: r.cert, kx: r.kx})
	if !e.groupsStarted && v >= tls.VersionTLS12 && (v == tls.VersionTLS13 || s.KeyExchange == "ECDHE") {
		e.groupsStarted = true
		var seed uint16
		if r.kx != nil {
			seed = r.kx.group
		}
		t, ctx, done := e.t, e.ctx, e.groupsDone
		go func() { done <- t.enumerateGroups(ctx, v, id, r.cert, seed) }()
	}
	if vs.cert == nil && r.cert != nil {
		vs.cert = r.cert
	}
	e.remaining = slices.DeleteFunc(e.remaining, func(x uint16) bool { return x == id })
	return true
}

// ask sends one hello offering the suites, with compression while the server takes it.
func (e *suiteEnumeration) ask(offer []uint16) probeResult {
	t, ctx, v := e.t, e.ctx, e.v
	r := t.probe(ctx, t.hello(v, offer, e.groups, e.compression), true)
	if r.hello == nil && e.compression != nil && !e.compressionOK {
		e.compression = nil
		r = t.probe(ctx, t.hello(v, offer, e.groups, nil), true)
	}
	if r.hello != nil && e.compression != nil {
		e.compressionOK = true
		if slices.Contains(e.compression, r.hello.Compression) {
			e.compressionSeen[r.hello.Compression] = true
		}
	}
	return r
}

// enumerate runs the remove-the-pick loop over one offer list.
func (e *suiteEnumeration) enumerate(offer []uint16) (probeResult, bool) {
	offer = slices.Clone(offer)
	for len(offer) > 0 && e.ctx.Err() == nil {
		r := e.ask(offer)
		if r.hello == nil || r.version() != e.v {
			return r, true
		}
		if !e.take(offer, r) {
			return r, false
		}
		if e.v < tls.VersionTLS13 && e.compression == nil && !e.compressionOK && len(e.vs.suites) == 1 {
			e.compression = []byte{1, 64, 0}
		}
		offer = slices.DeleteFunc(offer, func(x uint16) bool { return x == r.hello.CipherSuite })
	}
	return probeResult{}, true
}

// enumerateChunked retries a version whose long hello got no answer: maybe a server that cannot take
// one. Like nmap, it keeps each hello under 256 bytes (some servers fail between 256 and 511), offering
// nmap's groups. The first short hello carries the common suites: if even that fails, the version is
// simply not accepted, and a disabled version still costs one probe more, not one per chunk.
func (e *suiteEnumeration) enumerateChunked() {
	vs := e.vs
	e.groups = nmapGroups
	size := e.t.chunkSize(e.v, e.groups)
	ordered := slices.Clone(e.remaining)
	slices.SortStableFunc(ordered, func(a, b uint16) int { return commonness(b) - commonness(a) })
	for i, c := range slices.Collect(slices.Chunk(ordered, size)) {
		before := len(vs.suites)
		if _, ok := e.enumerate(c); !ok || i == 0 && len(vs.suites) == before {
			break
		}
	}
	if len(vs.suites) > 0 {
		vs.note = fmt.Sprintf("the server refuses long ClientHellos; suites were enumerated %d at a time", size)
	}
}

// noteRefusal records why a version accepted no suite: first is the answer to the first hello.
func noteRefusal(vs *versionScan, first probeResult) {
	vs.fail, vs.err = first.kind, first.err
	switch {
	case vs.note != "" || first.hello != nil || first.alert != nil || first.kind == failNone:
		// refused cleanly (an alert, or a ServerHello for another version), or noted already
	case first.kind == failClosed || first.kind == failTimeout:
		// a server that hangs up on (or ignores) an unsupported version is common: not worth a line
	default:
		vs.note = fmt.Sprintf("no answer (%s: %v)", first.kind, first.err)
	}
}

// finishCompressors lists the compression methods the picks revealed, and probes for those they could
// not: all of them when only one suite was accepted (no hello offered compression yet), the others when
// a method besides NULL was picked.
func (e *suiteEnumeration) finishCompressors() {
	vs := e.vs
	for c := range e.compressionSeen {
		vs.compressors = append(vs.compressors, compressorName(c))
	}
	sort.Strings(vs.compressors)
	if !e.compressionOK {
		e.t.compressors(e.ctx, vs, []uint16{vs.suites[0].suite.ID}, e.groups, []byte{1, 64, 0})
	} else if len(e.compressionSeen) > 1 {
		var rest []byte
		for _, c := range []byte{1, 64} {
			if !e.compressionSeen[c] {
				rest = append(rest, c)
			}
		}
		e.t.compressors(e.ctx, vs, []uint16{vs.suites[0].suite.ID}, e.groups, append(rest, 0))
	}
}
