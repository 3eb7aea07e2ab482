package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/testtarget"
)

// deadAddr is a loopback address nobody listens on.
func deadAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", testtarget.FreePort(t)) }

// failingNode is another Manager node of m's fleet (its own certificate from the fleet CA) whose agent
// channel answers every heartbeat 503.
func failingNode(t *testing.T, m *agenttest.Manager) string {
	t.Helper()
	cert, err := m.CA.LoadOrCreateServer(t.TempDir(), pki.ECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"the database is unavailable"}`, http.StatusServiceUnavailable)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.Cert)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// useNodes makes the agent in dir use first, with managers as its policy's list.
func useNodes(t *testing.T, dir, first string, managers ...string) {
	t.Helper()
	st := mustState(t, dir)
	st.Manager = first
	st.Policy = testPolicy(1)
	st.Policy.Managers = managers
	if err := st.save(dir); err != nil {
		t.Fatal(err)
	}
}

// An agent whose Manager node does not answer (nobody listens, or it answers 5xx) sends the heartbeat
// to the next node its policy lists, keeps that one, and goes straight to it from then on.
func TestHeartbeatFailsOver(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	tests := []struct {
		name string
		bad  func(t *testing.T) string
	}{
		{"nobody listens", deadAddr},
		{"the node answers 503", func(t *testing.T) string { return failingNode(t, m) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "a")
			guid := activate(t, m, dir)
			bad := tt.bad(t)
			useNodes(t, dir, bad, bad, m.Addr)
			res, err := CheckIn(t.Context(), dir, CheckInOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Accepted || res.Manager != m.Addr || res.FailedOver != bad || len(res.Unreachable) != 1 || !strings.Contains(res.Unreachable[0], bad) {
				t.Fatalf("result %+v", res)
			}
			if st := mustState(t, dir); st.Manager != m.Addr || st.LastError != "" {
				t.Errorf("state: manager %q, last error %q; want %q and none", st.Manager, st.LastError, m.Addr)
			}
			res, err = CheckIn(t.Context(), dir, CheckInOptions{})
			if err != nil || res.FailedOver != "" || len(res.Unreachable) != 0 {
				t.Fatalf("the next heartbeat tried the bad node again: %+v %v", res, err)
			}
			// Each try had its own Seq: the Manager saw 2 (1 went to the bad node) and 3.
			if hbs := m.Computer(guid).Heartbeats; len(hbs) != 2 || hbs[0].Seq != 2 || hbs[1].Seq != 3 {
				t.Errorf("the Manager saw %d heartbeats: %+v", len(hbs), hbs)
			}
		})
	}
}

// With every node unreachable, the heartbeat fails with the last node's error, and the node in use
// stays the same.
func TestHeartbeatAllNodesDown(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := filepath.Join(t.TempDir(), "a")
	activate(t, m, dir)
	a, b := deadAddr(t), deadAddr(t)
	useNodes(t, dir, a, a, b)
	_, err := CheckIn(t.Context(), dir, CheckInOptions{})
	if err == nil || !strings.Contains(err.Error(), "heartbeat to "+b) {
		t.Fatalf("error %v, want the last node's", err)
	}
	if st := mustState(t, dir); st.Manager != a {
		t.Errorf("manager %q, want %q kept", st.Manager, a)
	}
}

// The running agent: with a dead node first in its list it keeps heartbeating through the live one,
// and its log says which node it uses.
func TestRunningAgentFailsOver(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := filepath.Join(t.TempDir(), "a")
	activate(t, m, dir)
	dead := deadAddr(t)
	useNodes(t, dir, dead, dead, m.Addr)
	beats := make(chan *CheckInResult, 16)
	_, lb := startAgent(t, dir, Options{OnHeartbeat: func(r *CheckInResult, err error) {
		if err == nil && r != nil && r.Accepted {
			select {
			case beats <- r:
			default:
			}
		}
	}})
	var got *CheckInResult
	select {
	case got = <-beats:
	case <-t.Context().Done():
		t.Fatal("no heartbeat accepted")
	}
	if got.Manager != m.Addr || got.FailedOver != dead {
		t.Fatalf("heartbeat %+v", got)
	}
	log := lb.String()
	for _, want := range []string{"this agent uses another node now", "manager=" + m.Addr, "previous=" + dead, `msg="heartbeat accepted" manager=` + m.Addr} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}
