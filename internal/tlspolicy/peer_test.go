package tlspolicy

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"tlsfleet/internal/testtarget"
)

// fleetPKI is a small CA with a server certificate, for mutual-TLS tests.
type fleetPKI struct {
	ca     *x509.Certificate
	caKey  crypto.Signer
	pool   *x509.CertPool
	server tls.Certificate
}

func newFleetPKI(t *testing.T) fleetPKI {
	k := newKey(t, "EC", 256)
	ca, _ := issue(t, "fleet CA", k, nil, nil, true, x509.ExtKeyUsageAny)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	_, server := issue(t, "localhost", newKey(t, "EC", 256), ca, k, false, x509.ExtKeyUsageServerAuth)
	return fleetPKI{ca: ca, caKey: k, pool: pool, server: server}
}

// agent issues a client certificate with a key of the given kind.
func (f fleetPKI) agent(t *testing.T, cn, alg string, bits int) tls.Certificate {
	_, c := issue(t, cn, newKey(t, alg, bits), f.ca, f.caKey, false, x509.ExtKeyUsageClientAuth)
	return c
}

// On a mutual-TLS port, java.security's key-size and signature rules apply to the peer's chain.
func TestPeerCertificateRules(t *testing.T) {
	pki := newFleetPKI(t)
	pool, serverCert := pki.pool, pki.server
	weakAgent, goodAgent := pki.agent(t, "agent-weak", "RSA", 1024), pki.agent(t, "agent-good", "RSA", 2048)

	js := mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, RSA keySize < 2048, MD5withRSA\n")
	ci, _ := CertInfoOf(serverCert)
	p := Effective(Listener{4120, RoleAgentChannel}, Layers{JavaSecurity: js, Cert: ci})
	if len(p.PeerRules) != 2 {
		t.Fatalf("peer rules = %+v, want the RSA keySize and MD5withRSA entries", p.PeerRules)
	}
	srv, err := NewServer(p, ServerOptions{Certificate: serverCert, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	ln := testtarget.Listen(t)
	tests := []struct {
		name    string
		cert    tls.Certificate
		wantErr string
	}{
		{"RSA-2048 agent", goodAgent, ""},
		{"RSA-1024 agent", weakAgent, `has a RSA 1024 key, which java.security entry "RSA keySize < 2048" forbids`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, cc := tcpPair(t, ln)
			s := tls.Server(sc, srv.TLSConfig())
			c := tls.Client(cc, &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{tt.cert}})
			s.SetDeadline(time.Now().Add(5 * time.Second))
			c.SetDeadline(time.Now().Add(5 * time.Second))
			go func() { c.Handshake(); c.Read(make([]byte, 1)); c.Close() }()
			err := s.Handshake()
			s.Close()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("handshake error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// A resumed session is held to the rules in force: a policy change invalidates the tickets issued under
// the old one, and the peer rules run on resumption too.
func TestResumptionFollowsPolicyChanges(t *testing.T) {
	pki := newFleetPKI(t)
	pool, serverCert, agent := pki.pool, pki.server, pki.agent(t, "agent", "RSA", 2048)
	ci, _ := CertInfoOf(serverCert)
	policy := func(java string) *Policy {
		return Effective(Listener{4120, RoleAgentChannel}, Layers{JavaSecurity: mustJava(t, java), Cert: ci})
	}
	srv, err := NewServer(policy("jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, RSA keySize < 2048\n"), ServerOptions{Certificate: serverCert, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	ln := testtarget.Listen(t)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			cache := tls.NewLRUClientSessionCache(4)
			dial := func() (bool, error) {
				return dialResuming(t, ln, srv, &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{agent}, ClientSessionCache: cache, MaxVersion: version})
			}
			if _, err := dial(); err != nil {
				t.Fatalf("first handshake: %v", err)
			}
			if resumed, err := dial(); err != nil || !resumed {
				t.Fatalf("second handshake: resumed=%v err=%v, want a resumed session", resumed, err)
			}
			if err := srv.Update(policy("jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, RSA keySize < 3072\n")); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Update(policy("jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, RSA keySize < 2048\n")) })
			resumed, err := dial()
			if resumed || !wantError(t, err, `which java.security entry "RSA keySize < 3072" forbids`) {
				t.Errorf("after the policy change: resumed=%v err=%v, want a refused full handshake", resumed, err)
			}
		})
	}
}

// dialResuming runs one handshake of cfg (which carries a session cache) against srv and reports whether
// the session was resumed.
func dialResuming(t *testing.T, ln net.Listener, srv *Server, cfg *tls.Config) (resumed bool, err error) {
	t.Helper()
	sc, cc := tcpPair(t, ln)
	s := tls.Server(sc, srv.TLSConfig())
	c := tls.Client(cc, cfg)
	s.SetDeadline(time.Now().Add(5 * time.Second))
	c.SetDeadline(time.Now().Add(5 * time.Second))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c.Handshake() == nil {
			c.Read(make([]byte, 1)) // TLS 1.3 tickets arrive after the handshake
		}
		c.Close()
	}()
	err = s.Handshake()
	if err == nil {
		s.Write([]byte{1})
	}
	s.Close()
	<-done
	return s.ConnectionState().DidResume, err
}

