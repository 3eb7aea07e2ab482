package manager

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/dsmc"
)

// dsm_c beside a running Manager: a changesetting reaches both listeners within 2 s, and tlsclients shows
// what the Manager counted.
func TestDsmcWithRunningManager(t *testing.T) {
	m := startManager(t, nil)
	dsm := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := dsmc.Run(t.Context(), append([]string{"--dir", m.Dir()}, args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	tls12 := func(addr string) bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	if !tls12(m.ConsoleAddr()) || !tls12(m.AgentAddr()) {
		t.Fatal("TLS 1.2 refused on a fresh install")
	}
	code, out := dsm("-action", "changesetting", "–name", "settings.configuration.restrictManagerMinimumTLSProtocol", "-value", "TLSv1.3")
	if code != 0 || !strings.Contains(out, "TLSv1 -> TLSv1.3") || !strings.Contains(out, "en dash") {
		t.Fatalf("changesetting: %d %s", code, out)
	}
	for _, addr := range []string{m.ConsoleAddr(), m.AgentAddr()} {
		took := eventually(t, 2*time.Second, addr+" refusing TLS 1.2", func() bool { return !tls12(addr) })
		t.Logf("%s refused TLS 1.2 %s after dsm_c", addr, took.Round(time.Millisecond))
	}
	// A bad value changes nothing, and the Manager keeps its policy.
	if code, out := dsm("-action", "changesetting", "-name", "settings.configuration.restrictManagerMinimumTLSProtocol", "-value", "TLSv1.4"); code != 2 || !strings.Contains(out, "use one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3") {
		t.Errorf("bad value: %d %s", code, out)
	}
	// Two whole polls of the files and settings later, the policy is still the one before.
	from := m.polls.Load()
	eventually(t, 2*time.Second, "two polls of the settings", func() bool { return m.polls.Load() >= from+2 })
	if tls12(m.ConsoleAddr()) {
		t.Error("TLS 1.2 accepted again after a refused change")
	}
	eventually(t, 2*time.Second, "tlsclients listing the refused TLS 1.2 handshakes", func() bool {
		_, out := dsm("-action", "tlsclients")
		return strings.Contains(out, "rejected") && strings.Contains(out, "TLSv1.2")
	})
}
