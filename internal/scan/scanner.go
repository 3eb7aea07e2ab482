package scan

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"tlsfleet/internal/tlspolicy"
	"tlsfleet/internal/tlswire"
)

// Scanner holds the settings of a scan. The zero value is not ready: use New.
type Scanner struct {
	// Timeout bounds each probe: connecting, the STARTTLS preamble and reading the server's first flight.
	Timeout time.Duration
	// Concurrency is the number of connections open at once to one host, whatever its number of
	// targets (a polite default: 4).
	Concurrency int
	// SNI is sent as server_name; empty means the target's host name when it is not an IP address.
	SNI string
	// StartTLS is the plaintext protocol spoken before each hello: "", postgres, smtp, imap, ftp, ldap.
	StartTLS string
	// Retries is how often a refused connection, or one closed without an answer, is retried, with
	// backoff.
	Retries int
	// Progress, if set, is called after every probe with the totals so far.
	Progress func(done, targets int, probes int64)
}

// New returns a Scanner with the defaults.
func New() *Scanner {
	return &Scanner{Timeout: 5 * time.Second, Concurrency: 4, Retries: 3}
}

// versions are the versions probed, oldest first: every version tlspolicy knows. Reports name them as
// nmap does (tlspolicy.Version.ScanName).
var versions = tlspolicy.AllVersions

// VersionName returns nmap's name for a protocol version ("TLSv1.0"), or a hex form for unknown values.
func VersionName(v uint16) string { return tlspolicy.Version(v).ScanName() }

// ParseVersion reads a version name in nmap's, the JDK's or OpenSSL's spelling.
func ParseVersion(s string) (uint16, error) {
	v, err := tlspolicy.ParseVersion(s)
	if err != nil {
		return 0, err
	}
	return uint16(v), nil
}

// target is one HOST:PORT being scanned.
type target struct {
	s      *Scanner
	addr   string
	sni    string
	sem    chan struct{}
	probes atomic.Int64
	// throttled is set once the server refused or dropped a connection; from then on serial keeps its
	// probes one at a time.
	throttled atomic.Bool
	serial    sync.Mutex
}

