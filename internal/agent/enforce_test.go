package agent

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/fleetapi"
)

// keptAlive is one kept-alive HTTP/1.1 connection at a fixed TLS version.
type keptAlive struct {
	c *tls.Conn
	r *bufio.Reader
}

func dialKeptAlive(t *testing.T, addr string, cfg *tls.Config) (*keptAlive, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitLong}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return &keptAlive{c: c, r: bufio.NewReader(c)}, nil
}

// get sends a request and reads its whole answer, keeping the connection.
func (k *keptAlive) get(t *testing.T, path string) int {
	t.Helper()
	if _, err := io.WriteString(k.c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	k.c.SetReadDeadline(time.Now().Add(waitLong))
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// closed waits for the server to close the connection; false when it stays open.
func (k *keptAlive) closed(t *testing.T) bool {
	t.Helper()
	k.c.SetReadDeadline(time.Now().Add(waitLong))
	_, err := k.r.ReadByte()
	ne, ok := err.(net.Error)
	return err != nil && !(ok && ne.Timeout())
}

// A pushed policy that raises the minimum of the agent port (4118) and of the relay port (4122) closes
// the TLS 1.0 connections already open on them — the Manager's kept-alive one on 4118 and an agent's on
// 4122 — and logs how many per port; the push itself, over TLS 1.3, is answered; a new TLS 1.0
// handshake then fails on both ports.
func TestPolicyChangeClosesOpenConnections(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	legacy := relayPolicy(1, "TLSv1")
	legacy.Agent.MinVersion = "TLSv1"
	m.SetPolicy(guid, legacy)
	o := Options{RelayListen: "127.0.0.1:0"}
	ev := newPortEvents(&o)
	a, log := startAgent(t, dir, o)
	if r := ev.beat(t); r == nil || !r.Accepted || a.RelayAddr() == "" {
		t.Fatalf("the first heartbeat did not open the relay port: %+v", r)
	}

	tls10 := func(cfg *tls.Config) *tls.Config {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		return cfg
	}
	ports := []struct {
		name, addr, path string
		cfg              func() *tls.Config
	}{
		{"agent port", a.AgentAddr(), fleetapi.PathStatus, func() *tls.Config { return tls10(managerTLS(m, guid, 0, 0)) }},
		{"relay port", a.RelayAddr(), "/", func() *tls.Config { return tls10(relayClientTLS(m, m.IssueCert(t, "reader-1"))) }},
	}
	conns := make([]*keptAlive, len(ports))
	for i, p := range ports {
		k, err := dialKeptAlive(t, p.addr, p.cfg())
		if err != nil {
			t.Fatalf("%s: TLS 1.0 under a TLSv1 minimum: %v", p.name, err)
		}
		k.get(t, p.path)
		conns[i] = k
	}

	enforced := relayPolicy(2, "TLSv1.2")
	if code, body, err := m.PushPolicy(t.Context(), a.AgentAddr(), guid, enforced); code != http.StatusNoContent {
		t.Fatalf("push: %d %s %v", code, body, err)
	}
	for i, p := range ports {
		if !conns[i].closed(t) {
			t.Errorf("%s: the TLS 1.0 connection is still open after the policy change", p.name)
		}
		if _, err := dialKeptAlive(t, p.addr, p.cfg()); err == nil {
			t.Errorf("%s: a new TLS 1.0 handshake succeeded under a TLSv1.2 minimum", p.name)
		}
		_, port, _ := net.SplitHostPort(p.addr)
		if want := "port=" + port + " closed=1"; !strings.Contains(log.String(), want) {
			t.Errorf("%s: the log lacks %q:\n%s", p.name, want, log)
		}
	}
}
