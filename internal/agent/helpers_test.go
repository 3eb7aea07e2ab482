package agent

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/fleetapi"
)

// logBuf collects an agent's log; a failing test prints it.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger(t *testing.T) (*slog.Logger, *logBuf) {
	lb := &logBuf{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", lb)
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

var tokenSeq atomic.Int64

// activate activates a fresh state folder against m, pinning its CA's fingerprint.
func activate(t *testing.T, m *agenttest.Manager, dir string) string {
	t.Helper()
	tok := fmt.Sprintf("token-%d", tokenSeq.Add(1))
	m.AddToken(tok, 1)
	act, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: m.URL(), Token: tok, Fingerprint: m.Fingerprint(), Hostname: "host-" + filepath.Base(dir)})
	if err != nil {
		t.Fatal(err)
	}
	return act.GUID
}

// startAgent runs an agent on loopback until the test ends.
func startAgent(t *testing.T, dir string, o Options) (*Agent, *logBuf) {
	t.Helper()
	log, lb := testLogger(t)
	o.Dir, o.Logger = dir, log
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.StateCheck == 0 {
		o.StateCheck = 50 * time.Millisecond
	}
	a, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, lb
}

func testPolicy(serial int64) *fleetapi.Policy {
	return &fleetapi.Policy{Serial: serial, PolicyID: "base", Direction: fleetapi.Bidirectional, HeartbeatSeconds: 600,
		Agent: fleetapi.TLSSettings{MinVersion: "TLSv1.2"}, Relays: []string{}, Bundles: []fleetapi.Bundle{}}
}

func mustState(t *testing.T, dir string) *State {
	t.Helper()
	st, err := LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// managerTLS is a client configuration that presents the fake Manager's certificate to an agent's 4118,
// speaking only the versions given.
func managerTLS(m *agenttest.Manager, guid string, minV, maxV uint16) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.Cert)
	return &tls.Config{RootCAs: pool, ServerName: guid, Certificates: []tls.Certificate{m.Cert}, MinVersion: minV, MaxVersion: maxV}
}

const waitLong = 10 * time.Second
