package tlspolicy_test

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlspolicy"
	"tlsfleet/internal/tlswire"
)

// The JDK comparison: a real JDK 17 TLS server (testdata/jdk/TLSServer.java) that enables every protocol
// and suite it has, given a java.security file with -Djava.security.properties, is asked one (version,
// suite) at a time with raw ClientHellos, for an RSA and an EC certificate; tlspolicy predicts the same
// answers from the same file (Explain with every protocol and suite enabled in configuration.properties,
// as the Java server enables them, then Evaluate). Where tlsfleet deliberately differs from the JDK, the
// case lists the probes that differ and the note tlsfleet prints about it.

// jdkCase is one java.security file.
type jdkCase struct {
	name string
	// java is the file given to the JDK with -Djava.security.properties ("" gives none: the JDK's own
	// default, which is tlsfleet's default too). Files in extra are written next to it.
	java  string
	extra map[string]string
	// groups offered in every probe (nil: x25519, secp256r1, secp384r1, secp521r1).
	groups []uint16
	// diff lists where tlsfleet deliberately differs: each is a substring of the differing probes' lines
	// ("ec TLSv1.2 TLS_…: JDK TLSv1.2 TLS_…, tlsfleet refused"), and each must match at least one. note
	// is what tlsfleet's report of the file (warnings, NOT ENFORCED lines, entry effects) prints about it,
	// for both certificates.
	diff []string
	note string
}

// The page's lines, the four disagreements of the adversarial review, key sizes, protocol lists, suite
// components and names.
var jdkCases = []jdkCase{
	{name: "no file: the JDK's own default"},
	{name: "tlsfleet's default java.security", java: tlspolicy.DefaultJavaSecurityContent},
	{name: "the page's enforcement line", java: "jdk.tls.disabledAlgorithms=SSLv3, RC4, MD5withRSA, DH keySize < 1024, EC keySize < 224, DES40_CBC, RC4_40,TLSv1, TLSv1.1\n"},
	{name: "the page's undo line", java: "jdk.tls.disabledAlgorithms=SSLv3, RC4, MD5withRSA, DH keySize < 1024, EC keySize < 224, DES40_CBC, RC4_40\n"},
	{name: "nothing disabled", java: "jdk.tls.disabledAlgorithms=\n"},
	{name: "TLSv1.2 disabled", java: "jdk.tls.disabledAlgorithms=TLSv1.2\n"},
	{name: "TLSv1.3 disabled", java: "jdk.tls.disabledAlgorithms=TLSv1.3\n"},
	{name: "TLS 1.3 only", java: "jdk.tls.disabledAlgorithms=SSLv3, TLSv1, TLSv1.1, TLSv1.2\n"},
	{name: "TLSv1 alone disabled (a gap below TLSv1.1)", java: "jdk.tls.disabledAlgorithms=SSLv3, TLSv1\n"},
	{name: "protocols in lower case", java: "jdk.tls.disabledAlgorithms=tlsv1, tlsv1.1\n",
		diff: []string{": JDK SSLv3 "}, note: "java.security does not disable SSLv3: a JDK would negotiate SSL 3.0"},
	{name: "a misspelt protocol", java: "jdk.tls.disabledAlgorithms=TLS1.2\n", note: `ignores "TLS1.2", and so does tlsfleet; write TLSv1.2`},
	{name: "EC keySize < 384 with a P-256 certificate", java: "jdk.tls.disabledAlgorithms=EC keySize < 384\n"},
	{name: "EC keySize < 384, secp256r1 offered alone", java: "jdk.tls.disabledAlgorithms=EC keySize < 384\n", groups: []uint16{23}},
	{name: "RSA keySize < 4096 with an RSA-2048 certificate", java: "jdk.tls.disabledAlgorithms=RSA keySize < 4096\n"},
	{name: "a wildcard in a full suite name", java: "jdk.tls.disabledAlgorithms=TLS_ECDHE_ECDSA_WITH_AES_256_*\n", note: "JDK 17 has no wildcards"},
	{name: "a TLS_RSA_* wildcard", java: "jdk.tls.disabledAlgorithms=TLS_RSA_*\n"},
	{name: "a file-level include", java: "jdk.tls.disabledAlgorithms=SSLv3\ninclude extra.security\n", extra: map[string]string{"extra.security": "jdk.tls.disabledAlgorithms=SSLv3, TLSv1.2\n"},
		note: `"include extra.security" is ignored: JDK 17 has no include lines`},
	{name: "SHA1", java: "jdk.tls.disabledAlgorithms=SHA1\n"},
	{name: "SHA256", java: "jdk.tls.disabledAlgorithms=SHA256\n"},
	{name: "SHA1 and SHA256", java: "jdk.tls.disabledAlgorithms=SHA1, SHA256\n",
		diff: []string{"ec TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: JDK refused, tlsfleet TLSv1.2"},
		note: "java.security disables ecdsa_secp256r1_sha256: in TLS 1.2 the JDK would sign with this EC 256 key only with ecdsa_sha1"},
	{name: "SHA384", java: "jdk.tls.disabledAlgorithms=SHA384\n"},
	{name: "HmacSHA1", java: "jdk.tls.disabledAlgorithms=HmacSHA1\n"},
	{name: "CBC", java: "jdk.tls.disabledAlgorithms=CBC\n"},
	{name: "GCM", java: "jdk.tls.disabledAlgorithms=GCM\n"},
	{name: "AES_128_GCM", java: "jdk.tls.disabledAlgorithms=AES_128_GCM\n"},
	{name: "AES", java: "jdk.tls.disabledAlgorithms=AES\n"},
	{name: "ChaCha20-Poly1305", java: "jdk.tls.disabledAlgorithms=ChaCha20-Poly1305\n"},
	{name: "CHACHA20_POLY1305", java: "jdk.tls.disabledAlgorithms=CHACHA20_POLY1305\n"},
	{name: "3DES_EDE_CBC", java: "jdk.tls.disabledAlgorithms=3DES_EDE_CBC\n"},
	{name: "ECDHE", java: "jdk.tls.disabledAlgorithms=ECDHE\n"},
	{name: "ECDHE_RSA", java: "jdk.tls.disabledAlgorithms=ECDHE_RSA\n"},
	{name: "ECDSA", java: "jdk.tls.disabledAlgorithms=ECDSA\n"},
	{name: "RSA", java: "jdk.tls.disabledAlgorithms=RSA\n"},
	{name: "a full suite name", java: "jdk.tls.disabledAlgorithms=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384\n"},
	{name: "an SSL_ suite name", java: "jdk.tls.disabledAlgorithms=SSL_RSA_WITH_3DES_EDE_CBC_SHA\n"},
	{name: "x25519 and secp256r1", java: "jdk.tls.disabledAlgorithms=x25519, secp256r1\n"},
	{name: "ecdsa_secp256r1_sha256", java: "jdk.tls.disabledAlgorithms=ecdsa_secp256r1_sha256\n"},
	{name: "DH keySize < 2048", java: "jdk.tls.disabledAlgorithms=DH keySize < 2048\n"},
}

