package agent

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/tlspolicy"
)

// The legacy simulator against a Manager that accepts TLS 1.2 and newer: one clear line, and every line
// of its log says it is the simulator.
func TestLegacySimulatorRefused(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	_, lb := startAgent(t, dir, Options{LegacyMaxTLS: "TLSv1"})
	const want = "legacy simulator: the Manager refused TLS 1.0 (alert protocol version): it accepts only TLSv1.2 and newer"
	agenttest.Eventually(t, waitLong, "the refusal line", func() bool { return strings.Contains(lb.String(), want) })
	if n := len(m.Computer(guid).Heartbeats); n != 0 {
		t.Errorf("the Manager accepted %d legacy heartbeats", n)
	}
	for _, line := range strings.Split(strings.TrimSpace(lb.String()), "\n") {
		if !strings.Contains(line, "legacy simulator") {
			t.Errorf("log line without \"legacy simulator\": %s", line)
		}
	}
	if st := mustState(t, dir); !strings.Contains(st.LastError, "protocol version") {
		t.Errorf("last error %q", st.LastError)
	}
	// dsa_control -m after the simulator ran reports the same explanation (its last report said legacy —
	// here it never got through, so -m speaks modern TLS and succeeds).
	if _, err := CheckIn(t.Context(), dir, CheckInOptions{}); err != nil {
		t.Errorf("modern check-in: %v", err)
	}
}

// The legacy simulator against a Manager that still accepts TLS 1.0: it reports the old version, the
// legacy flag and TLS 1.0 only, over TLS 1.0.
func TestLegacySimulatorAccepted(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{MinVersion: tls.VersionTLS10})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	startAgent(t, dir, Options{LegacyMaxTLS: "TLSv1.1", ReportVersion: "9.6.0"})
	agenttest.Eventually(t, waitLong, "a legacy heartbeat, recorded", func() bool { return len(m.Computer(guid).Heartbeats) >= 1 && mustState(t, dir).Reported != nil })
	c := m.Computer(guid)
	hb := c.Heartbeats[0]
	if !hb.Legacy || hb.AgentVersion != "9.6.0" || strings.Join(hb.TLSVersions, ",") != "TLSv1,TLSv1.1" || c.Negotiated[0] != tls.VersionTLS11 {
		t.Errorf("heartbeat %+v over %x", hb, c.Negotiated[0])
	}
	if st := mustState(t, dir); st.NegotiatedTLS != "TLSv1.1" || st.Reported == nil || !st.Reported.Legacy {
		t.Errorf("state %+v", st)
	}
	// dsa_control -m keeps speaking as the simulator did.
	res, err := CheckIn(t.Context(), dir, CheckInOptions{})
	if err != nil || res.TLSVersion != "TLSv1.1" {
		t.Errorf("-m: %+v %v", res, err)
	}
}

func TestExplainRefusal(t *testing.T) {
	if got := ExplainRefusal("the server", tlspolicy.TLSv1_1, errors.New("EOF"), 0); got != "" {
		t.Errorf("not a refusal: %q", got)
	}
	refused := &net.OpError{Op: "remote error", Err: tls.AlertError(70)}
	for _, tt := range []struct {
		lowest tlspolicy.Version
		want   string
	}{
		// A relay at TLSv1.2 once "accepted only versions newer than TLSv1".
		{tlspolicy.TLSv1_2, "legacy simulator: the relay r:4122 refused TLS 1.0 (alert protocol version): it accepts only TLSv1.2 and newer"},
		{0, "legacy simulator: the relay r:4122 refused TLS 1.0 (alert protocol version): it accepts no version up to TLSv1"},
	} {
		if got := ExplainRefusal("the relay r:4122", tlspolicy.TLSv1, refused, tt.lowest); got != tt.want {
			t.Errorf("ExplainRefusal(lowest %v) = %q, want %q", tt.lowest, got, tt.want)
		}
	}
	v, err := ParseLegacyMax("tls1_1", false)
	if err != nil || v != tlspolicy.TLSv1_1 {
		t.Errorf("%v %v", v, err)
	}
	if _, err := ParseLegacyMax("TLSv1.3", true); !errors.Is(err, ErrUsage) {
		t.Errorf("TLSv1.3: %v", err)
	}
}