func (t *target) acquire(ctx context.Context) (func(), error) {
	select {
	case t.sem <- struct{}{}:
		return func() { <-t.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Scan scans every target concurrently (each with at most Concurrency connections) and returns one
// result per target, in the order given. A target that fails is reported in its result; it never stops
// the others.
func (s *Scanner) Scan(ctx context.Context, addrs []string) *Result {
	res := &Result{Targets: make([]TargetResult, len(addrs))}
	var wg sync.WaitGroup
	var done atomic.Int32
	var probes atomic.Int64
	// Targets on one host share its connection budget: scanning many ports of a server stays polite.
	hosts := map[string]chan struct{}{}
	for _, a := range addrs {
		h, _, _ := net.SplitHostPort(a)
		if hosts[h] == nil {
			hosts[h] = make(chan struct{}, max(1, s.Concurrency))
		}
	}
	for i, a := range addrs {
		h, _, _ := net.SplitHostPort(a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Targets[i] = s.scanTarget(ctx, a, hosts[h], &probes)
			if s.Progress != nil {
				s.Progress(int(done.Add(1)), len(addrs), probes.Load())
			}
		}()
	}
	wg.Wait()
	return res
}

func (s *Scanner) scanTarget(ctx context.Context, addr string, sem chan struct{}, total *atomic.Int64) TargetResult {
	start := time.Now()
	tr := TargetResult{Target: addr}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		tr.Error = fmt.Sprintf("%s: not HOST:PORT (%v); write it as 127.0.0.1:443 or [::1]:443", addr, err)
		return tr
	}
	t := &target{s: s, addr: addr, sni: s.SNI, sem: sem}
	if t.sni == "" && net.ParseIP(host) == nil {
		t.sni = host
	}
	defer func() {
		total.Add(t.probes.Load())
	}()

	// Protocol versions are independent: enumerate them side by side (the semaphore bounds connections).
	scans := make([]*versionScan, len(versions))
	var wg sync.WaitGroup
	for i, v := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scans[i] = t.scanVersion(ctx, uint16(v))
		}()
	}
	wg.Wait()

	if err := noTLSError(scans); err != "" {
		tr.Error = fmt.Sprintf("%s: %s", addr, err)
		tr.Probes = int(t.probes.Load())
		tr.ElapsedMS = time.Since(start).Milliseconds()
		return tr
	}

	var cert *certInfo
	for _, vs := range scans {
		if cert == nil && vs.cert != nil {
			cert = vs.cert
		}
	}
	if cert == nil && scans[len(scans)-1].accepted() {
		cert = t.fetchCertificate(ctx) // TLS 1.3 only: the certificate is encrypted, so finish one handshake
	}
	if cert != nil {
		tr.Certificate = &Certificate{Type: cert.keyType, Bits: cert.bits, Curve: cert.curve, Signature: cert.signature}
	}

	groups := map[uint16][]string{}
	var groupOrder []uint16
	least := ""
	for i, vs := range scans {
		name := versions[i].ScanName()
		if vs.note != "" {
			tr.Notes = append(tr.Notes, name+": "+vs.note)
		}
		if !vs.accepted() {
			continue
		}
		pr := vs.report(name, cert)
		for _, c := range pr.Ciphers {
			least = worstGrade(least, c.Grade)
		}
		tr.Protocols = append(tr.Protocols, pr)
		for _, g := range vs.groups {
			if _, ok := groups[g]; !ok {
				groupOrder = append(groupOrder, g)
			}
			groups[g] = append(groups[g], name)
		}
	}
	for _, g := range groupOrder {
		info, _ := tlspolicy.GroupByID(tls.CurveID(g))
		tr.Groups = append(tr.Groups, Group{Name: tlspolicy.GroupName(tls.CurveID(g)), ID: g, Versions: groups[g], PostQuantum: info.PostQuantum})
	}
	tr.LeastStrength = least
	tr.Probes = int(t.probes.Load())
	tr.ElapsedMS = time.Since(start).Milliseconds()
	return tr
}

// noTLSError explains a target where no version got an answer at all, when every version failed the
// same way; "" when some version was accepted or refused in proper TLS.
func noTLSError(scans []*versionScan) string {
	kind := scans[0].fail
	for _, vs := range scans {
		if vs.accepted() || vs.fail != kind {
			return ""
		}
	}
	err := scans[len(scans)-1].err
	switch kind {
	case failRefused, failPreamble, failNotTLS, failBroken:
		return err.Error()
	case failTimeout:
		return "no answer to any ClientHello before the timeout (is it a TLS port? does it need --starttls?)"
	case failClosed:
		return "the server closed every connection without a TLS answer (is it a TLS port? does it need --starttls?)"
	}
	return ""
}

// fetchCertificate completes one TLS 1.3 handshake (the certificate is encrypted there) to read the
// server's certificate.
func (t *target) fetchCertificate(ctx context.Context) *certInfo {
	release, err := t.acquire(ctx)
	if err != nil {
		return nil
	}
	defer release()
	t.probes.Add(1)
	ctx, cancel := context.WithTimeout(ctx, t.s.Timeout)
	defer cancel()
	conn, _, err := t.connect(ctx)
	if err != nil {
		return nil
	}
	defer conn.Close()
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: t.sni, MinVersion: tls.VersionTLS13}) // #nosec G402 -- the scanner reads the certificate, it trusts nothing
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil
	}
	pcs := tc.ConnectionState().PeerCertificates
	if len(pcs) == 0 {
		return nil
	}
	k, err := tlswire.ParseCertKey(pcs[0].Raw)
	if err != nil {
		return nil
	}
	return &certInfo{keyType: k.Type, bits: k.Bits, curve: k.Curve, signature: k.Signature, exponent: k.Exponent}
}

// acceptedSuite is one suite a version accepted, with what its probe saw.
type acceptedSuite struct {
	suite tlspolicy.Suite
	cert  *certInfo
	kx    *kexSeen
}