// jdkProbeGroups are the groups every probe offers unless a case says otherwise: the classic ones both
// Go and JDK 17 have.
var jdkVerbose = flag.Bool("jdk-verbose", false, "log every probe of the JDK comparison")

var jdkProbeGroups = []uint16{29, 23, 24, 25}

var (
	jdkSigAlgsTLS12 = []uint16{0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201}
	jdkSigAlgsTLS13 = []uint16{0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601}
	jdkVersions     = []tlspolicy.Version{tlspolicy.TLSv1, tlspolicy.TLSv1_1, tlspolicy.TLSv1_2, tlspolicy.TLSv1_3}
)

func TestJDK17Agrees(t *testing.T) {
	start := time.Now()
	env := newJDKEnv(t)
	var mu sync.Mutex
	agreed, documented := 0, 0
	for _, tc := range jdkCases {
		t.Run(tc.name, func(t *testing.T) {
			a, d := env.compare(t, tc)
			mu.Lock()
			agreed, documented = agreed+a, documented+d
			mu.Unlock()
		})
	}
	t.Logf("JDK 17 comparison: %d cases, %d probes agreed, %d differ as documented, in %s", len(jdkCases), agreed, documented, time.Since(start).Round(time.Millisecond))
}

// jdkEnv is the compiled server and the two keystores.
type jdkEnv struct {
	java, classes string
	certs         []jdkCert
	suites        []string // every suite the JDK has
}

type jdkCert struct {
	name     string // rsa, ec
	keystore string
	info     tlspolicy.CertInfo
}

