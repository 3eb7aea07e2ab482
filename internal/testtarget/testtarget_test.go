package testtarget

import (
	"bytes"
	"crypto/tls"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tlsfleet/internal/tlswire"
)

// ---- truth checked with openssl s_client ----

// sclientArgs returns s_client arguments that offer only version v and, when suite (IANA) is set, only
// that suite. Versions below TLS 1.2 need the client at security level 0 too.
func sclientArgs(v, suite string) []string {
	flag := opensslProtocol[v].flag
	if v == TLSv13 {
		if suite == "" {
			return []string{flag}
		}
		return []string{flag, "-ciphersuites", suite}
	}
	cipher := "ALL:@SECLEVEL=0"
	if suite != "" {
		cipher = IANAToOpenSSL(suite) + ":@SECLEVEL=0"
	}
	return []string{flag, "-cipher", cipher}
}

// allTLS13Suites are the five TLS 1.3 suites OpenSSL 3.0 implements.
const allTLS13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"

// refusedSuite returns a suite of version v that OpenSSL can offer and the truth says is refused, or "".
func refusedSuite(t *testing.T, v string, accepted []string) string {
	t.Helper()
	out, err := exec.Command("openssl", "ciphers", "-stdname", "-v", "-s", opensslProtocol[v].flag,
		"-ciphersuites", allTLS13Suites, "ALL:@SECLEVEL=0").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ciphers: %v\n%s", err, out)
	}
	for _, c := range parseOpenSSLCiphers(out) {
		if (v == TLSv13) == (c.MinVersion == TLSv13) && !slices.Contains(accepted, c.IANA) {
			return c.IANA
		}
	}
	return ""
}

// checkWithSClient connects with openssl s_client: per accepted version its first and last suites must
// be negotiated, one suite outside the truth must be refused, and versions outside the truth must fail.
func checkWithSClient(t *testing.T, tg *Target) {
	t.Helper()
	var pre []string
	if tg.StartTLS != "" {
		pre = []string{"-starttls", tg.StartTLS}
	}
	try := func(v, suite string) (string, string) {
		p, c, out, err := SClient(t.Context(), tg.Addr, append(slices.Clone(pre), sclientArgs(v, suite)...)...)
		if err != nil {
			t.Fatalf("s_client %s %s: %v\n%s", v, suite, err, out)
		}
		return p, c
	}
	for _, v := range []string{TLSv10, TLSv11, TLSv12, TLSv13} {
		suites := tg.Suites[v]
		if len(suites) == 0 {
			if p, c := try(v, ""); p != "" {
				t.Errorf("%s: s_client negotiated %s %s; the truth has no %s", tg.Name, p, c, v)
			}
			continue
		}
		for _, s := range slices.Compact([]string{suites[0], suites[len(suites)-1]}) {
			p, c := try(v, s)
			if p != v || OpenSSLToIANA(c) != s {
				t.Errorf("%s: s_client offering only %s %s negotiated %q %q", tg.Name, v, s, p, c)
			}
		}
		if r := refusedSuite(t, v, suites); r != "" {
			if p, c := try(v, r); p != "" {
				t.Errorf("%s: s_client offering only %s %s negotiated %s %s; the truth refuses it", tg.Name, v, r, p, c)
			}
		}
	}
}

// ---- truth checked with nmap ----

type nmapWant struct {
	kex      map[string]string // IANA suite -> kex_info nmap must print
	warnings []string          // warnings nmap must print for at least one version
}

