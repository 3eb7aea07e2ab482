package manager

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/install"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/settings"
)

// logEvents hands the test every log record whose message starts with one of its prefixes, with its
// attributes as text: the test waits on what the Manager says it did instead of polling.
type logEvents struct {
	prefixes []string
	ch       chan map[string]string
	seen     []map[string]string // read by await, not matched yet (the test's goroutine only)
}

func (h *logEvents) Enabled(context.Context, slog.Level) bool { return true }
func (h *logEvents) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logEvents) WithGroup(string) slog.Handler            { return h }
func (h *logEvents) Handle(_ context.Context, r slog.Record) error {
	for _, p := range h.prefixes {
		if strings.HasPrefix(r.Message, p) {
			ev := map[string]string{"msg": r.Message}
			r.Attrs(func(a slog.Attr) bool { ev[a.Key] = a.Value.String(); return true })
			select {
			case h.ch <- ev:
			default: // never block the Manager; a lost record fails the test's wait instead
			}
			break
		}
	}
	return nil
}

// await waits for a record with msg's prefix whose attributes have the values in want; records that
// did not match are kept for later awaits.
func (h *logEvents) await(t *testing.T, msg string, want map[string]string) map[string]string {
	t.Helper()
	match := func(ev map[string]string) bool {
		ok := strings.HasPrefix(ev["msg"], msg)
		for k, v := range want {
			ok = ok && ev[k] == v
		}
		return ok
	}
	for i, ev := range h.seen {
		if match(ev) {
			h.seen = append(h.seen[:i], h.seen[i+1:]...)
			return ev
		}
	}
	timeout := time.After(30 * time.Second) // an event, not a sleep: generous for a loaded machine
	for {
		select {
		case ev := <-h.ch:
			if match(ev) {
				return ev
			}
			h.seen = append(h.seen, ev)
		case <-timeout:
			t.Fatalf("the Manager never logged %q with %v; it logged %v", msg, want, h.seen)
			return nil
		}
	}
}

// keptAlive is an HTTP client at TLS 1.0 only that keeps one connection, counts its dials (attempts),
// and reports when the server closes the first connection.
type keptAlive struct {
	http   *http.Client
	mu     sync.Mutex
	dials  int
	closed chan struct{} // closed when the server closed the (first) connection
}

func newKeptAlive(certs []tls.Certificate, pool *x509.CertPool) *keptAlive {
	k := &keptAlive{closed: make(chan struct{})}
	cfg := &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10, RootCAs: pool, ServerName: "localhost",
		Certificates: certs, InsecureSkipVerify: pool == nil}
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		k.mu.Lock()
		k.dials++
		first := k.dials == 1
		k.mu.Unlock()
		d := tls.Dialer{Config: cfg}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		w := &watchedConn{Conn: c}
		if first {
			w.closed = k.closed
		}
		return w, nil
	}}
	k.http = &http.Client{Timeout: 5 * time.Second, Transport: tr}
	return k
}

func (k *keptAlive) dialed() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dials
}

// watchedConn closes its channel when a read says the server closed the connection.
type watchedConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil && w.closed != nil {
		w.once.Do(func() { close(w.closed) })
	}
	return n, err
}