// The listener's VerifyConnection hook (the fleet's revocation list) decides full and resumed
// handshakes alike: a certificate revoked after its session was made cannot resume it.
func TestVerifyConnectionHookOnResumption(t *testing.T) {
	pki := newFleetPKI(t)
	agent := pki.agent(t, "agent", "EC", 256)
	ci, _ := CertInfoOf(pki.server)
	var revoked atomic.Bool
	hook := func(cs tls.ConnectionState) error {
		if revoked.Load() {
			return fmt.Errorf("certificate of %q is revoked", cs.PeerCertificates[0].Subject.CommonName)
		}
		return nil
	}
	srv, err := NewServer(Effective(Listener{4120, RoleAgentChannel}, Layers{Cert: ci}),
		ServerOptions{Certificate: pki.server, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pki.pool, VerifyConnection: hook})
	if err != nil {
		t.Fatal(err)
	}
	ln := testtarget.Listen(t)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			revoked.Store(false)
			cache := tls.NewLRUClientSessionCache(4)
			cfg := &tls.Config{RootCAs: pki.pool, ServerName: "localhost", Certificates: []tls.Certificate{agent}, ClientSessionCache: cache, MaxVersion: version}
			if _, err := dialResuming(t, ln, srv, cfg); err != nil {
				t.Fatalf("first handshake: %v", err)
			}
			if resumed, err := dialResuming(t, ln, srv, cfg); err != nil || !resumed {
				t.Fatalf("second handshake: resumed=%v err=%v, want a resumed session", resumed, err)
			}
			revoked.Store(true)
			if _, err := dialResuming(t, ln, srv, cfg); !wantError(t, err, `certificate of "agent" is revoked`) {
				t.Errorf("after revocation: err=%v, want the hook's refusal", err)
			}
			anon := &tls.Config{RootCAs: pki.pool, ServerName: "localhost", MaxVersion: version}
			if _, err := dialResuming(t, ln, srv, anon); err != nil {
				t.Errorf("a client without a certificate (activation) was refused: %v", err)
			}
		})
	}
}

// HTTP/2 is offered only where the negotiated suite can carry it.
func TestALPNFollowsTheSuite(t *testing.T) {
	cert := selfSigned(t, "EC", 256)
	ci, _ := CertInfoOf(cert)
	cbcOnly := Effective(Listener{4119, RoleConsole}, Layers{Cert: ci, Config: mustConf(t, "protocols=TLSv1.2\nciphers=ECDHE-ECDSA-AES128-SHA,ECDHE-ECDSA-AES128-GCM-SHA256\n")})
	ln := testtarget.Listen(t)
	tests := []struct {
		name    string
		policy  *Policy
		client  *tls.Config
		want    string
		wantErr bool
	}{
		{"TLS 1.3 gets h2", Effective(Listener{4119, RoleConsole}, Layers{Cert: ci}), &tls.Config{NextProtos: []string{"h2", "http/1.1"}}, "h2", false},
		{"GCM in TLS 1.2 gets h2", cbcOnly, &tls.Config{NextProtos: []string{"h2", "http/1.1"}}, "h2", false},
		{"CBC gets http/1.1", cbcOnly, &tls.Config{NextProtos: []string{"h2", "http/1.1"}, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, "http/1.1", false},
		{"CBC with an h2-only client is refused", cbcOnly, &tls.Config{NextProtos: []string{"h2"}, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, "", true},
		{"a protocol the port lacks is refused", Effective(Listener{4119, RoleConsole}, Layers{Cert: ci}), &tls.Config{NextProtos: []string{"acme-tls/1"}}, "", true},
		{"no ALPN at all", cbcOnly, &tls.Config{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pred Decision
			srv, err := NewServer(tt.policy, ServerOptions{Certificate: cert, NextProtos: []string{"h2", "http/1.1"}, Observer: func(_ *tls.ClientHelloInfo, d Decision) { pred = d }})
			if err != nil {
				t.Fatal(err)
			}
			sc, cc := tcpPair(t, ln)
			s := tls.Server(sc, srv.TLSConfig())
			tt.client.InsecureSkipVerify = true
			c := tls.Client(cc, tt.client)
			s.SetDeadline(time.Now().Add(5 * time.Second))
			go func() { c.Handshake(); c.Close() }()
			err = s.Handshake()
			s.Close()
			if (err != nil) != tt.wantErr {
				t.Fatalf("handshake error = %v", err)
			}
			if pred.Accepted == tt.wantErr {
				t.Errorf("observer saw %v, but the handshake error was %v", pred, err)
			}
			if err == nil && s.ConnectionState().NegotiatedProtocol != tt.want {
				t.Errorf("ALPN = %q, want %q", s.ConnectionState().NegotiatedProtocol, tt.want)
			}
		})
	}
}
