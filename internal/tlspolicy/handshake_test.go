package tlspolicy

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
	"tlsfleet/internal/testtarget"
)

// handshakeResult is what the real Go listener did with one connection.
type handshakeResult struct {
	predicted Decision
	observed  bool
	accepted  bool
	version   Version
	suite     uint16
	err       error
}

// testListener serves a policy on a free loopback port and reports each handshake.
type testListener struct {
	srv     *Server
	ln      net.Listener
	results chan handshakeResult
}

func startListener(t *testing.T, p *Policy, cert tls.Certificate) *testListener {
	t.Helper()
	tl := &testListener{results: make(chan handshakeResult, 1)}
	var pred *Decision
	obs := func(_ *tls.ClientHelloInfo, d Decision) { dd := d; pred = &dd }
	srv, err := NewServer(p, ServerOptions{Certificate: cert, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	tl.srv = srv
	ln := testtarget.Listen(t)
	tl.ln = ln
	cfg := srv.TLSConfig()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			pred = nil
			tc := tls.Server(c, cfg)
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			herr := tc.Handshake()
			r := handshakeResult{err: herr}
			if pred != nil {
				r.predicted, r.observed = *pred, true
			}
			if herr == nil {
				st := tc.ConnectionState()
				r.accepted, r.version, r.suite = true, Version(st.Version), st.CipherSuite
			}
			tc.Close()
			tl.results <- r
		}
	}()
	return tl
}

// sClient runs the real openssl s_client against the listener and returns the listener's view.
func (tl *testListener) sClient(t *testing.T, args ...string) handshakeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	port := strconv.Itoa(tl.ln.Addr().(*net.TCPAddr).Port)
	full := append([]string{"s_client", "-connect", "127.0.0.1:" + port, "-servername", "localhost"}, args...)
	cmd := exec.CommandContext(ctx, "openssl", full...)
	cmd.Stdin = strings.NewReader("")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	wait := 10 * time.Second
	if runErr != nil && !strings.Contains(out.String(), "CONNECTED") {
		wait = time.Second // s_client gave up before connecting (bad arguments)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-tl.results:
		if r.accepted && runErr != nil {
			t.Logf("server accepted but s_client failed (%v):\n%s", runErr, out.String())
		}
		return r
	case <-timer.C:
		t.Fatalf("openssl %s: no handshake reached the listener (%v)\n%s", strings.Join(full, " "), runErr, out.String())
	}
	return handshakeResult{}
}

// legacy is what OpenSSL 3 needs to offer TLS 1.0/1.1 or weak suites at all.
const legacy = "@SECLEVEL=0"

