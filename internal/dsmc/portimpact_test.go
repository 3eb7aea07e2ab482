package dsmc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/ops"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

const managerMin = settings.ManagerMinimumTLS

// undoJavaSecurity writes the page's "disable enforcement" java.security: TLSv1 and TLSv1.1 allowed.
func undoJavaSecurity(t *testing.T, dir string) {
	t.Helper()
	js := filepath.Join(dir, tlspolicy.JavaSecurityFile)
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	undone := strings.Replace(string(data), "TLSv1, TLSv1.1, ", "", 1)
	if undone == string(data) {
		t.Fatalf("default java.security does not list TLSv1, TLSv1.1:\n%s", data)
	}
	if err := os.WriteFile(js, []byte(undone), 0o640); err != nil {
		t.Fatal(err)
	}
}

// restrictManagerMinimumTLSProtocol says what it does to the Manager's own ports and whom it cuts off —
// the TLS 1.0 agent and the old script seen there, by name and address — in text and JSON alike, and
// says so plainly when java.security already decides.
func TestManagerMinimumChangeMessage(t *testing.T) {
	t.Run("cuts off legacy clients", func(t *testing.T) {
		dir, db := newInstall(t)
		undoJavaSecurity(t, dir)
		addComputer(t, db, store.Computer{GUID: "g-legacy", Hostname: "legacy1"})
		ago := func(d time.Duration) string { return time.Now().UTC().Add(-d).Format(time.RFC3339Nano) }
		obs := []store.Observation{
			{Port: 4120, ClientIP: "10.0.0.7", AgentGUID: "g-legacy", OfferedMax: "TLSv1", Version: "TLSv1", Suite: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
				Outcome: "accepted", Count: 12, FirstSeen: ago(time.Hour), LastSeen: ago(time.Minute)},
			{Port: 4119, ClientIP: "10.0.0.8", UserAgent: "curl/7.29.0", OfferedMax: "TLSv1.1", Version: "TLSv1.1", Suite: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
				Outcome: "accepted", Count: 1, FirstSeen: ago(2 * time.Hour), LastSeen: ago(2 * time.Hour)},
			// Not cut off: a modern client, a refused one, one seen too long ago, one a relay saw on its own port.
			{Port: 4120, ClientIP: "10.0.0.9", OfferedMax: "TLSv1.3", Version: "TLSv1.3", Suite: "TLS_AES_128_GCM_SHA256", Outcome: "accepted", Count: 3,
				FirstSeen: ago(time.Hour), LastSeen: ago(time.Hour)},
			{Port: 4119, ClientIP: "10.0.0.10", OfferedMax: "TLSv1", Outcome: "rejected", Count: 1, FirstSeen: ago(time.Hour), LastSeen: ago(time.Hour)},
			{Port: 4119, ClientIP: "10.0.0.11", OfferedMax: "TLSv1", Version: "TLSv1", Suite: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Outcome: "accepted", Count: 1,
				FirstSeen: ago(20 * 24 * time.Hour), LastSeen: ago(10 * 24 * time.Hour)},
			{Port: 4120, ClientIP: "10.0.0.12", OfferedMax: "TLSv1", Version: "TLSv1", Suite: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", Outcome: "accepted", Count: 1,
				FirstSeen: ago(time.Hour), LastSeen: ago(time.Hour), Node: "g-relay"},
		}
		if err := db.AddObservations(t.Context(), obs); err != nil {
			t.Fatal(err)
		}
		var res ops.SettingChange
		okJSON(t, dir, &res, "-action", "changesetting", "-name", managerMin, "-value", "TLSv1.2")
		got := map[int][]string{}
		for _, p := range res.ManagerPorts {
			if !p.Changed || !cmp.Equal(p.Versions, []string{"TLSv1.2", "TLSv1.3"}) || len(p.VersionsBefore) != 4 {
				t.Errorf("port %d: %+v, want TLSv1..TLSv1.3 -> TLSv1.2, TLSv1.3", p.Port, p)
			}
			for _, c := range p.CutOff {
				got[p.Port] = append(got[p.Port], c.Address+" "+c.Computer+c.UserAgent+" "+c.Version)
			}
		}
		want := map[int][]string{4119: {"10.0.0.8 curl/7.29.0 TLSv1.1"}, 4120: {"10.0.0.7 legacy1 (g-legacy) TLSv1"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cut off (-want +got):\n%s", diff)
		}

		// The same change in text, from the old value again.
		ok(t, dir, "-action", "changesetting", "-name", managerMin, "-value", "TLSv1")
		out := ok(t, dir, "-action", "changesetting", "-name", managerMin, "-value", "TLSv1.2")
		wantContains(t, "stdout", out, managerMin+": TLSv1 -> TLSv1.2\n",
			"The Manager's ports (a running Manager applies this at once and closes the connections it no longer accepts):",
			"4120 (agent channel): TLSv1, TLSv1.1, TLSv1.2, TLSv1.3", "-> TLSv1.2, TLSv1.3",
			"cuts off 1 client seen on 4120 in the last 7 days:", "10.0.0.7  legacy1 (g-legacy)  TLSv1  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
			"cuts off 1 client seen on 4119 in the last 7 days:", "10.0.0.8  curl/7.29.0")
		for _, absent := range []string{"10.0.0.9", "10.0.0.10", "10.0.0.11", "10.0.0.12"} {
			if strings.Contains(out, absent) {
				t.Errorf("the message lists %s, which the change does not cut off:\n%s", absent, out)
			}
		}
	})
	t.Run("java.security already enforces", func(t *testing.T) {
		dir, _ := newInstall(t)
		out := ok(t, dir, "-action", "changesetting", "-name", managerMin, "-value", "TLSv1.2")
		wantContains(t, "stdout", out, "The Manager's port 4119 (console) is unchanged: it accepts TLSv1.2, TLSv1.3.",
			"The Manager's port 4120 (agent channel) is unchanged: it accepts TLSv1.2, TLSv1.3.")
	})
	t.Run("relay settings say nothing about the Manager's ports", func(t *testing.T) {
		dir, _ := newInstall(t)
		if out := ok(t, dir, "-action", "changesetting", "-name", relay, "-value", "TLSv1.3"); strings.Contains(out, "Manager's port") {
			t.Errorf("a relay setting talks about the Manager's ports:\n%s", out)
		}
	})
}