func newJDKEnv(t *testing.T) *jdkEnv {
	java := testtarget.RequireTool(t, "java")
	javac := testtarget.RequireTool(t, "javac")
	openssl := testtarget.RequireTool(t, "openssl")
	dir := t.TempDir()
	env := &jdkEnv{java: java, classes: filepath.Join(dir, "classes")}
	src, err := filepath.Abs(filepath.Join("testdata", "jdk", "TLSServer.java"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), javac, "-d", env.classes, src).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	if out, err := exec.CommandContext(t.Context(), java, "-version").CombinedOutput(); err != nil || !strings.Contains(string(out), `version "17`) {
		t.Logf("the reference is JDK 17; this java is: %s", out)
	}
	for _, kind := range []string{"rsa", "ec"} {
		env.certs = append(env.certs, makeKeystore(t, openssl, dir, kind))
	}
	// The JDK lists as supported only the suites its java.security leaves: ask once with nothing
	// disabled, so that every case probes the same suites.
	none := filepath.Join(dir, "nothing-disabled.security")
	os.WriteFile(none, []byte(tlspolicy.DisabledAlgorithmsKey+"=\n"), 0o600)
	env.suites = env.startJDK(t, none).suites
	return env
}

// makeKeystore writes a self-signed certificate and its key as PKCS12, as the Java server reads it.
func makeKeystore(t *testing.T, openssl, dir, kind string) jdkCert {
	var key crypto.Signer
	var err error
	if kind == "rsa" {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := filepath.Join(dir, kind+".pem"), filepath.Join(dir, kind+"-key.pem")
	os.WriteFile(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600)
	p12 := filepath.Join(dir, kind+".p12")
	if out, err := exec.CommandContext(t.Context(), openssl, "pkcs12", "-export", "-in", certPEM, "-inkey", keyPEM, "-out", p12,
		"-passout", "pass:changeit", "-name", "server").CombinedOutput(); err != nil {
		t.Fatalf("openssl pkcs12: %v\n%s", err, out)
	}
	info, err := tlspolicy.CertInfoOf(tls.Certificate{Certificate: [][]byte{der}})
	if err != nil {
		t.Fatal(err)
	}
	return jdkCert{name: kind, keystore: p12, info: info}
}

// jdkServer is one running JVM.
type jdkServer struct {
	ports    map[string]int
	suites   []string
	disabled string
}

// startJDK runs the Java server with the case's file and waits for its READY line (no sleeping: the
// line is the event).
func (env *jdkEnv) startJDK(t *testing.T, securityFile string) *jdkServer {
	args := []string{"-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", env.classes}
	if securityFile != "" {
		args = append(args, "-Djava.security.properties="+securityFile)
	}
	args = append(args, "TLSServer")
	for _, c := range env.certs {
		args = append(args, c.name+"="+c.keystore)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	cmd := exec.CommandContext(ctx, env.java, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the server exits when its stdin closes
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	srv := &jdkServer{ports: map[string]int{}}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch kw, rest, _ := strings.Cut(line, " "); kw {
		case "DISABLED":
			srv.disabled = rest
		case "SUITES":
			srv.suites = strings.Split(rest, ",")
		case "READY":
			for _, f := range strings.Fields(rest) {
				name, port, _ := strings.Cut(f, "=")
				srv.ports[name], _ = strconv.Atoi(port)
			}
			go io.Copy(io.Discard, stdout)
			return srv
		}
	}
	t.Fatalf("the Java server did not start: %v\n%s", sc.Err(), stderr.String())
	return nil
}

// probe is one (version, suite) ClientHello to one certificate's port.
type probe struct {
	cert    jdkCert
	version tlspolicy.Version
	suite   tlspolicy.Suite
}

func (p probe) String() string { return fmt.Sprintf("%s %s %s", p.cert.name, p.version, p.suite.Name) }

// outcome is what a server did with a probe: "TLSv1.2 TLS_…" or "refused".
func outcomeOf(accepted bool, v tlspolicy.Version, suite uint16) string {
	if !accepted {
		return "refused"
	}
	return v.String() + " " + tlspolicy.SuiteName(suite)
}

// compare runs one case and reports how many probes agreed and how many differed as documented.
func (env *jdkEnv) compare(t *testing.T, tc jdkCase) (agreed, documented int) {
	dir := t.TempDir()
	file := ""
	if tc.java != "" {
		file = filepath.Join(dir, "case.security")
		os.WriteFile(file, []byte(tc.java), 0o600)
		for name, content := range tc.extra {
			os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600)
		}
	}
	srv := env.startJDK(t, file)
	t.Logf("JDK: jdk.tls.disabledAlgorithms=%s", srv.disabled)
	probes := env.probes()
	groups := tc.groups
	if groups == nil {
		groups = jdkProbeGroups
	}
	got := runProbes(t, srv, probes, groups)
	for _, c := range env.certs {
		if tls13Completes(srv.ports[c.name], groups) {
			continue
		}
		for i, p := range probes {
			if p.cert.name == c.name && p.version == tlspolicy.TLSv1_3 {
				got[i] = "refused"
			}
		}
	}
	var js *tlspolicy.JavaSecurity
	if file != "" {
		var err error
		if js, err = tlspolicy.LoadJavaSecurity(file); err != nil {
			t.Fatalf("tlspolicy refuses the file the JDK reads: %v", err)
		}
	}
	var diffs []string
	notes := map[string]string{}
	for _, c := range env.certs {
		ex := explainAllEnabled(js, c.info)
		notes[c.name] = printedNotes(ex)
		for i, p := range probes {
			if p.cert.name != c.name {
				continue
			}
			d := tlspolicy.Evaluate(ex.Policy, clientHelloInfo(p, groups))
			want := outcomeOf(d.Accepted, d.Version, d.Suite)
			if *jdkVerbose {
				t.Logf("%s: JDK %s, tlsfleet %s", p, got[i], want)
			}
			if want == got[i] {
				agreed++
				continue
			}
			diffs = append(diffs, fmt.Sprintf("%s: JDK %s, tlsfleet %s", p, got[i], want))
		}
	}
	for _, d := range diffs {
		if !slices.ContainsFunc(tc.diff, func(p string) bool { return strings.Contains(d, p) }) && !notEnforced(d, notes) {
			t.Errorf("undocumented difference: %s", d)
			continue
		}
		documented++
		t.Logf("documented difference: %s", d)
	}
	for _, p := range tc.diff {
		if !slices.ContainsFunc(diffs, func(d string) bool { return strings.Contains(d, p) }) {
			t.Errorf("documented difference %q no longer occurs: remove it from the case", p)
		}
	}
	if tc.note != "" && !strings.Contains(notes["rsa"], tc.note) && !strings.Contains(notes["ec"], tc.note) {
		t.Errorf("tlsfleet's report lacks the note %q:\n%s\n%s", tc.note, notes["rsa"], notes["ec"])
	}
	return agreed, documented
}

// notEnforced reports whether a difference is a TLS 1.3 suite that java.security forbids and Go's
// crypto/tls cannot switch off alone, which tlsfleet prints as NOT ENFORCED, saying the JDK would refuse it.
func notEnforced(diff string, notes map[string]string) bool {
	cert, rest, _ := strings.Cut(diff, " ")
	f := strings.Fields(rest)
	if len(f) < 2 || f[0] != "TLSv1.3" || !strings.Contains(diff, ": JDK refused, tlsfleet TLSv1.3") {
		return false
	}
	suite := strings.TrimSuffix(f[1], ":")
	return strings.Contains(notes[cert], "NOT ENFORCED: "+suite+" ") && strings.Contains(notes[cert], "a JDK would refuse it")
}

// probes are the (version, suite) pairs asked of each port: every suite both the JDK and Go have, in each
// version that can negotiate it.
func (env *jdkEnv) probes() []probe {
	var out []probe
	for _, c := range env.certs {
		for _, name := range env.suites {
			s, ok := tlspolicy.LookupSuite(name)
			if !ok || !s.GoImplemented() || s.SCSV {
				continue
			}
			for _, v := range jdkVersions {
				if s.SupportsVersion(v) {
					out = append(out, probe{cert: c, version: v, suite: s})
				}
			}
		}
	}
	return out
}

// runProbes asks the Java server every probe, a few at a time.
func runProbes(t *testing.T, srv *jdkServer, probes []probe, groups []uint16) []string {
	out := make([]string, len(probes))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = rawProbe(t, srv.ports[p.cert.name], p, groups)
		}()
	}
	wg.Wait()
	return out
}

