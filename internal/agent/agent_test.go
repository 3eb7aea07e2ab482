package agent

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/fleetapi"
)

// The first heartbeat goes out at once and carries the facts; the policy in the answer is applied and
// stored; "checkin" makes the agent beat again at once, on the same kept-alive connection; a new
// connection resumes the TLS session.
func TestAgentHeartbeatsAndPolicy(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	p := testPolicy(3)
	m.SetPolicy(guid, p)
	conns0 := m.Conns()
	full0, _ := m.Handshakes() // activation's own connection
	a, _ := startAgent(t, dir, Options{})
	if a.GUID() != guid || a.AgentAddr() == "" {
		t.Fatalf("agent %q listens on %q", a.GUID(), a.AgentAddr())
	}
	agenttest.Eventually(t, waitLong, "the policy", func() bool { return a.Policy() != nil && a.Policy().Serial == 3 })
	hb := m.Computer(guid).Heartbeats[0]
	if hb.Seq != 1 || hb.Listen != a.AgentAddr() || hb.AgentVersion != Version || hb.Platform != runtime.GOOS+"/"+runtime.GOARCH ||
		strings.Join(hb.TLSVersions, ",") != "TLSv1.2,TLSv1.3" || hb.PolicyFingerprint != "" || hb.Legacy || hb.Relay != nil {
		t.Errorf("first heartbeat %+v", hb)
	}
	if st := mustState(t, dir); st.Policy == nil || st.Policy.Fingerprint() != p.Fingerprint() || st.Reported == nil || st.Reported.Listen != a.AgentAddr() {
		t.Errorf("state %+v", st)
	}

	m.QueueCommand(guid, "checkin")
	a.CheckInNow() // → heartbeat 2 answers "checkin" → heartbeat 3 at once
	agenttest.Eventually(t, waitLong, "two more heartbeats", func() bool { return len(m.Computer(guid).Heartbeats) >= 3 })
	if hb := m.Computer(guid).Heartbeats[2]; hb.PolicyFingerprint != p.Fingerprint() || hb.Seq != 3 {
		t.Errorf("third heartbeat %+v", hb)
	}
	if n := m.Conns() - conns0; n != 1 {
		t.Errorf("%d connections for 3 heartbeats: keep-alive is not working", n)
	}
	m.CloseClientConnections()
	a.CheckInNow()
	agenttest.Eventually(t, waitLong, "heartbeat 4", func() bool { return len(m.Computer(guid).Heartbeats) >= 4 })
	if full, resumed := m.Handshakes(); full-full0 != 1 || resumed != 1 {
		t.Errorf("handshakes: %d full, %d resumed; want 1 and 1", full, resumed)
	}
	if st := a.Status(); st.GUID != guid || st.PolicySerial != 3 || st.NegotiatedTLS != "TLSv1.3" || st.LastHeartbeat == "" {
		t.Errorf("status %+v", st)
	}
}

// PUT /agent/v1/policy on 4118: applied (204), replay (409), invalid (400), garbage (400), oversized
// (413), and only the Manager's certificate gets in. Refusals leave state.json as it was.
func TestPushPolicy(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	a, _ := startAgent(t, dir, Options{})
	agenttest.Eventually(t, waitLong, "first heartbeat", func() bool { return mustState(t, dir).Seq >= 1 && !mustState(t, dir).LastHeartbeat.IsZero() })
	addr := a.AgentAddr()

	p := testPolicy(10)
	p.PolicyID = "pushed"
	if code, body, err := m.PushPolicy(t.Context(), addr, guid, p); err != nil || code != http.StatusNoContent {
		t.Fatalf("push: %d %s %v", code, body, err)
	}
	if a.Policy().PolicyID != "pushed" || mustState(t, dir).Policy.Serial != 10 {
		t.Fatal("pushed policy not in force")
	}
	before := readFile(t, filepath.Join(dir, StateFile))

	old := testPolicy(9)
	bad := testPolicy(11)
	bad.Direction = "sideways"
	huge := `{"policy_id":"` + strings.Repeat("x", fleetapi.MaxBody) + `"}`
	for _, c := range []struct {
		name string
		body any
		code int
		want string
	}{
		{"replay", old, http.StatusConflict, "below the serial 10"},
		{"invalid", bad, http.StatusBadRequest, "direction"},
		{"garbage", "{not json", http.StatusBadRequest, "not JSON"},
		{"trailing", `{"serial":12} {}`, http.StatusBadRequest, "after the JSON"},
		{"oversized", huge, http.StatusRequestEntityTooLarge, "exceeds"},
	} {
		code, body, err := m.PushPolicy(t.Context(), addr, guid, c.body)
		if err != nil || code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q %v", c.name, code, body, err)
		}
	}
	if after := readFile(t, filepath.Join(dir, StateFile)); string(after) != string(before) {
		t.Errorf("a refused push changed state.json")
	}
	if a.Policy().Serial != 10 {
		t.Errorf("a refused push changed the policy in force")
	}

	// GET status.
	resp, err := m.AgentClient(guid).Get("https://" + addr + fleetapi.PathStatus)
	if err != nil {
		t.Fatal(err)
	}
	var st fleetapi.Status
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.GUID != guid || st.PolicySerial != 10 || st.PolicyFingerprint != p.Fingerprint() || st.Relay {
		t.Errorf("status %+v", st)
	}

	// Not the Manager: another fleet certificate, no certificate, a certificate from another CA.
	other := agenttest.NewManager(t, agenttest.Options{})
	for name, certs := range map[string][]tls.Certificate{
		"agent certificate":  {m.IssueCert(t, "some-agent")},
		"no certificate":     nil,
		"another fleet's CA": {other.Cert},
	} {
		cfg := managerTLS(m, guid, tls.VersionTLS12, tls.VersionTLS13)
		cfg.Certificates = certs
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		req, _ := http.NewRequest(http.MethodPut, "https://"+addr+fleetapi.PathPolicy, strings.NewReader(`{}`))
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: got %s", name, resp.Status)
		}
	}
	if after := readFile(t, filepath.Join(dir, StateFile)); mustState(t, dir).Policy.Serial != 10 || len(after) == 0 {
		t.Error("state changed")
	}
}

