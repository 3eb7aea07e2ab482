package agent

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlspolicy"
)

// relayGet fetches a bundle from a relay as an agent does (fleet CA, no host name).
func relayGet(t *testing.T, m *agenttest.Manager, addr, sha string) (int, []byte) {
	t.Helper()
	return relayGetAs(t, m, addr, sha, []tls.Certificate{m.IssueCert(t, "test-reader")})
}

// relayGetAs downloads from a relay presenting the given client certificates (none: anonymous).
func relayGetAs(t *testing.T, m *agenttest.Manager, addr, sha string, certs []tls.Certificate) (int, []byte) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.Cert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, VerifyConnection: verifyFleetPeer(pool, x509.ExtKeyUsageServerAuth), MinVersion: tls.VersionTLS12,
		Certificates: certs,
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + fleetapi.PathRelayBundles + sha)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func relayPolicy(serial int64, minTLS string, bundles ...fleetapi.Bundle) *fleetapi.Policy {
	p := testPolicy(serial)
	p.PolicyID = "relays"
	p.Relay = &fleetapi.RelayPolicy{Port: tlspolicy.PortRelay, Group: "g1", TLS: fleetapi.TLSSettings{MinVersion: minTLS}}
	p.Bundles = bundles
	return p
}

// startRelay activates and starts a relay holding bundles mirrored from m.
func startRelay(t *testing.T, m *agenttest.Manager, bundles ...fleetapi.Bundle) (*Agent, string, string) {
	t.Helper()
	dir := t.TempDir()
	guid := activate(t, m, dir)
	m.SetPolicy(guid, relayPolicy(1, "TLSv1.2", bundles...))
	a, _ := startAgent(t, dir, Options{RelayListen: "127.0.0.1:0"})
	agenttest.Eventually(t, waitLong, "the relay port", func() bool { return a.RelayAddr() != "" })
	return a, dir, guid
}

