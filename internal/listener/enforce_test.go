package listener

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlspolicy"
)

func TestForbids(t *testing.T) {
	p := &tlspolicy.Policy{Listener: tlspolicy.Listener{Port: 4120}, Versions: []tlspolicy.Version{tlspolicy.TLSv1_2, tlspolicy.TLSv1_3},
		Suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, TLS13Suites: []uint16{tls.TLS_AES_128_GCM_SHA256}}
	tests := []struct {
		name           string
		version, suite uint16
		want           string
	}{
		{"allowed TLS 1.2", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ""},
		{"allowed TLS 1.3", tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, ""},
		{"version gone", tls.VersionTLS10, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "port 4120 no longer accepts TLSv1"},
		{"suite gone", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "port 4120 no longer accepts TLSv1.2 with TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
		{"TLS 1.3 suite gone", tls.VersionTLS13, tls.TLS_AES_256_GCM_SHA384, "port 4120 no longer accepts TLSv1.3 with TLS_AES_256_GCM_SHA384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Forbids(p, tt.version, tt.suite); got != tt.want {
				t.Errorf("Forbids = %q, want %q", got, tt.want)
			}
		})
	}
}

// enforceServer is a Listener on a free loopback port with a live relay-role policy whose minimum the
// test moves, serving HTTP/1.1 keep-alive; its handler waits for the test when a request asks so.
type enforceServer struct {
	l       *Listener
	pol     *tlspolicy.Server
	cert    tlspolicy.CertInfo
	addr    string
	log     *syncLog
	entered chan struct{} // a /wait request reached the handler
	release chan struct{} // lets it answer
}

func startEnforceServer(t *testing.T, minimum tlspolicy.Version, wrap func(*tls.Config)) *enforceServer {
	t.Helper()
	cert := testtarget.NewCert(t, testtarget.ECDSAP256).TLS
	ci, err := tlspolicy.CertInfoOf(cert)
	if err != nil {
		t.Fatal(err)
	}
	s := &enforceServer{cert: ci, log: &syncLog{}, entered: make(chan struct{}, 1), release: make(chan struct{})}
	if s.pol, err = tlspolicy.NewServer(s.policy(minimum), tlspolicy.ServerOptions{Certificate: cert, NextProtos: []string{"http/1.1"}, Observer: Observe}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	cfg := s.pol.TLSConfig()
	if wrap != nil {
		wrap(cfg)
	}
	if s.l, err = New(ln, Config{TLS: cfg, Policy: s.pol, Port: 4122, Role: tlspolicy.RoleRelay, HandshakeTimeout: time.Minute,
		Log: slog.New(slog.NewTextHandler(s.log, nil))}); err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			s.entered <- struct{}{}
			<-s.release
		}
		io.WriteString(w, "ok")
	}), ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	s.l.TrackHTTP(hs)
	go hs.Serve(s.l)
	t.Cleanup(func() { hs.Close(); s.l.Close() })
	return s
}

func (s *enforceServer) policy(minimum tlspolicy.Version) *tlspolicy.Policy {
	return tlspolicy.Effective(tlspolicy.Listener{Port: 4122, Role: tlspolicy.RoleRelay},
		tlspolicy.Layers{Settings: tlspolicy.Settings{RelayMinimum: minimum}, Cert: s.cert})
}

// raise moves the minimum up and enforces it.
func (s *enforceServer) raise(t *testing.T, minimum tlspolicy.Version) Enforcement {
	t.Helper()
	if err := s.pol.Update(s.policy(minimum)); err != nil {
		t.Fatal(err)
	}
	return s.l.Enforce()
}

// client is a kept-alive HTTP/1.1 connection at one TLS version.
type client struct {
	c *tls.Conn
	r *bufio.Reader
}

func dialVersion(t *testing.T, addr string, v uint16) (*client, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: safety}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &client{c: c, r: bufio.NewReader(c)}, nil
}