// rawProbe sends one ClientHello and reads the answer. In TLS 1.0–1.2 the whole first flight is read:
// a ServerHelloDone means the server could sign (or needs no signature) and would go on; an alert or a
// hang-up is a refusal. In TLS 1.3 the server's HelloRetryRequest names the suite it picked; whether it
// can then authenticate is asked once per port by tls13Completes.
func rawProbe(t *testing.T, port int, p probe, groups []uint16) string {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return "error"
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	rec, err := rawHello(p, groups).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(rec); err != nil {
		return "refused"
	}
	rd := tlswire.NewReader(conn)
	var sh *tlswire.ServerHello
	for {
		m, err := rd.Next()
		if err != nil || m.Alert != nil {
			return "refused"
		}
		switch {
		case m.ChangeCipherSpec:
		case m.Type == tlswire.TypeServerHello:
			if sh, err = tlswire.ParseServerHello(m.Body); err != nil {
				t.Errorf("%s: %v", p, err)
				return "error"
			}
			if sh.HelloRetry || sh.Version() >= tls.VersionTLS13 {
				return outcomeOf(true, tlspolicy.Version(sh.Version()), sh.CipherSuite)
			}
		case m.Type == tlswire.TypeServerHelloDone && sh != nil:
			return outcomeOf(true, tlspolicy.Version(sh.Version()), sh.CipherSuite)
		}
	}
}