// checkWithNmap runs nmap's ssl-enum-ciphers through a counting proxy and compares its versions and
// suites with the truth: the same order for a server-order target, the same set otherwise.
func checkWithNmap(t *testing.T, tg *Target, want nmapWant) *NmapResult {
	t.Helper()
	RequireTool(t, "nmap")
	p := Proxy(t, tg)
	r, err := p.Nmap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("nmap %s: %v, %d connections, service %q\n%s", tg.Name, r.Elapsed.Round(time.Millisecond), p.Connections(), r.Service, r.Output)
	if got := r.Versions(); !slices.Equal(got, tg.Versions) {
		t.Errorf("%s: nmap found versions %v, truth %v", tg.Name, got, tg.Versions)
	}
	got := r.Suites()
	for _, v := range tg.Versions {
		g, w := got[v], tg.Suites[v]
		if !tg.ServerOrder {
			g, w = sorted(g), sorted(w)
		}
		if !slices.Equal(g, w) {
			t.Errorf("%s %s: nmap found (ServerOrder=%v)\n  %v\ntruth\n  %v", tg.Name, v, tg.ServerOrder, g, w)
		}
		if len(w) >= 2 {
			pref := map[bool]string{true: "server", false: "client"}[tg.ServerOrder]
			if r.Protocols[v].CipherPreference != pref {
				t.Errorf("%s %s: nmap cipher preference %q, want %q", tg.Name, v, r.Protocols[v].CipherPreference, pref)
			}
		}
	}
	for suite, kex := range want.kex {
		found := false
		for _, pr := range r.Protocols {
			for _, c := range pr.Ciphers {
				if NmapToIANA(c.Name) == suite {
					found = true
					if c.KexInfo != kex {
						t.Errorf("%s: nmap kex_info of %s = %q, want %q", tg.Name, suite, c.KexInfo, kex)
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: nmap did not list %s", tg.Name, suite)
		}
	}
	for _, w := range want.warnings {
		found := false
		for _, pr := range r.Protocols {
			found = found || slices.Contains(pr.Warnings, w)
		}
		if !found {
			t.Errorf("%s: nmap did not warn %q", tg.Name, w)
		}
	}
	return r
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// ---- the targets ----

func TestOpenSSLTargets(t *testing.T) {
	RequireTool(t, "openssl")
	cases := []struct {
		cfg      OpenSSLConfig
		versions []string
		suites   map[string][]string // exact truth, when the preset pins it
		nmap     nmapWant
	}{
		{cfg: ModernConfig, versions: []string{TLSv12, TLSv13},
			nmap: nmapWant{kex: map[string]string{"TLS_RSA_WITH_AES_128_GCM_SHA256": "rsa 2048", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": "dh 2048",
				"TLS_AES_128_GCM_SHA256": "ecdh_x25519"}}},
		{cfg: LegacyConfig, versions: []string{TLSv10, TLSv11, TLSv12},
			nmap: nmapWant{kex: map[string]string{"TLS_RSA_WITH_AES_128_CBC_SHA": "rsa 2048", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA": "dh 2048",
				"TLS_DH_anon_WITH_AES_128_CBC_SHA": "dh 2048", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ecdh_x25519"},
				warnings: []string{"Anonymous key exchange, score capped at F"}}},
		{cfg: ECDSAConfig, versions: []string{TLSv12},
			suites: map[string][]string{TLSv12: {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}},
			nmap:   nmapWant{kex: map[string]string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "secp256r1"}}},
		{cfg: DHE1024Config, versions: []string{TLSv12},
			suites: map[string][]string{TLSv12: {"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
				"TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"}},
			nmap: nmapWant{kex: map[string]string{"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": "dh 1024"},
				warnings: []string{"Key exchange (dh 1024) of lower strength than certificate key"}}},
		{cfg: TLS13OnlyConfig, versions: []string{TLSv13},
			suites: map[string][]string{TLSv13: {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}},
			nmap:   nmapWant{kex: map[string]string{"TLS_AES_256_GCM_SHA384": "ecdh_x25519"}}},
		{cfg: SHA1CertConfig, versions: []string{TLSv12},
			suites: map[string][]string{TLSv12: {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"}},
			nmap: nmapWant{kex: map[string]string{"TLS_RSA_WITH_AES_128_CBC_SHA": "rsa 2048"},
				warnings: []string{"Insecure certificate signature (SHA1), score capped at F"}}},
		{cfg: RSA1024Config, versions: []string{TLSv12},
			suites: map[string][]string{TLSv12: {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"}},
			nmap:   nmapWant{kex: map[string]string{"TLS_RSA_WITH_AES_128_CBC_SHA": "rsa 1024"}}},
	}
	for _, c := range cases {
		t.Run(c.cfg.Name, func(t *testing.T) {
			t.Parallel()
			tg := OpenSSL(t, c.cfg)
			if !slices.Equal(tg.Versions, c.versions) {
				t.Fatalf("truth versions %v, want %v", tg.Versions, c.versions)
			}
			for _, v := range tg.Versions {
				if len(tg.Suites[v]) == 0 {
					t.Errorf("truth: no suites for %s", v)
				}
			}
			for v, want := range c.suites {
				if !slices.Equal(tg.Suites[v], want) {
					t.Errorf("truth %s = %v, want %v", v, tg.Suites[v], want)
				}
			}
			checkWithSClient(t, tg)
			checkWithNmap(t, tg, c.nmap)
		})
	}
}

func TestOpenSSLTruthDetails(t *testing.T) {
	bin := RequireTool(t, "openssl")
	// TLS 1.0/1.1 need security level 0: at the default level OpenSSL 3.0 cannot sign with them.
	vs, _, err := OpenSSLTruth(bin, []string{TLSv10, TLSv11, TLSv12}, "DEFAULT", "", "RSA")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vs, []string{TLSv12}) {
		t.Errorf("versions at the default security level = %v, want [TLSv1.2]", vs)
	}
	// An RSA certificate serves no ECDSA suite; anonymous suites need none.
	_, suites, err := OpenSSLTruth(bin, []string{TLSv12}, "ALL:@SECLEVEL=0", "", "RSA")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range suites[TLSv12] {
		if strings.Contains(s, "_ECDSA_") || strings.Contains(s, "_DSS_") || strings.Contains(s, "PSK") || strings.Contains(s, "SRP") {
			t.Errorf("RSA truth lists %s", s)
		}
	}
	if !slices.Contains(suites[TLSv12], "TLS_DH_anon_WITH_AES_128_GCM_SHA256") {
		t.Errorf("ALL:@SECLEVEL=0 truth lacks the anonymous suites: %v", suites[TLSv12])
	}
	// The TLS 1.3 list follows -ciphersuites and ignores the TLS 1.2 cipher string.
	_, suites, err = OpenSSLTruth(bin, []string{TLSv13}, "AES128-SHA", "TLS_CHACHA20_POLY1305_SHA256", "ECDSA")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(suites[TLSv13], []string{"TLS_CHACHA20_POLY1305_SHA256"}) {
		t.Errorf("TLS 1.3 truth = %v", suites[TLSv13])
	}
	if OpenSSLToIANA("ECDHE-RSA-AES128-GCM-SHA256") != "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" ||
		IANAToOpenSSL("TLS_RSA_WITH_AES_128_CBC_SHA") != "AES128-SHA" {
		t.Error("OpenSSL/IANA name mapping is wrong")
	}
}

func TestGoLegacy(t *testing.T) {
	tg := GoLegacy(t)
	if !slices.Equal(tg.Versions, []string{TLSv10, TLSv11, TLSv12}) || len(tg.Suites[TLSv10]) != len(GoLegacySuites) {
		t.Fatalf("truth %v %v", tg.Versions, tg.Suites)
	}
	ids := map[string]uint16{}
	for _, id := range GoLegacySuites {
		ids[tls.CipherSuiteName(id)] = id
	}
	versions := map[string]uint16{TLSv10: tls.VersionTLS10, TLSv11: tls.VersionTLS11, TLSv12: tls.VersionTLS12, TLSv13: tls.VersionTLS13}
	dial := func(v uint16, suite uint16) (tls.ConnectionState, error) {
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}
		if suite != 0 {
			cfg.CipherSuites = []uint16{suite}
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tg.Addr, cfg)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		return c.ConnectionState(), nil
	}
	for _, v := range tg.Versions {
		for _, s := range tg.Suites[v] {
			st, err := dial(versions[v], ids[s])
			if err != nil {
				t.Errorf("%s %s: %v", v, s, err)
				continue
			}
			if st.Version != versions[v] || tls.CipherSuiteName(st.CipherSuite) != s {
				t.Errorf("%s %s: negotiated %s %s", v, s, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
			}
		}
	}
	if _, err := dial(tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256); err == nil {
		t.Error("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 accepted; the truth refuses it")
	}
	if _, err := dial(tls.VersionTLS13, 0); err == nil {
		t.Error("TLS 1.3 accepted; the truth refuses it")
	}
	// With every suite offered, in the client's reverse order, the server picks its own first.
	rev := slices.Clone(GoLegacySuites)
	slices.Reverse(rev)
	c, err := tls.Dial("tcp", tg.Addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: rev})
	if err != nil {
		t.Fatal(err)
	}
	if got := tls.CipherSuiteName(c.ConnectionState().CipherSuite); got != tg.Suites[TLSv12][0] {
		t.Errorf("server order: negotiated %s, want %s", got, tg.Suites[TLSv12][0])
	}
	c.Close()
	if n := tg.Connections(); n < 10 {
		t.Errorf("Connections() = %d after %d+ handshakes", n, 10)
	}
	checkWithNmap(t, tg, nmapWant{
		kex: map[string]string{"TLS_RSA_WITH_RC4_128_SHA": "rsa 2048", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "secp256r1"},
		warnings: []string{"64-bit block cipher 3DES vulnerable to SWEET32 attack",
			"Broken cipher RC4 is deprecated by RFC 7465"},
	})
}

// exchange sends raw bytes to addr and reads TLS messages until ServerHelloDone, an alert or an error.
func exchange(t *testing.T, addr string, send []byte) ([]tlswire.Message, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(send); err != nil {
		return nil, err
	}
	rd := tlswire.NewReader(c)
	var msgs []tlswire.Message
	for {
		m, err := rd.Next()
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
		if m.Alert != nil || m.Type == tlswire.TypeServerHelloDone {
			return msgs, nil
		}
	}
}

func TestFakeSSLv3(t *testing.T) {
	tg := FakeSSLv3(t)
	hello := func(version uint16, suites ...uint16) *tlswire.ClientHello {
		return &tlswire.ClientHello{RecordVersion: 0x0300, Version: version, CipherSuites: suites}
	}
	marshal := func(h *tlswire.ClientHello) []byte {
		b, err := h.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	check := func(name string, send []byte, wantSuite uint16) {
		t.Helper()
		msgs, err := exchange(t, tg.Addr, send)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(msgs) != 3 || msgs[0].Type != 2 || msgs[1].Type != tlswire.TypeCertificate || msgs[2].Type != tlswire.TypeServerHelloDone {
			t.Fatalf("%s: got %+v, want ServerHello, Certificate, ServerHelloDone", name, msgs)
		}
		sh, err := tlswire.ParseServerHello(msgs[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		if msgs[0].RecordVersion != 0x0300 || sh.LegacyVersion != 0x0300 || sh.CipherSuite != wantSuite || sh.Compression != 0 {
			t.Errorf("%s: record %#04x hello %#04x suite %#04x compression %d; want SSLv3 and %#04x", name,
				msgs[0].RecordVersion, sh.LegacyVersion, sh.CipherSuite, sh.Compression, wantSuite)
		}
		certs, err := tlswire.ParseCertificates(msgs[1].Body)
		if err != nil || len(certs) != 1 || !bytes.Equal(certs[0], tg.Cert.DER) {
			t.Errorf("%s: certificate message %d certs, %v", name, len(certs), err)
		}
	}
	check("server order", marshal(hello(0x0300, 0x0005, 0x002f)), 0x002f)
	check("all offered, client order reversed", marshal(hello(0x0300, 0x0005, 0x002f, 0x000a)), 0x000a)
	check("TLS 1.2 hello still gets SSLv3", marshal(&tlswire.ClientHello{Version: 0x0303, CipherSuites: []uint16{0xc02f, 0x0005},
		Groups: []uint16{29}, SignatureAlgorithms: []uint16{0x0401}, ServerName: "localhost"}), 0x0005)
	body, err := hello(0x0300, 0x002f).Body()
	if err != nil {
		t.Fatal(err)
	}
	split := append(tlswire.Records(tlswire.RecordHandshake, 0x0300, body[:7]), tlswire.Records(tlswire.RecordHandshake, 0x0300, body[7:])...)
	check("hello split over two records", split, 0x002f)

	alert := func(name string, send []byte, want uint8) {
		t.Helper()
		msgs, err := exchange(t, tg.Addr, send)
		if err != nil || len(msgs) != 1 || msgs[0].Alert == nil || msgs[0].Alert.Description != want || msgs[0].RecordVersion != 0x0300 {
			t.Errorf("%s: got %+v, %v; want alert %d", name, msgs, err, want)
		}
	}
	alert("no common suite", marshal(hello(0x0303, 0xc02f, 0x1301)), 40)
	alert("SSLv2 client version", marshal(hello(0x0200, 0x002f)), 40)
	alert("no null compression", marshal(&tlswire.ClientHello{Version: 0x0300, CipherSuites: []uint16{0x002f}, Compression: []byte{1}}), 40)
	bad := slices.Clone(body)
	bad[4+2+32+1+1] = 3 // odd cipher-suite list length
	alert("malformed hello", tlswire.Records(tlswire.RecordHandshake, 0x0300, bad), 47)

	// Garbage gets the connection closed, never a panic (which would end the test binary).
	garbage := [][]byte{
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		{0x80, 0x2e, 0x01, 0x03, 0x00},                         // SSLv2-format hello
		{0x16, 0x03, 0x00, 0xff, 0xff, 0x01},                   // record longer than allowed
		{0x16, 0x03, 0x00, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00}, // empty hello body
		{0x15, 0x03, 0x00, 0x00, 0x02, 0x02, 0x28},             // an alert instead of a hello
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := rng.IntN(300)
		b := make([]byte, 5+n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		copy(b, []byte{0x16, 0x03, byte(rng.UintN(4)), byte(n >> 8), byte(n)})
		if n > 4 {
			b[5] = 1 // a ClientHello of random content
		}
		garbage = append(garbage, b)
	}
	var wg sync.WaitGroup
	for _, g := range garbage {
		wg.Go(func() {
			c, err := net.Dial("tcp", tg.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write(g)
			if tcp, ok := c.(*net.TCPConn); ok {
				tcp.CloseWrite()
			}
			io.Copy(io.Discard, c)
		})
	}
	wg.Wait()
	check("still serving after garbage", marshal(hello(0x0300, 0x0005)), 0x0005)

	r := checkWithNmap(t, tg, nmapWant{
		kex:      map[string]string{"TLS_RSA_WITH_AES_128_CBC_SHA": "rsa 2048"},
		warnings: []string{"CBC-mode cipher in SSLv3 (CVE-2014-3566)", "Forward Secrecy not supported by any cipher"},
	})
	if p := r.Protocols[SSLv3]; p == nil || !slices.Equal(p.Compressors, []string{"NULL"}) {
		t.Errorf("nmap SSLv3 compressors: %+v", p)
	}
}

// TestGoServersDoNotLeak checks that GoLegacy's and FakeSSLv3's goroutines end with the test, including
// those of connections still open (idle, mid-handshake) at cleanup.
func TestGoServersDoNotLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("serve", func(t *testing.T) {
		for _, tg := range []*Target{GoLegacy(t), FakeSSLv3(t)} {
			for i := range 3 {
				c, err := net.Dial("tcp", tg.Addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if i == 1 {
					c.Write([]byte{0x16, 0x03, 0x01, 0x01, 0x00, 0x01}) // half a hello
				}
			}
			c, err := tls.Dial("tcp", tg.Addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
				CipherSuites: GoLegacySuites})
			if err == nil {
				defer c.Close() // GoLegacy: an established connection left open
			}
		}
		time.Sleep(50 * time.Millisecond)
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPostgres(t *testing.T) {
	RequireTool(t, "openssl")
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		tg := Postgres(t, PostgresConfig{})
		if tg.StartTLS != "postgres" || !tg.ServerOrder || !slices.Equal(tg.Versions, []string{TLSv12, TLSv13}) || tg.DHBits != 2048 {
			t.Fatalf("truth: %+v", tg)
		}
		checkWithSClient(t, tg)
		checkWithNmap(t, tg, nmapWant{kex: map[string]string{
			"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "secp256r1", // ssl_ecdh_curve = prime256v1
			"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256":   "dh 2048",
			"TLS_AES_128_GCM_SHA256":                "secp256r1",
		}})
		// Without knowing the port is PostgreSQL, nmap does not run ssl-enum-ciphers at all.
		r, err := RunNmap(t.Context(), tg.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Protocols) != 0 || r.Output != "" {
			t.Errorf("plain nmap on a PostgreSQL port found TLS: %s", r.Output)
		}
	})
	t.Run("configured", func(t *testing.T) {
		t.Parallel()
		tg := Postgres(t, PostgresConfig{Name: "pg-tls12", MaxProtocol: TLSv12, ClientOrder: true,
			Ciphers: "ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA"})
		want := []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA"}
		if !slices.Equal(tg.Versions, []string{TLSv12}) || !slices.Equal(tg.Suites[TLSv12], want) || tg.ServerOrder {
			t.Fatalf("truth: %v %v order %v", tg.Versions, tg.Suites, tg.ServerOrder)
		}
		checkWithSClient(t, tg)
		checkWithNmap(t, tg, nmapWant{})
	})
}

func TestSSLScan(t *testing.T) {
	RequireTool(t, "sslscan")
	for _, start := range []func(testing.TB) *Target{Modern, func(t testing.TB) *Target { return Postgres(t, PostgresConfig{}) }} {
		tg := start(t)
		r, err := tg.SSLScan(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("sslscan %s: %v, enabled %v", tg.Name, r.Elapsed.Round(time.Millisecond), r.Enabled)
		if !slices.Equal(r.Enabled, tg.Versions) {
			t.Errorf("%s: sslscan enabled %v, truth %v", tg.Name, r.Enabled, tg.Versions)
		}
		got := r.Suites()
		for _, v := range tg.Versions {
			if g, w := sorted(got[v]), sorted(tg.Suites[v]); !slices.Equal(g, w) {
				t.Errorf("%s %s: sslscan found\n  %v\ntruth\n  %v", tg.Name, v, g, w)
			}
		}
	}
}

func TestStartAll(t *testing.T) {
	t.Parallel()
	tgs := StartAll(t)
	seen := map[string]bool{}
	for _, tg := range tgs {
		if seen[tg.Addr] || seen[tg.Name] || len(tg.Versions) == 0 {
			t.Errorf("target %+v: duplicate or empty", tg)
		}
		seen[tg.Addr], seen[tg.Name] = true, true
		c, err := net.DialTimeout("tcp", tg.Addr, time.Second)
		if err != nil {
			t.Errorf("%s: %v", tg.Name, err)
			continue
		}
		c.Close()
	}
	if len(tgs) != 8 {
		t.Errorf("StartAll started %d targets", len(tgs))
	}
}

// ---- pieces ----

func TestDHGroups(t *testing.T) {
	for _, bits := range []int{1024, 2048} {
		p := DHPrime(bits)
		q := new(big.Int).Rsh(p, 1)
		if p.BitLen() != bits || !p.ProbablyPrime(20) || !q.ProbablyPrime(20) {
			t.Errorf("%d-bit group: not a safe prime of that size", bits)
		}
		pemBytes, err := DHParamsPEM(bits)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := exec.LookPath("openssl"); err != nil {
			continue
		}
		f := filepath.Join(t.TempDir(), "dh.pem")
		os.WriteFile(f, pemBytes, 0o644)
		out, err := exec.Command("openssl", "dhparam", "-in", f, "-check", "-noout").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "DH parameters appear to be ok") {
			t.Errorf("openssl dhparam -check on the %d-bit group: %v\n%s", bits, err, out)
		}
	}
	if _, err := DHParamsPEM(512); err == nil {
		t.Error("DHParamsPEM(512) did not fail")
	}
}

func TestCerts(t *testing.T) {
	want := map[CertKind][2]string{
		RSA2048: {"rsa 2048", "SHA256-RSA"}, RSA1024: {"rsa 1024", "SHA256-RSA"},
		RSA2048SHA1: {"rsa 2048", "SHA1-RSA"}, ECDSAP256: {"ec 256", "ECDSA-SHA256"},
	}
	for _, kind := range CertKinds {
		c := NewCert(t, kind)
		if got := [2]string{c.Key, c.Sig}; got != want[kind] {
			t.Errorf("%s: key and signature %v, want %v", kind, got, want[kind])
		}
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
		if fi, err := os.Stat(c.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: key file mode %v, %v", kind, fi.Mode(), err)
		}
	}
}

func TestNmapNames(t *testing.T) {
	for in, want := range map[string]string{
		"TLS_AKE_WITH_AES_128_GCM_SHA256":       "TLS_AES_128_GCM_SHA256",
		"TLS_AKE_WITH_CHACHA20_POLY1305_SHA256": "TLS_CHACHA20_POLY1305_SHA256",
		"TLS_RSA_WITH_AES_128_CBC_SHA":          "TLS_RSA_WITH_AES_128_CBC_SHA",
	} {
		if got := NmapToIANA(in); got != want {
			t.Errorf("NmapToIANA(%s) = %s, want %s", in, got, want)
		}
	}
	if _, err := ParseNmapXML([]byte("<nmaprun><host></host></nmaprun>")); err == nil {
		t.Error("a report without a port parsed")
	}
	if _, err := ParseNmapXML([]byte("not xml")); err == nil {
		t.Error("garbage parsed")
	}
}

// fakeTB records Skipf and Fatalf (which end the calling goroutine, like the real ones).
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                          {}
func (f *fakeTB) Skipf(format string, args ...any) { f.skipped = format; runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
	runtime.Goexit()
}

func TestRequireTool(t *testing.T) {
	run := func(ci string) *fakeTB {
		t.Setenv("CI", ci)
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			RequireTool(f, "no-such-tool-testtarget")
		}()
		<-done
		return f
	}
	if f := run(""); f.skipped == "" || f.failed != "" {
		t.Errorf("without CI: skipped %q failed %q; want a skip", f.skipped, f.failed)
	}
	if f := run("true"); f.failed == "" || f.skipped != "" {
		t.Errorf("under CI: skipped %q failed %q; want a failure", f.skipped, f.failed)
	}
	if p := RequireTool(t, "sh"); p == "" {
		t.Error("RequireTool(sh) returned no path")
	}
}