// A TLS 1.0 agent heartbeating on a kept-alive connection to 4120, and a TLS 1.0 console client on
// 4119, are cut off by each of the page's enforcement steps — the java.security edit and
// restrictManagerMinimumTLSProtocol=TLSv1.2 — at once, not when they next reconnect: the Manager closes
// their connections, logs how many per port, and their next handshake fails.
func TestEnforcementClosesOpenConnections(t *testing.T) {
	tests := []struct {
		name    string
		enforce func(t *testing.T, m *Manager, js string, enforced []byte)
	}{
		{"java.security edit", func(t *testing.T, m *Manager, js string, enforced []byte) {
			if err := os.WriteFile(js, enforced, 0o640); err != nil {
				t.Fatal(err)
			}
		}},
		{"restrictManagerMinimumTLSProtocol over REST", func(t *testing.T, m *Manager, _ string, _ []byte) {
			// The answer says whom the change cuts off, from the handshakes the Manager recorded.
			var res ops.SettingChange
			if code := call(t, m, "PUT", "/api/settings/"+settings.ManagerMinimumTLS, apiKey(t, m), map[string]string{"value": "TLSv1.2"}, &res); code != http.StatusOK {
				t.Fatalf("PUT setting: %d %+v", code, res)
			}
			cut := map[int][]string{}
			for _, p := range res.ManagerPorts {
				for _, c := range p.CutOff {
					who := cmp.Or(c.Computer, c.UserAgent)
					cut[p.Port] = append(cut[p.Port], c.Address+" "+who+" "+c.Version)
				}
			}
			want := map[int][]string{m.folder.ConsolePort: {"127.0.0.1 Go-http-client/1.1 TLSv1"}, m.folder.HeartbeatPort: {"127.0.0.1 legacy1 (" + legacyGUID(t, m) + ") TLSv1"}}
			if diff := gocmp.Diff(want, cut); diff != "" {
				t.Errorf("cut off (-want +got):\n%s", diff)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := &logEvents{prefixes: []string{"TLS policy applied", "open connections closed"}, ch: make(chan map[string]string, 256)}
			m := startManager(t, func(o *Options) { o.HeartbeatSeconds = 5; o.Logger = slog.New(events) })
			agentPort, consolePort := strconv.Itoa(m.folder.HeartbeatPort), strconv.Itoa(m.folder.ConsolePort)

			// The page's undo first: TLS 1.0 allowed on both ports.
			js := m.folder.Path(install.JavaSecurityFile)
			enforced, _ := os.ReadFile(js)
			if err := os.WriteFile(js, []byte(strings.Replace(string(enforced), "TLSv1, TLSv1.1, ", "", 1)), 0o640); err != nil {
				t.Fatal(err)
			}
			events.await(t, "TLS policy applied", map[string]string{"port": agentPort, "versions": "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3 "})

			agent := activateTestAgent(t, m, "legacy1")
			pool := x509.NewCertPool()
			pool.AddCert(m.CA().Cert)
			legacy := newKeptAlive([]tls.Certificate{agent.cert}, pool)
			agent.http = legacy.http
			for range 2 {
				if code, _, body := agent.beat(t, m, fleetapi.Heartbeat{}); code != http.StatusOK {
					t.Fatalf("TLS 1.0 heartbeat: %d %s", code, body)
				}
			}
			browser := newKeptAlive(nil, nil)
			resp, err := browser.http.Get("https://" + m.ConsoleAddr() + "/healthz")
			if err != nil {
				t.Fatalf("TLS 1.0 console client: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if legacy.dialed() != 1 || browser.dialed() != 1 {
				t.Fatalf("connections were not kept alive: %d agent, %d console dials", legacy.dialed(), browser.dialed())
			}

			start := time.Now()
			tt.enforce(t, m, js, enforced)
			for _, port := range []string{agentPort, consolePort} {
				events.await(t, "open connections closed", map[string]string{"port": port, "closed": "1"})
			}
			for name, k := range map[string]*keptAlive{"agent": legacy, "console": browser} {
				select {
				case <-k.closed:
				case <-time.After(10 * time.Second):
					t.Fatalf("the %s's TLS 1.0 connection is still open after the change", name)
				}
			}
			t.Logf("both TLS 1.0 connections closed %s after the change (poll interval %s)", time.Since(start).Round(time.Millisecond), m.opts.PollInterval)
			// The transport may not have dropped the closed connection from its pool yet (its read loop
			// saw the close a moment ago): the next attempt must be a new handshake.
			legacy.http.CloseIdleConnections()
			b := []byte(`{"seq":99}`)
			_, err = legacy.http.Post("https://"+m.AgentAddr()+fleetapi.PathHeartbeat, "application/json", strings.NewReader(string(b)))
			if err == nil || !isHandshakeRefusal(err) {
				t.Errorf("the next TLS 1.0 heartbeat: err %v, want a refused handshake", err)
			}
			if legacy.dialed() != 2 {
				t.Errorf("the next heartbeat dialed %d times in all, want a second (refused) dial", legacy.dialed())
			}
		})
	}
}

// isHandshakeRefusal reports whether err is a TLS alert or a version mismatch (not a timeout).
func isHandshakeRefusal(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "protocol version") || strings.Contains(s, "tls:") || strings.Contains(s, "remote error")
}

// legacyGUID is the GUID of the computer named legacy1.
func legacyGUID(t *testing.T, m *Manager) string {
	t.Helper()
	c, err := m.Ops().FindComputer(t.Context(), "legacy1")
	if err != nil {
		t.Fatal(err)
	}
	return c.GUID
}
