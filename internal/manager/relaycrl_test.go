package manager

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"tlsfleet/internal/agent"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

// newLogEvents is a logEvents handler (enforce_test.go) for the messages a test waits for.
func newLogEvents(msgs ...string) *logEvents {
	return &logEvents{prefixes: msgs, ch: make(chan map[string]string, 256)}
}

// waitLog waits for a log message.
func waitLog(t *testing.T, ev *logEvents, msg string) {
	t.Helper()
	ev.await(t, msg, nil)
}

// relayBundleGet asks the relay for a bundle with an agent's certificate; err is a refused handshake.
func relayBundleGet(c *http.Client, relayAddr string) (int, error) {
	resp, err := c.Get("https://" + relayAddr + fleetapi.PathRelayBundles + "0000000000000000000000000000000000000000000000000000000000000000")
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body) // read to the end: the connection stays open for the next request
	resp.Body.Close()
	return resp.StatusCode, nil
}

// With automaticallySendPolicy=false no policy reaches the relay after a deactivation, yet the relay
// refuses the deactivated computer at once: the Manager pushes the new CRL to the relay's 4118, and
// 4122 refuses the held certificate on a kept-alive connection (403) and in the handshake of a new one.
// Reactivation lifts the hold the same way.
func TestDeactivationReachesRelays(t *testing.T) {
	ev := newLogEvents("CRL pushed to a relay")
	m := startManager(t, func(o *Options) { o.Logger = slog.New(ev) })
	victim := activateTestAgent(t, m, "web1")
	relay := startTestRelay(t, m)
	if _, err := m.Ops().ChangeSetting(t.Context(), "test", settings.AutoSendPolicy, "false"); err != nil {
		t.Fatal(err)
	}
	client := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, Certificates: []tls.Certificate{victim.cert}, ClientSessionCache: tls.NewLRUClientSessionCache(4)}}}
	}
	kept := client()
	if code, err := relayBundleGet(kept, relay.RelayAddr()); code != http.StatusNotFound {
		t.Fatalf("before deactivation the relay answered %d %v, want 404 (no such bundle, but served)", code, err)
	}
	policyBefore := relay.Policy().Fingerprint()

	if _, err := m.Ops().SetDeactivated(t.Context(), victim.guid, true); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ev, "CRL pushed to a relay")
	if code, err := relayBundleGet(kept, relay.RelayAddr()); code != http.StatusForbidden {
		t.Errorf("after deactivation, on the kept-alive connection: %d %v, want 403", code, err)
	}
	if code, err := relayBundleGet(client(), relay.RelayAddr()); err == nil {
		t.Errorf("after deactivation, on a new connection: %d, want a refused handshake", code)
	}
	if p := relay.Policy(); p.Fingerprint() != policyBefore || slices.Contains(p.Relay.Denied, victim.guid) {
		t.Errorf("a policy reached the relay although automaticallySendPolicy=false (denied %v)", p.Relay.Denied)
	}

	if _, err := m.Ops().SetDeactivated(t.Context(), victim.guid, false); err != nil {
		t.Fatal(err)
	}
	waitLog(t, ev, "CRL pushed to a relay")
	if code, err := relayBundleGet(client(), relay.RelayAddr()); code != http.StatusNotFound {
		t.Errorf("after reactivation: %d %v, want 404 (served again)", code, err)
	}
}

// startTestRelay activates and starts a relay on loopback, and waits until the Manager knows its 4118.
func startTestRelay(t *testing.T, m *Manager) *agent.Agent {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "relay")
	act, err := agent.Activate(t.Context(), agent.ActivateOptions{Dir: dir, URL: "dsm://" + m.AgentAddr() + "/", Token: token(t, m, 1, time.Now().Add(time.Hour)),
		Fingerprint: m.CA().Fingerprint(), Hostname: "relay1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Ops().SetRelay(t.Context(), act.GUID, true); err != nil {
		t.Fatal(err)
	}
	beats := make(chan *agent.CheckInResult, 16)
	relay, err := agent.Start(t.Context(), agent.Options{Dir: dir, Listen: "127.0.0.1:0", RelayListen: "127.0.0.1:0", StateCheck: time.Hour,
		Logger: slog.New(slog.DiscardHandler), OnHeartbeat: func(r *agent.CheckInResult, _ error) { beats <- r }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	select {
	case r := <-beats:
		if r == nil || !r.Accepted || relay.RelayAddr() == "" {
			t.Fatalf("the first heartbeat did not make the agent a relay: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat")
	}
	// The Manager learns the relay's 4118 address from that heartbeat.
	m.flushCheckIns(t.Context())
	m.syncFleet(t.Context())
	return relay
}

// A relay the Manager polls (manager-initiated: it sends no heartbeat whose answer would name a newer
// CRL) and that holds an older CRL than the Manager's, a push it missed, gets the current one at the poll.
func TestPolledRelayCatchesUpOnCRL(t *testing.T) {
	ev := newLogEvents("CRL pushed to a relay", "agent call failed", "relay refused", "agent status")
	m := startManager(t, func(o *Options) { o.Logger = slog.New(ev) })
	victim := activateTestAgent(t, m, "web1")
	relay := startTestRelay(t, m)
	// Deactivated in the store only, and the CRL signed with no push: as if the push had been missed.
	if err := m.db.(*store.DB).SetDeactivated(t.Context(), victim.guid, true); err != nil {
		t.Fatal(err)
	}
	if _, err := m.refreshCRL(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	// The relay's policy push (its role) may still run: the poll is queued once that job is done.
	deadline := time.Now().Add(10 * time.Second)
	for !m.pusher.enqueue(agentJob{kind: jobPoll, guid: relay.GUID(), addr: relay.AgentAddr()}) {
		if time.Now().After(deadline) {
			t.Fatalf("the poll of %s was never queued: another job for it kept running", relay.GUID())
		}
		runtime.Gosched()
	}
	waitLog(t, ev, "CRL pushed to a relay")
	if code, err := relayBundleGet(&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{victim.cert}}}}, relay.RelayAddr()); err == nil {
		t.Errorf("after the poll, the relay answered the deactivated computer %d; want a refused handshake", code)
	}
}