// handshake dials addr with cfg and reports the negotiated version or the error.
func handshake(addr string, cfg *tls.Config) (uint16, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// TLS 1.3 clients finish before the server checks their certificate: read to see the verdict.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return 0, err
		}
	}
	return c.ConnectionState().Version, nil
}

// 4118 follows policy.Agent.MinVersion live: after a push of TLSv1.3, a TLS 1.2 client is refused on the
// same listener, without a restart.
func TestAgentPortTLSFollowsPolicyLive(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	a, _ := startAgent(t, dir, Options{})
	addr := a.AgentAddr()
	tls12 := managerTLS(m, guid, tls.VersionTLS12, tls.VersionTLS12)
	if v, err := handshake(addr, tls12); err != nil || v != tls.VersionTLS12 {
		t.Fatalf("TLS 1.2 before: %x %v", v, err)
	}
	p := testPolicy(2)
	p.Agent = fleetapi.TLSSettings{MinVersion: "TLSv1.3", StrongCiphers: true}
	if code, body, err := m.PushPolicy(t.Context(), addr, guid, p); code != http.StatusNoContent {
		t.Fatalf("push: %d %s %v", code, body, err)
	}
	if a.AgentAddr() != addr {
		t.Fatalf("the listener moved: %s → %s", addr, a.AgentAddr())
	}
	if _, err := handshake(addr, tls12); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.2 after TLSv1.3 minimum: %v", err)
	}
	if v, err := handshake(addr, managerTLS(m, guid, tls.VersionTLS12, tls.VersionTLS13)); err != nil || v != tls.VersionTLS13 {
		t.Errorf("TLS 1.3 after: %x %v", v, err)
	}
	// A non-Manager certificate is refused in the handshake itself.
	cfg := managerTLS(m, guid, tls.VersionTLS13, tls.VersionTLS13)
	cfg.Certificates = []tls.Certificate{m.IssueCert(t, "intruder")}
	if _, err := handshake(addr, cfg); err == nil {
		t.Error("an agent certificate got through the 4118 handshake")
	}
}