func TestHandshakesMatchEvaluate(t *testing.T) {
	testtarget.RequireTool(t, "openssl")
	rsaCert := selfSigned(t, "RSA", 2048)
	ecCert := selfSigned(t, "EC", 256)
	rsa1024 := selfSigned(t, "RSA", 1024)

	pageLine := "jdk.tls.disabledAlgorithms=SSLv3, RC4, MD5withRSA, DH keySize < 1024, EC keySize < 224, DES40_CBC, RC4_40,TLSv1, TLSv1.1\n"
	pageUndo := "jdk.tls.disabledAlgorithms=SSLv3, RC4, MD5withRSA, DH keySize < 1024, EC keySize < 224, DES40_CBC, RC4_40\n"

	type client struct {
		args []string
		want bool // accepted?
		ver  Version
	}
	tests := []struct {
		name     string
		role     Role
		java     string // "" = default java.security
		conf     string
		settings Settings
		cert     tls.Certificate
		clients  []client
	}{
		{
			name: "new install console ECDSA", role: RoleConsole, cert: ecCert,
			clients: []client{
				{args: []string{"-tls1", "-cipher", "ALL" + legacy}, want: false},
				{args: []string{"-tls1_1", "-cipher", "ALL" + legacy}, want: false},
				{args: []string{"-tls1_2"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_3"}, want: true, ver: TLSv1_3},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"}, want: false},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"}, want: false},
				{args: []string{"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"}, want: true, ver: TLSv1_3},
				{args: []string{"-tls1_3", "-groups", "P-384"}, want: true, ver: TLSv1_3},
				// A client that lists ChaCha20 first makes Go switch to its no-AES order.
				{args: []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_2", "-sigalgs", "ECDSA+SHA1", "-cipher", "ALL" + legacy}, want: false}, // Go no longer signs with SHA-1
			},
		},
		{
			name: "page enforcement line RSA agent channel", role: RoleAgentChannel, java: pageLine, cert: rsaCert,
			clients: []client{
				{args: []string{"-tls1", "-cipher", "ALL" + legacy}, want: false},
				{args: []string{"-tls1_1", "-cipher", "ALL" + legacy}, want: false},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_2", "-cipher", "AES128-SHA" + ":" + legacy}, want: false},
				{args: []string{"-tls1_3"}, want: true, ver: TLSv1_3},
			},
		},
		{
			name: "page undo: early TLS on both Manager ports, legacy suites", role: RoleAgentChannel, java: pageUndo, cert: rsaCert,
			clients: []client{
				{args: []string{"-tls1", "-cipher", "ALL" + legacy}, want: true, ver: TLSv1},
				{args: []string{"-tls1_1", "-cipher", "ALL" + legacy}, want: true, ver: TLSv1_1},
				{args: []string{"-tls1", "-cipher", "AES128-SHA:" + legacy}, want: true, ver: TLSv1},
				// Debian's OpenSSL 3 has no 3DES or RC4 left to offer, so the 3DES and RC4 rows are
				// covered by TestEvaluate's synthetic hellos instead.
				{args: []string{"-tls1_2", "-cipher", "AES256-GCM-SHA384:" + legacy}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_3"}, want: true, ver: TLSv1_3},
			},
		},
		{
			name: "protocols=TLSv1.2 restricts console alone", role: RoleConsole, java: pageUndo, conf: "protocols=TLSv1.2\n", cert: rsaCert,
			clients: []client{
				{args: []string{"-tls1", "-cipher", "ALL" + legacy}, want: false},
				{args: []string{"-tls1_1", "-cipher", "ALL" + legacy}, want: false},
				{args: []string{"-tls1_2"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_3"}, want: false},
				{args: []string{}, want: true, ver: TLSv1_2},
			},
		},
		{
			name: "protocols=TLSv1.2 does not touch the agent channel", role: RoleAgentChannel, java: pageUndo, conf: "protocols=TLSv1.2\n", cert: rsaCert,
			clients: []client{
				{args: []string{"-tls1", "-cipher", "ALL" + legacy}, want: true, ver: TLSv1},
				{args: []string{"-tls1_3"}, want: true, ver: TLSv1_3},
			},
		},
		{
			name: "page GUI undo protocols=TLSv1,TLSv1.1,TLSv1.2", role: RoleConsole, java: pageUndo, conf: "protocols=TLSv1,TLSv1.1,TLSv1.2\n", cert: rsaCert,
			clients: []client{
				{args: []string{"-tls1", "-cipher", "ALL" + legacy}, want: true, ver: TLSv1},
				{args: []string{"-tls1_1", "-cipher", "ALL" + legacy}, want: true, ver: TLSv1_1},
				{args: []string{"-tls1_3"}, want: false},
				{args: []string{"-cipher", "ALL" + legacy}, want: true, ver: TLSv1_2},
			},
		},
		{
			name: "strong cipher list on the console", role: RoleConsole, java: pageLine, cert: rsaCert,
			conf: "ciphers=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
			clients: []client{
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"}, want: false},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"}, want: false},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_3"}, want: true, ver: TLSv1_3},
			},
		},
		{
			name: "relay: restrictRelayMinimumTLSProtocol=TLSv1 with strong ciphers", role: RoleRelay, cert: rsaCert,
			settings: Settings{ManagerMinimum: TLSv1, RelayMinimum: TLSv1, AgentMinimum: TLSv1_2, StrongCiphers: true},
			clients: []client{
				{args: []string{"-tls1", "-cipher", "ALL" + legacy}, want: false}, // no strong suite exists before TLS 1.2
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA"}, want: false},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"}, want: true, ver: TLSv1_2},
			},
		},
		{
			name: "relay: restrictRelayMinimumTLSProtocol=TLSv1.1", role: RoleRelay, cert: rsaCert,
			settings: Settings{ManagerMinimum: TLSv1, RelayMinimum: TLSv1_1, AgentMinimum: TLSv1_2},
			clients: []client{
				{args: []string{"-tls1", "-cipher", "ALL" + legacy}, want: false},
				{args: []string{"-tls1_1", "-cipher", "ALL" + legacy}, want: true, ver: TLSv1_1},
				{args: []string{"-tls1_1", "-cipher", "AES256-SHA:" + legacy}, want: true, ver: TLSv1_1},
			},
		},
		{
			name: "gap: TLSv1.1 alone disabled", role: RoleAgentChannel, java: "jdk.tls.disabledAlgorithms=SSLv3, TLSv1.1\n", cert: rsaCert,
			clients: []client{
				{args: []string{"-tls1", "-cipher", "ALL" + legacy}, want: true, ver: TLSv1},
				// A client whose newest version is TLS 1.1 gets TLS 1.0: it has no supported_versions
				// extension, so its hello claims every older version too (what the JDK does as well).
				{args: []string{"-no_tls1_2", "-no_tls1_3", "-cipher", "ALL" + legacy}, want: true, ver: TLSv1},
				{args: []string{"-tls1_2"}, want: true, ver: TLSv1_2},
			},
		},
		{
			name: "groups: x25519 disabled by name", role: RoleConsole, java: "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, x25519, X25519MLKEM768\n", cert: ecCert,
			clients: []client{
				{args: []string{"-tls1_3", "-groups", "X25519"}, want: false},
				{args: []string{"-tls1_3", "-groups", "X25519:P-256"}, want: true, ver: TLSv1_3},
				{args: []string{"-tls1_2", "-curves", "X25519"}, want: false},
			},
		},
		{
			name: "EC keySize < 384 leaves P-384, P-521 and the XDH x25519", role: RoleConsole, java: "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, EC keySize < 384\n", cert: rsaCert,
			clients: []client{
				{args: []string{"-tls1_3", "-groups", "P-256"}, want: false},
				{args: []string{"-tls1_3", "-groups", "X25519:P-256"}, want: true, ver: TLSv1_3},
				{args: []string{"-tls1_3", "-groups", "P-384"}, want: true, ver: TLSv1_3},
				{args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-curves", "P-256"}, want: false},
			},
		},
		{
			name: "RSA-PSS handshake signatures disabled", role: RoleConsole, cert: rsaCert,
			java: "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, rsa_pss_rsae_sha256 usage HandshakeSignature, RSASSA-PSS\n",
			clients: []client{
				{args: []string{"-tls1_3"}, want: false}, // TLS 1.3 signs RSA keys with PSS only
				{args: []string{"-tls1_2"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_2", "-sigalgs", "RSA-PSS+SHA256:RSA-PSS+SHA384"}, want: false},
				{args: []string{"-tls1_2", "-sigalgs", "RSA+SHA384"}, want: true, ver: TLSv1_2},
				{args: []string{"-tls1_2", "-cipher", "AES128-GCM-SHA256:" + legacy, "-sigalgs", "RSA-PSS+SHA256"}, want: false}, // RSA key exchange is a legacy suite, off under TLS 1.2+
			},
		},
		{
			// As JDK 17 does (jdk_test.go): keySize constraints apply to peers and key exchange, not to
			// the server's own certificate, which is served with a warning.
			name: "RSA keySize < 2048 still serves an RSA-1024 certificate", role: RoleConsole, java: "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, RSA keySize < 2048\n", cert: rsa1024,
			clients: []client{
				{args: []string{"-tls1_2", "-cipher", "ALL" + legacy}, want: true},
				{args: []string{"-tls1_3", "-cipher", "ALL" + legacy}, want: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var layers Layers
			if tt.java != "" {
				js, err := ParseJavaSecurity("java.security", []byte(tt.java))
				if err != nil {
					t.Fatal(err)
				}
				layers.JavaSecurity = js
			}
			if tt.conf != "" {
				cp, err := ParseConfigProperties("configuration.properties", []byte(tt.conf))
				if err != nil {
					t.Fatal(err)
				}
				layers.Config = cp
			}
			layers.Settings = tt.settings
			ci, err := CertInfoOf(tt.cert)
			if err != nil {
				t.Fatal(err)
			}
			layers.Cert = ci
			p := Effective(Listener{Port: 4119, Role: tt.role}, layers)
			tl := startListener(t, p, tt.cert)
			for _, c := range tt.clients {
				name := strings.Join(c.args, " ")
				r := tl.sClient(t, c.args...)
				if !r.observed {
					t.Errorf("[%s] the observer saw no ClientHello", name)
					continue
				}
				d := r.predicted
				if d.Accepted != r.accepted {
					t.Errorf("[%s] Evaluate said %v, the listener %s", name, d, outcome(r))
					continue
				}
				if r.accepted && (d.Version != r.version || d.Suite != r.suite) {
					t.Errorf("[%s] Evaluate predicted %s %s, the listener negotiated %s %s", name, d.Version, SuiteName(d.Suite), r.version, SuiteName(r.suite))
				}
				if r.accepted != c.want {
					t.Errorf("[%s] want accepted=%v, listener %s (Evaluate: %v)", name, c.want, outcome(r), d)
				}
				if c.want && r.accepted && c.ver != 0 && r.version != c.ver {
					t.Errorf("[%s] negotiated %s, want %s", name, r.version, c.ver)
				}
			}
		})
	}
}

func outcome(r handshakeResult) string {
	if r.accepted {
		return fmt.Sprintf("accepted %s %s", r.version, SuiteName(r.suite))
	}
	return fmt.Sprintf("rejected (%v)", r.err)
}

// TestUpdateTakesEffectWithoutRestart swaps the policy of a running listener and checks that the next
// handshake follows the new one.
func TestUpdateTakesEffectWithoutRestart(t *testing.T) {
	testtarget.RequireTool(t, "openssl")
	cert := selfSigned(t, "RSA", 2048)
	ci, _ := CertInfoOf(cert)
	enforce, _ := ParseJavaSecurity("java.security", []byte("jdk.tls.disabledAlgorithms=SSLv3, TLSv1, TLSv1.1\n"))
	undo, _ := ParseJavaSecurity("java.security", []byte("jdk.tls.disabledAlgorithms=SSLv3\n"))
	l := Listener{Port: 4120, Role: RoleAgentChannel}
	tl := startListener(t, Effective(l, Layers{JavaSecurity: enforce, Cert: ci}), cert)
	if r := tl.sClient(t, "-tls1", "-cipher", "ALL"+legacy); r.accepted {
		t.Fatalf("TLS 1.0 accepted while enforced: %s", outcome(r))
	}
	if err := tl.srv.Update(Effective(l, Layers{JavaSecurity: undo, Cert: ci})); err != nil {
		t.Fatal(err)
	}
	if r := tl.sClient(t, "-tls1", "-cipher", "ALL"+legacy); !r.accepted || r.version != TLSv1 {
		t.Fatalf("TLS 1.0 after undo: %s", outcome(r))
	}
	if err := tl.srv.Update(Effective(l, Layers{JavaSecurity: enforce, Cert: ci})); err != nil {
		t.Fatal(err)
	}
	if r := tl.sClient(t, "-tls1_1", "-cipher", "ALL"+legacy); r.accepted {
		t.Fatalf("TLS 1.1 accepted after re-enforcing: %s", outcome(r))
	}
}
