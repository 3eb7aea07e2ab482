package manager

import (
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"tlsfleet/internal/agent"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

// startRealAgent activates an agent in a fresh folder and starts it with clock; it returns the agent,
// its folder and a channel of its heartbeats.
func startRealAgent(t *testing.T, m *Manager, host string, clock func() time.Time) (*agent.Agent, string, chan *agent.CheckInResult) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), host)
	if _, err := agent.Activate(t.Context(), agent.ActivateOptions{Dir: dir, URL: "dsm://" + m.AgentAddr() + "/", Token: token(t, m, 1, time.Now().Add(time.Hour)),
		Fingerprint: m.CA().Fingerprint(), Hostname: host}); err != nil {
		t.Fatal(err)
	}
	beats := make(chan *agent.CheckInResult, 16)
	a, err := agent.Start(t.Context(), agent.Options{Dir: dir, Listen: "127.0.0.1:0", StateCheck: time.Hour, Clock: clock,
		Logger: slog.New(slog.DiscardHandler), OnHeartbeat: func(r *agent.CheckInResult, _ error) { beats <- r }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, dir, beats
}

func nextBeat(t *testing.T, beats chan *agent.CheckInResult) *agent.CheckInResult {
	t.Helper()
	select {
	case r := <-beats:
		if r == nil || !r.Accepted {
			t.Fatalf("heartbeat not accepted: %+v", r)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat within 10 s")
		return nil
	}
}

func certSerialIn(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, agent.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.Text(16)
}

// The agent renews its certificate once its clock passes two thirds of the lifetime (a year: 243 days),
// not before; its first heartbeat with the new certificate makes the Manager revoke the old one.
func TestAgentRenewsAtTwoThirds(t *testing.T) {
	m := startManager(t, nil)
	tests := []struct {
		name    string
		ahead   time.Duration
		renewed bool
	}{
		{"200 days on", 200 * 24 * time.Hour, false},
		{"250 days on", 250 * 24 * time.Hour, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The clock is read once per renewal check: the first check sees the future, later ones the
			// present (the renewed certificate is then fresh).
			var ahead atomic.Int64
			ahead.Store(int64(tt.ahead))
			clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Swap(0))) }
			a, dir, beats := startRealAgent(t, m, "web"+itoa(i), clock)
			guid := a.GUID()
			nextBeat(t, beats)
			c, err := m.db.(*store.DB).FindComputer(t.Context(), guid)
			if err != nil {
				t.Fatal(err)
			}
			certs, _ := m.db.(*store.DB).CertSerials(t.Context(), guid)
			onDisk := certSerialIn(t, dir)
			if !tt.renewed {
				if len(certs) != 1 || c.CertSerial != onDisk || c.CertPrevSerial != "" {
					t.Errorf("renewed too early: %d certificates %+v, computer %q prev %q, on disk %q", len(certs), certs, c.CertSerial, c.CertPrevSerial, onDisk)
				}
				return
			}
			if len(certs) != 2 || c.CertSerial != onDisk || c.CertSerial == certs[0].Serial || c.CertPrevSerial != "" {
				t.Fatalf("want a renewal in use: certificates %+v, computer %q prev %q, on disk %q", certs, c.CertSerial, c.CertPrevSerial, onDisk)
			}
			if certs[0].Reason != pki.ReasonSuperseded || certs[0].RevokedAt == "" {
				t.Errorf("the old certificate after the first heartbeat with the new one: %+v, want superseded", certs[0])
			}
			for _, f := range []string{agent.KeyFile + ".next", agent.CertFile + ".next"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s left behind", f)
				}
			}
			a.CheckInNow()
			nextBeat(t, beats) // and it goes on heartbeating with the new certificate, without renewing again
			if again, _ := m.db.(*store.DB).CertSerials(t.Context(), guid); len(again) != 2 {
				t.Errorf("renewed again: %+v", again)
			}
		})
	}
}

// An agent fetches the CRL from 4120 when a heartbeat answer names a newer number, and keeps it.
func TestAgentFetchesCRLOnHeartbeat(t *testing.T) {
	m := startManager(t, nil)
	a, dir, beats := startRealAgent(t, m, "web1", nil)
	nextBeat(t, beats)
	victim := activateTestAgent(t, m, "web2")
	if _, err := m.Ops().SetDeactivated(t.Context(), victim.guid, true); err != nil {
		t.Fatal(err)
	}
	a.CheckInNow()
	if r := nextBeat(t, beats); r.Response.CRLNumber != m.currentCRL().Number {
		t.Errorf("heartbeat answer names CRL %d, want %d", r.Response.CRLNumber, m.currentCRL().Number)
	}
	der, err := os.ReadFile(filepath.Join(dir, agent.CRLFile))
	if err != nil {
		t.Fatalf("no CRL stored after the heartbeat: %v", err)
	}
	crl, err := pki.ParseCRL(der, m.CA().Cert)
	if err != nil || crl.Number != m.currentCRL().Number || crl.Check(leafOf(t, victim.cert)) == nil {
		t.Errorf("stored CRL: %v, number %v, want %d listing the deactivated computer", err, crl, m.currentCRL().Number)
	}
}

// A manager-initiated agent sends no heartbeats: it renews all the same, and the Manager's poll of its
// port 4118, where it presents the new certificate, confirms the renewal.
func TestManagerInitiatedAgentRenews(t *testing.T) {
	ev := newLogEvents("renewed certificate in use: the previous one is revoked")
	m := startManager(t, func(o *Options) { o.HeartbeatSeconds = 1; o.Logger = slog.New(ev) })
	if _, err := m.Ops().ChangeSetting(t.Context(), "test", settings.Direction, fleetapi.ManagerInitiated); err != nil {
		t.Fatal(err)
	}
	var ahead atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Swap(0))) }
	a, _, beats := startRealAgent(t, m, "quiet1", clock)
	if p := nextBeat(t, beats).Policy; p == nil || p.Direction != fleetapi.ManagerInitiated {
		t.Fatalf("the first heartbeat brought %+v, want a manager-initiated policy", p)
	}
	ahead.Store(int64(250 * 24 * time.Hour))
	a.CheckInNow()
	waitLog(t, ev, "renewed certificate in use: the previous one is revoked")
	certs, _ := m.db.(*store.DB).CertSerials(t.Context(), a.GUID())
	if len(certs) != 2 || certs[0].Reason != pki.ReasonSuperseded {
		t.Errorf("certificates after the poll: %+v, want the first superseded", certs)
	}
}