// Agent-initiated: the agent closes 4118 and reports Listen ""; back to bidirectional, it listens again.
func TestDirectionAgentInitiated(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	a, _ := startAgent(t, dir, Options{})
	addr := a.AgentAddr()
	p := testPolicy(2)
	p.Direction = fleetapi.AgentInitiated
	if code, body, err := m.PushPolicy(t.Context(), addr, guid, p); code != http.StatusNoContent {
		t.Fatalf("push: %d %s %v", code, body, err)
	}
	if a.AgentAddr() != "" {
		t.Error("still listening")
	}
	agenttest.Eventually(t, waitLong, "the port to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	n := len(m.Computer(guid).Heartbeats)
	a.CheckInNow()
	agenttest.Eventually(t, waitLong, "a heartbeat", func() bool { return len(m.Computer(guid).Heartbeats) > n })
	if hb := m.Computer(guid).Heartbeats[n]; hb.Listen != "" {
		t.Errorf("agent-initiated heartbeat reports Listen %q", hb.Listen)
	}
	// The Manager sends bidirectional with the next heartbeat.
	m.SetPolicy(guid, testPolicy(3))
	a.CheckInNow()
	agenttest.Eventually(t, waitLong, "the port to open again", func() bool { return a.AgentAddr() != "" })
}

// dsa_control -m stores a policy; the running agent applies it within StateCheck. dsa_control -r
// resets: the agent closes its port and waits; a new activation brings it back with the new GUID.
func TestRunningAgentFollowsStateFolder(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	a, _ := startAgent(t, dir, Options{})
	agenttest.Eventually(t, waitLong, "first heartbeat", func() bool { return len(m.Computer(guid).Heartbeats) >= 1 })
	p := testPolicy(5)
	p.PolicyID = "from -m"
	m.SetPolicy(guid, p)
	if res, err := CheckIn(t.Context(), dir, CheckInOptions{}); err != nil || !res.PolicyChanged {
		t.Fatalf("%+v %v", res, err)
	}
	agenttest.Eventually(t, waitLong, "the agent to apply the stored policy", func() bool { return a.Policy() != nil && a.Policy().PolicyID == "from -m" })
	if hb := m.Computer(guid).Heartbeats[1]; hb.Listen != a.AgentAddr() || hb.Seq != 2 {
		t.Errorf("-m heartbeat reported %+v", hb)
	}

	removed, err := Reset(t.Context(), dir)
	if err != nil || len(removed) < 4 {
		t.Fatalf("reset: %v %v", removed, err)
	}
	agenttest.Eventually(t, waitLong, "the agent to close its port", func() bool { return a.AgentAddr() == "" && a.GUID() == "" })
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("key survived the reset")
	}
	guid2 := activate(t, m, dir)
	agenttest.Eventually(t, waitLong, "the agent to come back", func() bool { return a.GUID() == guid2 && a.AgentAddr() != "" })
	agenttest.Eventually(t, waitLong, "a heartbeat of the new identity", func() bool { return len(m.Computer(guid2).Heartbeats) >= 1 })
}

// An agent started before activation waits for it.
func TestAgentWaitsForActivation(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	a, lb := startAgent(t, dir, Options{})
	if a.GUID() != "" || a.AgentAddr() != "" || !strings.Contains(lb.String(), "not activated yet") {
		t.Fatalf("unactivated agent: %q %q\n%s", a.GUID(), a.AgentAddr(), lb)
	}
	guid := activate(t, m, dir)
	agenttest.Eventually(t, waitLong, "a heartbeat", func() bool { return len(m.Computer(guid).Heartbeats) >= 1 })
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(t.Context(), Options{}); !errors.Is(err, ErrUsage) {
		t.Errorf("no dir: %v", err)
	}
	if _, err := Start(t.Context(), Options{Dir: t.TempDir(), LegacyMaxTLS: "TLSv1.2"}); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "TLSv1 or TLSv1.1") {
		t.Errorf("legacy TLSv1.2: %v", err)
	}
	// A busy port fails the start.
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	activate(t, m, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	log, _ := testLogger(t)
	if _, err := Start(t.Context(), Options{Dir: dir, Listen: ln.Addr().String(), Logger: log}); err == nil || !strings.Contains(err.Error(), "agent port") {
		t.Errorf("busy port: %v", err)
	}
}

// Seq survives a restart of the agent: the Manager never sees a replay.
func TestSeqSurvivesRestart(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	for round := 1; round <= 3; round++ {
		log, _ := testLogger(t)
		a, err := Start(t.Context(), Options{Dir: dir, Listen: "127.0.0.1:0", Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		agenttest.Eventually(t, waitLong, "a heartbeat", func() bool {
			return mustState(t, dir).Seq == uint64(round) && len(m.Computer(guid).Heartbeats) == round
		})
		a.Close()
	}
	c := m.Computer(guid)
	for i, hb := range c.Heartbeats {
		if hb.Seq != uint64(i+1) {
			t.Errorf("heartbeat %d has seq %d", i, hb.Seq)
		}
	}
}

// A deactivated computer: one clear line, slow retries, and the agent keeps running.
func TestAgentRefusedByManager(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	m.Deactivate(guid, true)
	var results []error
	done := make(chan struct{}, 10)
	a, lb := startAgent(t, dir, Options{OnHeartbeat: func(_ *CheckInResult, err error) { results = append(results, err); done <- struct{}{} }})
	<-done
	if !strings.Contains(lb.String(), "the Manager refused this agent: computer "+guid+" is deactivated") {
		t.Errorf("log:\n%s", lb)
	}
	var me *ManagerError
	if len(results) != 1 || !errors.As(results[0], &me) || me.Status != http.StatusForbidden {
		t.Errorf("results %v", results)
	}
	if a.AgentAddr() == "" {
		t.Error("the agent stopped listening")
	}
}
