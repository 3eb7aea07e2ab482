package listener

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlspolicy"
)

// safety bounds a wait that must end much sooner; reaching it fails the test instead of hanging it.
const safety = 10 * time.Second

// recorder hands every observation to the test, in order.
type recorder struct{ ch chan Observation }

func newRecorder() *recorder { return &recorder{ch: make(chan Observation, 4096)} }

func (r *recorder) Record(o Observation) { r.ch <- o }

// next waits for the next observation.
func (r *recorder) next(t *testing.T) Observation {
	t.Helper()
	select {
	case o := <-r.ch:
		return o
	case <-time.After(safety):
		t.Fatal("no observation recorded")
		return Observation{}
	}
}

// syncLog is a log destination the test reads while the listener writes.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncLog) lines(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), substr)
}

// testServer is a Listener on a free loopback port behind the relay role's policy (TLS 1.2 and newer),
// serving "ok" over HTTP.
type testServer struct {
	l    *Listener
	rec  *recorder
	log  *syncLog
	addr string
}

func startServer(t *testing.T, tune func(*Config)) *testServer {
	t.Helper()
	cert := testtarget.NewCert(t, testtarget.ECDSAP256).TLS
	ci, err := tlspolicy.CertInfoOf(cert)
	if err != nil {
		t.Fatal(err)
	}
	p := tlspolicy.Effective(tlspolicy.Listener{Port: 4122, Role: tlspolicy.RoleRelay},
		tlspolicy.Layers{Settings: tlspolicy.Settings{RelayMinimum: tlspolicy.TLSv1_2}, Cert: ci})
	pol, err := tlspolicy.NewServer(p, tlspolicy.ServerOptions{Certificate: cert, NextProtos: []string{"http/1.1"},
		ClientAuth: tls.RequestClientCert, Observer: Observe})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{rec: newRecorder(), log: &syncLog{}, addr: ln.Addr().String()}
	cfg := Config{TLS: pol.TLSConfig(), Port: 4122, Limits: Limits{Total: 64, PerAddress: 16}, HandshakeTimeout: time.Minute,
		Recorder: s.rec, Log: slog.New(slog.NewTextHandler(s.log, nil)), ServerNames: CertNames(cert)}
	if tune != nil {
		tune(&cfg)
	}
	if s.l, err = New(ln, cfg); err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go hs.Serve(s.l)
	t.Cleanup(func() { hs.Close(); s.l.Close() })
	return s
}

// dial opens a TCP connection from a loopback source address (127.0.0.2, 127.0.0.3, ...).
func dial(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: safety}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c (EOF or reset) rather than sending anything.
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(safety))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection from %s still open after %s", c.LocalAddr(), safety)
	}
	return err != nil
}

// get runs a TLS handshake and one request from a loopback source address.
func get(t *testing.T, from, addr string, cfg *tls.Config) (*tls.ConnectionState, error) {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{InsecureSkipVerify: true}
	}
	tr := &http.Transport{TLSClientConfig: cfg, DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: safety}).Get("https://" + addr + "/")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
		return nil, errors.New("answer " + string(b))
	}
	return resp.TLS, nil
}

// Idle connections beyond a limit are closed as they arrive and recorded with the limit's reason; the
// ones within stay open; another address, or the same once a slot is free, still completes a handshake.
func TestLimits(t *testing.T) {
	type burst struct {
		from string
		n    int
	}
	tests := []struct {
		name    string
		limits  Limits
		idle    []burst // opened in order
		refused []string
		open    int      // held after the bursts
		release string   // the address one idle connection is closed from, to free a slot ("" none)
		then    string   // the address that must then complete a handshake
		during  []string // addresses refused before the release
	}{
		{name: "per address", limits: Limits{Total: 8, PerAddress: 3}, idle: []burst{{"127.0.0.2", 5}},
			refused: []string{ReasonPerAddress, ReasonPerAddress}, open: 3, then: "127.0.0.3"},
		{name: "per address is independent of the total", limits: Limits{Total: 100, PerAddress: 2}, idle: []burst{{"127.0.0.4", 2}, {"127.0.0.2", 3}},
			refused: []string{ReasonPerAddress}, open: 4, then: "127.0.0.3"},
		{name: "total", limits: Limits{Total: 4, PerAddress: 3}, idle: []burst{{"127.0.0.2", 3}, {"127.0.0.3", 2}},
			refused: []string{ReasonTotal}, open: 4, during: []string{"127.0.0.4"}, release: "127.0.0.2", then: "127.0.0.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, func(c *Config) { c.Limits = tt.limits })
			byAddr := map[string][]net.Conn{}
			for _, b := range tt.idle {
				for range b.n {
					byAddr[b.from] = append(byAddr[b.from], dial(t, b.from, s.addr))
				}
			}
			for _, want := range tt.refused {
				if o := s.rec.next(t); o.Outcome != Failed || o.Reason != want {
					t.Fatalf("recorded %+v, want a refusal %q", o, want)
				}
			}
			// The accept loop is sequential: once the last refusal is recorded, every earlier connection
			// was admitted or refused.
			if got := s.l.Open(); got != tt.open {
				t.Errorf("%d connections open, want %d", got, tt.open)
			}
			for _, from := range tt.during {
				c := dial(t, from, s.addr)
				if !closedByServer(t, c) {
					t.Errorf("a connection from %s got in over the limit", from)
				}
				s.rec.next(t)
			}
			if tt.release != "" {
				byAddr[tt.release][0].Close()
				if o := s.rec.next(t); o.Outcome != Failed || o.ClientIP != tt.release {
					t.Fatalf("recorded %+v, want the closed connection's failed handshake", o)
				}
			}
			if _, err := get(t, tt.then, s.addr, nil); err != nil {
				t.Errorf("a client from %s was kept out: %v", tt.then, err)
			}
		})
	}
}