// tls13Completes reports whether a whole TLS 1.3 handshake with the port completes (Go's client offers
// its three suites; the server must also find a signature scheme for its certificate).
func tls13Completes(port int, groups []uint16) bool {
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13}
	for _, g := range groups {
		cfg.CurvePreferences = append(cfg.CurvePreferences, tls.CurveID(g))
	}
	d := &net.Dialer{Timeout: 15 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cfg)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func rawHello(p probe, groups []uint16) *tlswire.ClientHello {
	v := uint16(p.version)
	ch := &tlswire.ClientHello{RecordVersion: tls.VersionTLS10, Version: v, CipherSuites: []uint16{p.suite.ID},
		ServerName: "localhost", Groups: groups, PointFormats: []byte{0}, RenegotiationInfo: true}
	if v >= tls.VersionTLS12 {
		ch.SignatureAlgorithms = jdkSigAlgsTLS12
	}
	if v == tls.VersionTLS13 {
		ch.Version = tls.VersionTLS12
		ch.SupportedVersions = []uint16{tls.VersionTLS13}
		ch.SignatureAlgorithms = jdkSigAlgsTLS13
		ch.SendKeyShare = true // empty: the server answers with a HelloRetryRequest naming its suite
		ch.PSKModes = true
	}
	return ch
}

// clientHelloInfo is the raw hello as Go's server sees it.
func clientHelloInfo(p probe, groups []uint16) *tls.ClientHelloInfo {
	h := &tls.ClientHelloInfo{CipherSuites: []uint16{p.suite.ID}, ServerName: "localhost", SupportedPoints: []uint8{0}}
	for _, g := range groups {
		h.SupportedCurves = append(h.SupportedCurves, tls.CurveID(g))
	}
	sigs := jdkSigAlgsTLS12
	if p.version == tlspolicy.TLSv1_3 {
		h.SupportedVersions = []uint16{tls.VersionTLS13}
		sigs = jdkSigAlgsTLS13
	} else {
		for v := p.version; v >= tlspolicy.TLSv1; v-- {
			h.SupportedVersions = append(h.SupportedVersions, uint16(v))
		}
	}
	if p.version >= tlspolicy.TLSv1_2 {
		for _, s := range sigs {
			h.SignatureSchemes = append(h.SignatureSchemes, tls.SignatureScheme(s))
		}
	}
	return h
}

// allEnabled is configuration.properties enabling every protocol and every Go suite on the console, as
// the Java server enables every one of its own: only java.security is left to decide.
var allEnabled = func() string {
	var names []string
	for _, s := range tlspolicy.Registry() {
		if s.GoImplemented() {
			names = append(names, s.Name)
		}
	}
	return "protocols=TLSv1,TLSv1.1,TLSv1.2,TLSv1.3\nciphers=" + strings.Join(names, ",") + "\n"
}()

func explainAllEnabled(js *tlspolicy.JavaSecurity, cert tlspolicy.CertInfo) *tlspolicy.Explanation {
	cp, err := tlspolicy.ParseConfigProperties("configuration.properties (everything enabled)", []byte(allEnabled))
	if err != nil {
		panic(err)
	}
	return tlspolicy.Explain(tlspolicy.Listener{Port: 4119, Role: tlspolicy.RoleConsole},
		tlspolicy.Layers{JavaSecurity: js, Config: cp, Settings: tlspolicy.DefaultSettings(), Cert: cert})
}

// printedNotes is what `tlsfleet policy` prints about the policy besides its lists.
func printedNotes(ex *tlspolicy.Explanation) string {
	var b strings.Builder
	tlspolicy.Report{Ports: []tlspolicy.PortReport{tlspolicy.NewPortReport(ex)}}.WriteText(&b)
	return b.String()
}