// send writes a keep-alive request.
func (c *client) send(t *testing.T, path string) {
	t.Helper()
	if _, err := io.WriteString(c.c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
}

// answer reads one whole response.
func (c *client) answer(t *testing.T) string {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(safety))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return string(b)
}

// closed waits for the server to close the connection (EOF or an error; a timeout fails the test).
func (c *client) closed(t *testing.T) bool {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(safety))
	_, err := c.r.ReadByte()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}

// A raised minimum closes the idle kept-alive connections below it at once, lets a request in flight
// on one finish and closes it after its response, keeps the connections it allows, and the closed
// client's next handshake fails.
func TestEnforceClosesForbiddenConnections(t *testing.T) {
	s := startEnforceServer(t, tlspolicy.TLSv1, nil)
	idle10, err := dialVersion(t, s.addr, tls.VersionTLS10)
	if err != nil {
		t.Fatalf("TLS 1.0 under a TLSv1 minimum: %v", err)
	}
	busy10, err := dialVersion(t, s.addr, tls.VersionTLS10)
	if err != nil {
		t.Fatal(err)
	}
	idle12, err := dialVersion(t, s.addr, tls.VersionTLS12)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{idle10, idle12} {
		c.send(t, "/")
		if got := c.answer(t); got != "ok" {
			t.Fatalf("answer %q", got)
		}
	}
	busy10.send(t, "/wait")
	<-s.entered

	// The idle connection may still count as serving: its server turns it idle just after the response
	// the client already read. Either way it closes now or at once.
	e := s.raise(t, tlspolicy.TLSv1_2)
	if e.Closed+e.AfterResponse != 2 || e.AfterResponse < 1 || e.Kept != 1 {
		t.Errorf("Enforce = %+v, want 2 forbidden (the busy one after its response) and 1 kept", e)
	}
	if !idle10.closed(t) {
		t.Error("the idle TLS 1.0 connection is still open")
	}
	close(s.release)
	if got := busy10.answer(t); got != "ok" {
		t.Errorf("the request in flight got %q, want its whole answer", got)
	}
	if !busy10.closed(t) {
		t.Error("the TLS 1.0 connection is still open after its response")
	}
	idle12.send(t, "/")
	if got := idle12.answer(t); got != "ok" {
		t.Errorf("the TLS 1.2 connection answered %q", got)
	}
	if _, err := dialVersion(t, s.addr, tls.VersionTLS10); err == nil {
		t.Error("a new TLS 1.0 handshake succeeded under a TLSv1.2 minimum")
	}
	if log := s.log.String(); !strings.Contains(log, fmt.Sprintf("port=4122 closed=%d closing_after_response=%d kept=1", e.Closed, e.AfterResponse)) {
		t.Errorf("log does not count the closed connections:\n%s", log)
	}
	if got, want := s.l.Enforce(), (Enforcement{Kept: 1}); got != want {
		t.Errorf("second Enforce = %+v, want %+v", got, want)
	}
}

// A handshake that began under the old policy and finishes after Enforce looked is closed as well.
func TestEnforceReachesHandshakesInProgress(t *testing.T) {
	picked, proceed := make(chan struct{}), make(chan struct{})
	s := startEnforceServer(t, tlspolicy.TLSv1, func(cfg *tls.Config) {
		inner := cfg.GetConfigForClient
		cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := inner(h)
			close(picked)
			<-proceed
			return c, err
		}
	})
	got := make(chan *client, 1)
	go func() {
		c, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10})
		if err != nil {
			got <- nil
			return
		}
		got <- &client{c: c, r: bufio.NewReader(c)}
	}()
	<-picked
	if e := s.raise(t, tlspolicy.TLSv1_2); e != (Enforcement{}) {
		t.Errorf("Enforce = %+v, want nothing (the connection is in its handshake)", e)
	}
	close(proceed)
	c := <-got
	if c == nil {
		return // the client saw the close during its handshake: cut off either way
	}
	defer c.c.Close()
	if !c.closed(t) {
		t.Error("a TLS 1.0 connection whose handshake straddled the change is still open")
	}
}