// The connections a limit refuses are the newest ones, and they are closed at once.
func TestRefusedConnectionsAreClosed(t *testing.T) {
	s := startServer(t, func(c *Config) { c.Limits = Limits{Total: 10, PerAddress: 2} })
	var conns []net.Conn
	for range 4 {
		conns = append(conns, dial(t, "127.0.0.2", s.addr))
	}
	s.rec.next(t)
	s.rec.next(t)
	for i, c := range conns[2:] {
		if !closedByServer(t, c) {
			t.Errorf("surplus connection %d was not closed", i)
		}
	}
	// The two admitted ones are alive: one completes a handshake on its idle TCP connection.
	tc := tls.Client(conns[0], &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Errorf("an admitted idle connection could not complete its handshake: %v", err)
	}
}

// Every kind of handshake is recorded with what the listener knew.
func TestObservations(t *testing.T) {
	clientCert := testtarget.NewCert(t, testtarget.RSA2048).TLS
	tests := []struct {
		name   string
		client func(t *testing.T, addr string)
		want   Observation
		reason string // in Reason
	}{
		{name: "accepted, own server name", client: func(t *testing.T, addr string) {
			get(t, "127.0.0.2", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		}, want: Observation{Port: 4122, ClientIP: "127.0.0.2", SNI: "localhost", OfferedMax: "TLSv1.3", Version: "TLSv1.3", Suite: "TLS_AES_128_GCM_SHA256", Outcome: Accepted}},
		{name: "accepted TLS 1.2, other name, client certificate", client: func(t *testing.T, addr string) {
			get(t, "127.0.0.3", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "random.example", MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, Certificates: []tls.Certificate{clientCert}})
		}, want: Observation{Port: 4122, ClientIP: "127.0.0.3", SNI: "other", AgentGUID: "localhost", OfferedMax: "TLSv1.2", Version: "TLSv1.2",
			Suite: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Outcome: Accepted}},
		{name: "rejected by the policy", client: func(t *testing.T, addr string) {
			get(t, "127.0.0.2", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		}, want: Observation{Port: 4122, ClientIP: "127.0.0.2", OfferedMax: "TLSv1.1", Outcome: Rejected}, reason: "protocol_version"},
		{name: "garbage", client: func(t *testing.T, addr string) {
			c := dial(t, "127.0.0.2", addr)
			c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			closedByServer(t, c)
		}, want: Observation{Port: 4122, ClientIP: "127.0.0.2", Outcome: Failed}, reason: "does not look like a TLS handshake"},
		{name: "client gave up", client: func(t *testing.T, addr string) {
			dial(t, "127.0.0.2", addr).Close()
		}, want: Observation{Port: 4122, ClientIP: "127.0.0.2", Outcome: Failed}, reason: "EOF"},
	}
	s := startServer(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.client(t, s.addr)
			got := s.rec.next(t)
			reason := got.Reason
			got.Reason = ""
			if got != tt.want {
				t.Errorf("recorded\n %+v, want\n %+v", got, tt.want)
			}
			if !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q, want it to say %q", reason, tt.reason)
			}
		})
	}
}

// A client that sends nothing is closed at the handshake deadline, and recorded as failed.
func TestHandshakeDeadline(t *testing.T) {
	s := startServer(t, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	c := dial(t, "127.0.0.2", s.addr)
	start := time.Now()
	if !closedByServer(t, c) {
		t.Fatal("a silent client was not disconnected")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a silent client was disconnected after %s, the deadline is 200ms", took)
	}
	if o := s.rec.next(t); o.Outcome != Failed || !strings.Contains(o.Reason, "timeout") {
		t.Errorf("recorded %+v", o)
	}
	if n := s.l.Open(); n != 0 {
		t.Errorf("%d connections still hold a slot", n)
	}
}

// Refusals are logged once per client address and minute, however many there are.
func TestRefusalLogOncePerAddress(t *testing.T) {
	s := startServer(t, func(c *Config) { c.Limits = Limits{Total: 10, PerAddress: 1} })
	old := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	for _, from := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3"} {
		get(t, from, s.addr, old)
		s.rec.next(t) // logged before it is recorded
	}
	if n := s.log.lines("TLS handshake refused by the policy"); n != 2 {
		t.Errorf("%d refusal lines for 2 addresses, want 2:\n%s", n, s.log)
	}
	// A limit's refusals of a third address share the rate: one line for two refusals.
	dial(t, "127.0.0.4", s.addr)
	for range 2 {
		closedByServer(t, dial(t, "127.0.0.4", s.addr))
		s.rec.next(t)
	}
	if n := s.log.lines("connection refused: " + ReasonPerAddress); n != 1 {
		t.Errorf("%d limit lines, want 1", n)
	}
}