// A relay mirrors the policy's bundles from the Manager, keeping only those whose SHA-256 and size
// match, serves them, refuses a copy corrupted on disk (and mirrors it again), and reports what it holds.
func TestRelayMirrorsAndServes(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	good := m.AddBundle("agent-update-1.1.zip", bytes.Repeat([]byte("good bundle "), 5000))
	bad := m.AddBundle("tampered.zip", []byte("what the policy promised"))
	m.ServeBundleAs(bad.SHA256, []byte("what the Manager's disk holds")) // same size class, other bytes
	a, dir, guid := startRelay(t, m, good, bad)
	goodPath := filepath.Join(dir, BundlesDir, good.SHA256)
	agenttest.Eventually(t, waitLong, "the mirrored bundle", func() bool { _, err := os.Stat(goodPath); return err == nil })
	agenttest.Eventually(t, waitLong, "an attempt at the bad bundle", func() bool { return m.BundleGets(bad.SHA256) >= 1 })
	if _, err := os.Stat(filepath.Join(dir, BundlesDir, bad.SHA256)); err == nil {
		t.Error("the relay kept a bundle whose SHA-256 does not match")
	}
	if got := localBundles(dir); len(got) != 1 || got[0] != good.SHA256 {
		t.Errorf("bundles held: %v", got)
	}
	t.Cleanup(func() {
		a.Close() // waits for the bundle sync
		if ents, _ := os.ReadDir(filepath.Join(dir, BundlesDir)); len(ents) != 1 {
			t.Errorf("bundles folder holds %d entries after the relay stopped (temporary files left?)", len(ents))
		}
	})
	addr := a.RelayAddr()
	if code, body := relayGet(t, m, addr, good.SHA256); code != http.StatusOK || !bytes.Equal(body, bytes.Repeat([]byte("good bundle "), 5000)) {
		t.Errorf("GET good: %d, %d bytes", code, len(body))
	}
	// Bundles are for the fleet's computers: anonymous clients and deactivated computers are refused.
	if code, _ := relayGetAs(t, m, addr, good.SHA256, nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous GET: %d, want 401", code)
	}
	p := testPolicy(2)
	p.Relay = &fleetapi.RelayPolicy{Port: 4122, TLS: fleetapi.TLSSettings{MinVersion: "TLSv1.2"}, Denied: []string{"gone-agent"}}
	p.Bundles = []fleetapi.Bundle{good, bad}
	m.SetPolicy(guid, p)
	a.CheckInNow()
	agenttest.Eventually(t, waitLong, "the deny list applied", func() bool {
		code, _ := relayGetAs(t, m, addr, good.SHA256, []tls.Certificate{m.IssueCert(t, "gone-agent")})
		return code == http.StatusForbidden
	})
	if code, _ := relayGet(t, m, addr, bad.SHA256); code != http.StatusNotFound {
		t.Errorf("GET bad: %d", code)
	}
	if code, _ := relayGet(t, m, addr, "../state.json"); code != http.StatusNotFound {
		t.Errorf("GET ../state.json: %d", code)
	}
	// The heartbeat reports the relay.
	a.CheckInNow()
	agenttest.Eventually(t, waitLong, "a relay heartbeat", func() bool {
		hbs := m.Computer(guid).Heartbeats
		r := hbs[len(hbs)-1].Relay
		return r != nil && r.Listen == addr && slices.Equal(r.Bundles, []string{good.SHA256})
	})
	if st := a.Status(); !st.Relay {
		t.Error("status says no relay")
	}

	// Corruption on disk: refused, removed, mirrored again.
	gets := m.BundleGets(good.SHA256)
	if err := os.WriteFile(goodPath, []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := relayGet(t, m, addr, good.SHA256); code != http.StatusNotFound || !strings.Contains(string(body), "corrupted") {
		t.Errorf("GET corrupted: %d %s", code, body)
	}
	agenttest.Eventually(t, waitLong, "the bundle mirrored again", func() bool {
		b, err := os.ReadFile(goodPath)
		return err == nil && len(b) == int(good.Size) && m.BundleGets(good.SHA256) > gets
	})
	if code, _ := relayGet(t, m, addr, good.SHA256); code != http.StatusOK {
		t.Errorf("GET after re-mirror: %d", code)
	}
}

func sclient(t *testing.T, addr string, args ...string) string {
	t.Helper()
	proto, _, out, err := testtarget.SClient(t.Context(), addr, args...)
	if err != nil {
		t.Fatalf("s_client: %v\n%s", err, out)
	}
	return proto
}

// The relay port follows policy.Relay.TLS live (same listener, no restart), checked with openssl
// s_client; turning the relay role off closes the port.
func TestRelayTLSFollowsPolicyLive(t *testing.T) {
	testtarget.RequireTool(t, "openssl")
	m := agenttest.NewManager(t, agenttest.Options{})
	a, _, guid := startRelay(t, m)
	addr := a.RelayAddr()
	legacy := []string{"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"}
	if p := sclient(t, addr, "-tls1_2"); p != testtarget.TLSv12 {
		t.Errorf("-tls1_2 at TLSv1.2 minimum: %q", p)
	}
	if p := sclient(t, addr, legacy...); p != "" {
		t.Errorf("-tls1_1 at TLSv1.2 minimum: %q", p)
	}
	push := func(p *fleetapi.Policy) {
		t.Helper()
		if code, body, err := m.PushPolicy(t.Context(), a.AgentAddr(), guid, p); code != http.StatusNoContent {
			t.Fatalf("push: %d %s %v", code, body, err)
		}
		if a.RelayAddr() != addr {
			t.Fatalf("the relay port moved: %s → %s", addr, a.RelayAddr())
		}
	}
	push(relayPolicy(2, "TLSv1.1"))
	if p := sclient(t, addr, legacy...); p != testtarget.TLSv11 {
		t.Errorf("-tls1_1 at TLSv1.1 minimum: %q", p)
	}
	push(relayPolicy(3, "TLSv1.3"))
	if p := sclient(t, addr, "-tls1_2"); p != "" {
		t.Errorf("-tls1_2 at TLSv1.3 minimum: %q", p)
	}
	if p := sclient(t, addr, "-tls1_3"); p != testtarget.TLSv13 {
		t.Errorf("-tls1_3 at TLSv1.3 minimum: %q", p)
	}
	p := testPolicy(4) // no relay role
	if code, body, err := m.PushPolicy(t.Context(), a.AgentAddr(), guid, p); code != http.StatusNoContent {
		t.Fatalf("push: %d %s %v", code, body, err)
	}
	if a.RelayAddr() != "" {
		t.Error("relay port still open in the agent's view")
	}
	agenttest.Eventually(t, waitLong, "the relay port to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// fakeRelay serves fixed bytes for every bundle with the given certificate.
func fakeRelay(t *testing.T, cert tls.Certificate, body []byte) (string, *atomic.Int64) {
	t.Helper()
	hits := new(atomic.Int64)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(body)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), hits
}

// An agent downloads bundles from its relays in the policy's order, failing over past a relay that is
// down, one whose certificate is not from the fleet CA and one that sends corrupted bytes.
func TestAgentDownloadsFromRelaysWithFailover(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	content := []byte("the new agent build")
	b := m.AddBundle("agent-1.1.zip", content)
	relay, _, _ := startRelay(t, m, b)
	agenttest.Eventually(t, waitLong, "the relay's copy", func() bool { code, _ := relayGet(t, m, relay.RelayAddr(), b.SHA256); return code == http.StatusOK })

	down := net.JoinHostPort("127.0.0.1", "1") // nothing listens on port 1
	other := agenttest.NewManager(t, agenttest.Options{})
	stranger, strangerHits := fakeRelay(t, other.IssueCert(t, "stranger"), content)
	corrupt, corruptHits := fakeRelay(t, m.IssueCert(t, "corrupt-relay"), []byte("the old agent build"))
	// A fleet member posing as another relay: its certificate is from the fleet CA but names another GUID.
	impostor, impostorHits := fakeRelay(t, m.IssueCert(t, "impostor"), content)

	dir := t.TempDir()
	guid := activate(t, m, dir)
	p := testPolicy(1)
	p.Relays = []string{down, stranger, impostor, corrupt, relay.RelayAddr()}
	p.RelayIDs = map[string]string{impostor: "relay-that-is-not-the-impostor"}
	p.Bundles = []fleetapi.Bundle{b}
	m.SetPolicy(guid, p)
	_, lb := startAgent(t, dir, Options{})
	path := filepath.Join(dir, BundlesDir, b.SHA256)
	agenttest.Eventually(t, waitLong, "the downloaded bundle", func() bool { _, err := os.Stat(path); return err == nil })
	if got := readFile(t, path); !bytes.Equal(got, content) {
		t.Errorf("bundle content %q", got)
	}
	if strangerHits.Load() != 0 {
		t.Error("the agent sent a request to a relay outside the fleet")
	}
	if impostorHits.Load() != 0 {
		t.Error("the agent sent a request to a fleet member whose certificate does not name the policy's relay")
	}
	if corruptHits.Load() != 1 {
		t.Errorf("corrupt relay hits %d", corruptHits.Load())
	}
	if m.BundleGets(b.SHA256) != 1 {
		t.Errorf("the Manager served the bundle %d times; only the relay should mirror it", m.BundleGets(b.SHA256))
	}
	logged := lb.String()
	if !strings.Contains(logged, "bundle downloaded from a relay") || !strings.Contains(logged, relay.RelayAddr()) {
		t.Errorf("log:\n%s", logged)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, BundlesDir)); len(ents) != 1 {
		t.Errorf("%d entries in bundles/", len(ents))
	}
}

// Every relay fails: the agent logs it and tries again after the next heartbeat.
func TestAgentRetriesBundlesAtNextHeartbeat(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	content := []byte("bundle")
	b := m.AddBundle("x.zip", content)
	dir := t.TempDir()
	guid := activate(t, m, dir)
	corrupt, hits := fakeRelay(t, m.IssueCert(t, "r"), []byte("nope!!"))
	p := testPolicy(1)
	p.Relays = []string{corrupt}
	p.Bundles = []fleetapi.Bundle{b}
	m.SetPolicy(guid, p)
	a, lb := startAgent(t, dir, Options{})
	agenttest.Eventually(t, waitLong, "the failure log", func() bool { return strings.Contains(lb.String(), "every relay failed") })
	n := hits.Load()
	a.CheckInNow()
	agenttest.Eventually(t, waitLong, "a retry", func() bool { return hits.Load() > n })
}

// Garbage on the relay port: wrong methods, bad names and plaintext change nothing and are refused.
func TestRelayRefusesGarbage(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	b := m.AddBundle("b.zip", []byte("bundle"))
	relay, dir, _ := startRelay(t, m, b)
	agenttest.Eventually(t, waitLong, "the relay's copy", func() bool { code, _ := relayGet(t, m, relay.RelayAddr(), b.SHA256); return code == http.StatusOK })
	before := localBundles(dir)
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.Cert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
		Certificates: []tls.Certificate{m.IssueCert(t, "reader")}, MinVersion: tls.VersionTLS12}}}
	for _, tc := range []struct {
		method, path string
		body         io.Reader
		want         int
	}{
		{"POST", fleetapi.PathRelayBundles + b.SHA256, strings.NewReader(strings.Repeat("x", 1<<20)), http.StatusMethodNotAllowed},
		{"PUT", fleetapi.PathRelayBundles + b.SHA256, strings.NewReader("overwrite"), http.StatusMethodNotAllowed},
		{"GET", fleetapi.PathRelayBundles + "../state.json", nil, http.StatusNotFound},
		{"GET", fleetapi.PathRelayBundles + strings.Repeat("a", 64), nil, http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tc.method, "https://"+relay.RelayAddr()+tc.path, tc.body)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	// Plaintext on the TLS port.
	if conn, err := net.Dial("tcp", relay.RelayAddr()); err == nil {
		conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, conn)
		conn.Close()
	}
	if after := localBundles(dir); !slices.Equal(before, after) {
		t.Errorf("bundles changed: %v → %v", before, after)
	}
	if code, _ := relayGet(t, m, relay.RelayAddr(), b.SHA256); code != http.StatusOK {
		t.Errorf("the relay stopped serving after garbage: %d", code)
	}
}