// versionScan is what the scan learned about one protocol version.
type versionScan struct {
	version     uint16
	suites      []acceptedSuite // in the order the server picked them
	preference  string          // server, client, indeterminate
	prefErr     string
	compressors []string
	groups      []uint16
	cert        *certInfo
	note        string // why enumeration stopped early, or how the version was refused
	fail        failKind
	err         error
}

func (vs *versionScan) accepted() bool { return len(vs.suites) > 0 }

// report turns a version's findings into its graded, nmap-shaped form.
func (vs *versionScan) report(name string, cert *certInfo) ProtocolResult {
	pr := ProtocolResult{Version: name, CipherPreference: vs.preference, CipherPreferenceError: vs.prefErr, Compressors: vs.compressors}
	warnings := map[string]bool{}
	anyPFS := false
	for _, a := range vs.suites {
		c := a.cert
		if c == nil {
			c = cert
		}
		kex, grade, pfs := suiteGrade(name, a.suite, c, a.kx, warnings)
		anyPFS = anyPFS || pfs
		pr.Ciphers = append(pr.Ciphers, Cipher{Name: a.suite.Name, ID: fmt.Sprintf("0x%04x", a.suite.ID), Kex: kex, Grade: grade})
	}
	if !anyPFS {
		warnings["Forward Secrecy not supported by any cipher"] = true
	}
	if vs.preference != "server" {
		sort.Slice(pr.Ciphers, func(i, j int) bool { return pr.Ciphers[i].Name < pr.Ciphers[j].Name })
	}
	for w := range warnings {
		pr.Warnings = append(pr.Warnings, w)
	}
	sort.Strings(pr.Warnings)
	return pr
}

// candidates lists the suites offered for a version: the whole registry that can run there.
func candidates(v uint16) []uint16 {
	var out []uint16
	for _, s := range tlspolicy.Registry() {
		if s.SCSV || s.TLS13 != (v == tls.VersionTLS13) {
			continue
		}
		out = append(out, s.ID)
	}
	return out
}

// nmapGroups is the supported_groups list nmap offers, in its order: when a server follows the client's
// group order, the ECDHE group it picks (and so the kex column) depends on it.
var nmapGroups = []uint16{23, 24, 25, 29, 256}

// suiteGroups are the groups offered while enumerating suites: nmap's list, then the other elliptic
// curves, so that a server with none of nmap's curves still shows its ECDHE suites.
func suiteGroups(v uint16) []uint16 {
	out := slices.Clone(nmapGroups)
	if v == tls.VersionTLS13 {
		return out
	}
	for _, g := range tlspolicy.Groups() {
		if g.ECBits > 0 && !g.PostQuantum && !slices.Contains(out, uint16(g.ID)) {
			out = append(out, uint16(g.ID))
		}
	}
	return out
}

var (
	sigAlgsTLS12 = []uint16{0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x0402, 0x0502, 0x0602, 0x0301, 0x0303, 0x0302, 0x0201, 0x0203, 0x0202, 0x0101}
	sigAlgsTLS13 = []uint16{0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x0401, 0x0501, 0x0601, 0x0201, 0x0203}
)

// hello builds the ClientHello for a version, shaped like nmap's: SSLv3 without extensions, TLS with
// supported_groups and ec_point_formats (and signature_algorithms from TLS 1.2), TLS 1.3 with
// supported_versions and an empty key_share, so that the server answers with a HelloRetryRequest that
// names its suite and group.
func (t *target) hello(v uint16, suites, groups []uint16, compression []byte) *tlswire.ClientHello {
	ch := &tlswire.ClientHello{RecordVersion: v, Version: v, CipherSuites: suites, Compression: compression}
	if v == uint16(tlspolicy.SSLv3) {
		return ch
	}
	ch.ServerName = t.sni
	ch.Groups = groups
	ch.PointFormats = []byte{0}
	if v >= tls.VersionTLS12 {
		ch.SignatureAlgorithms = sigAlgsTLS12
	}
	if v == tls.VersionTLS13 {
		ch.RecordVersion, ch.Version = tls.VersionTLS10, tls.VersionTLS12
		ch.SupportedVersions = []uint16{tls.VersionTLS13}
		ch.SignatureAlgorithms = sigAlgsTLS13
		ch.SendKeyShare = true
	}
	return ch
}