// The rate limit of the refusal log, on an injected clock.
func TestRefusalLogRate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		ip   string
		at   time.Duration
		want bool
	}{
		{"10.0.0.1", 0, true},
		{"10.0.0.1", time.Second, false},
		{"10.0.0.2", time.Second, true},
		{"10.0.0.1", 59 * time.Second, false},
		{"10.0.0.1", 60 * time.Second, true},
		{"10.0.0.1", 61 * time.Second, false},
		{"10.0.0.2", 61 * time.Second, true},
	}
	var r refusalLog
	for _, st := range steps {
		if got := r.allow(st.ip, t0.Add(st.at)); got != st.want {
			t.Errorf("%s at +%s: logged %v, want %v", st.ip, st.at, got, st.want)
		}
	}
	// A flood of addresses does not grow the memory without bound.
	for i := range 3 * refusalLogAddresses {
		r.allow(net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String(), t0)
	}
	if n := len(r.logged); n > refusalLogAddresses {
		t.Errorf("the refusal log remembers %d addresses", n)
	}
}

// flakyListener fails its first Accept calls, as a listener out of file descriptors does.
type flakyListener struct {
	net.Listener
	fails int
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.fails > 0 {
		f.fails--
		return nil, &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return f.Listener.Accept()
}

// An accept error does not close the port for good.
func TestAcceptErrorsAreRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := testtarget.NewCert(t, testtarget.ECDSAP256).TLS
	logs := &syncLog{}
	l, err := New(&flakyListener{Listener: ln, fails: 3}, Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("the port stopped after accept errors: %v", err)
	}
	c.Close()
	if n := logs.lines("accept failed; retrying"); n != 3 {
		t.Errorf("%d accept errors logged, want 3", n)
	}
}

// Close closes the connections still in their handshake, so that none waits for its deadline.
func TestCloseEndsHandshakes(t *testing.T) {
	s := startServer(t, func(c *Config) { c.Limits = Limits{Total: 10, PerAddress: 1} })
	c := dial(t, "127.0.0.2", s.addr)
	c.Write([]byte{0x16}) // the start of a record: the handshake is under way
	// A second connection from the address is refused, so the first holds its slot.
	closedByServer(t, dial(t, "127.0.0.2", s.addr))
	if o := s.rec.next(t); o.Reason != ReasonPerAddress {
		t.Fatalf("recorded %+v", o)
	}
	s.l.Close()
	if !closedByServer(t, c) {
		t.Error("Close left a handshake open")
	}
	if _, err := s.l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
	if n := s.l.Open(); n != 0 {
		t.Errorf("%d connections hold a slot after Close", n)
	}
}

func poll(r *recorder) (Observation, bool) {
	select {
	case o := <-r.ch:
		return o, true
	default:
		return Observation{}, false
	}
}

// With Instrument, an accepted handshake is recorded with its first request's User-Agent, or without
// one when the connection closes without a request; the slot is freed either way.
func TestInstrumentUserAgent(t *testing.T) {
	cert := testtarget.NewCert(t, testtarget.ECDSAP256).TLS
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	l, err := New(ln, Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	l.Instrument(hs)
	go hs.Serve(l)
	defer hs.Close()
	tests := []struct {
		name, ua, want string
	}{
		{"a request", "tlsfleet-test/1.0", "tlsfleet-test/1.0"},
		{"a long User-Agent is cut", strings.Repeat("x", 500), strings.Repeat("x", maxUserAgent)},
		{"no request", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// TLS 1.2: the server's handshake is over when the client's is, even if the client closes at once.
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
			if err != nil {
				t.Fatal(err)
			}
			if tt.ua != "" {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: "+tt.ua+"\r\n\r\n")
				c.Read(make([]byte, 1))
			}
			c.Close()
			if o := rec.next(t); o.Outcome != Accepted || o.UserAgent != tt.want {
				t.Errorf("recorded %+v, want accepted with User-Agent %q", o, tt.want)
			}
		})
	}
	if o, ok := poll(rec); ok {
		t.Errorf("a handshake was recorded twice: %+v", o)
	}
}