// preference decides whether the server picks suites by its own order or the client's, the way nmap does:
// the server's first two picks are offered alone, in both orders; the same winner both times means server
// order. (Inferring it from the enumeration's picks would save the probes, but disagrees with nmap on
// servers whose order depends on the client's first suite — Go's crypto/tls among them, which puts AES-GCM
// first only for clients that list it first — and tlsfleet's own ports are such servers.)
func (t *target) preference(ctx context.Context, vs *versionScan, groups []uint16, chunked bool) {
	v := vs.version
	if len(vs.suites) < 2 {
		vs.preference, vs.prefErr = "indeterminate", "Too few ciphers supported"
		return
	}
	if chunked {
		// Picks across chunks say nothing about the global order: pick again among all accepted suites.
		ids := make([]uint16, len(vs.suites))
		for i, a := range vs.suites {
			ids[i] = a.suite.ID
		}
		if picks := t.order(ctx, v, ids, groups); len(picks) == len(vs.suites) {
			slices.SortStableFunc(vs.suites, func(a, b acceptedSuite) int {
				return slices.Index(picks, a.suite.ID) - slices.Index(picks, b.suite.ID)
			})
		}
	}
	a, b := vs.suites[0].suite.ID, vs.suites[1].suite.ID
	var wins [2]probeResult
	var wg sync.WaitGroup
	for i, pair := range [][]uint16{{a, b}, {b, a}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wins[i] = t.probe(ctx, t.hello(v, pair, groups, nil), false)
		}()
	}
	wg.Wait()
	for _, r := range wins {
		if r.hello == nil {
			vs.preference, vs.prefErr = "", fmt.Sprintf("Error when comparing %s and %s: %s", tlspolicy.SuiteName(a), tlspolicy.SuiteName(b), describe(r))
			return
		}
	}
	if wins[0].hello.CipherSuite == wins[1].hello.CipherSuite {
		vs.preference = "server"
	} else {
		vs.preference = "client"
	}
}

// order returns the server's picks when offered ids again and again, each pick removed.
func (t *target) order(ctx context.Context, v uint16, ids, groups []uint16) []uint16 {
	offer := slices.Clone(ids)
	var picks []uint16
	for len(offer) > 0 {
		r := t.probe(ctx, t.hello(v, offer, groups, nil), false)
		if r.hello == nil || !slices.Contains(offer, r.hello.CipherSuite) {
			break
		}
		picks = append(picks, r.hello.CipherSuite)
		offer = slices.DeleteFunc(offer, func(x uint16) bool { return x == r.hello.CipherSuite })
	}
	return picks
}

var compressorNames = map[uint8]string{0: "NULL", 1: "DEFLATE", 64: "LZS"}

// compressors finds the compression methods besides NULL that the server picks.
func (t *target) compressors(ctx context.Context, vs *versionScan, ids, groups []uint16, offer []byte) {
	offer = slices.Clone(offer)
	for len(offer) > 1 {
		r := t.probe(ctx, t.hello(vs.version, ids, groups, offer), false)
		if r.hello == nil || r.hello.Compression == 0 {
			break
		}
		if !slices.Contains(offer, r.hello.Compression) {
			vs.note = fmt.Sprintf("server chose compression method %d, which was not offered", r.hello.Compression)
			break // a server that answers anything: stop, or the loop would never shrink
		}
		if name := compressorName(r.hello.Compression); !slices.Contains(vs.compressors, name) {
			vs.compressors = append(vs.compressors, name)
		}
		offer = slices.DeleteFunc(offer, func(b byte) bool { return b == r.hello.Compression })
	}
	sort.Strings(vs.compressors)
}

func compressorName(c uint8) string {
	if name, ok := compressorNames[c]; ok {
		return name
	}
	return fmt.Sprintf("0x%02x", c)
}

// describe says in a few words why a probe got no ServerHello.
func describe(r probeResult) string {
	switch {
	case r.alert != nil:
		return "alert " + r.alert.String()
	case r.err != nil:
		return r.err.Error()
	}
	return r.kind.String()
}
