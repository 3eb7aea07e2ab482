package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlsfleet/internal/agent"
	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/fleetapi"
)

func dsa(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "say what to do"},
		{[]string{"-x"}, "unknown switch -x"},
		{[]string{"-a"}, "-a needs the Manager's address"},
		{[]string{"-a", "dsm://m:4120/"}, "-a needs a token"},
		{[]string{"-a", "dsm://m:4120/", "token:t", "color:blue"}, "unknown activation argument"},
		{[]string{"-a", "dsm://m:4120/", "token:t", "-fingerprint", "AA", "-trust-on-first-use"}, "contradict"},
		{[]string{"-m", "-r"}, "do not go together"},
		{[]string{"-s", "token:t"}, "go with -a"},
		{[]string{"-s", "-output", "xml"}, "-output"},
		{[]string{"-a", "ftp://m/", "token:t", "--dir", "x"}, "use dsm://HOST:4120/"},
		{[]string{"--dir", t.TempDir(), "-a", "dsm://127.0.0.1:1/", "token:t"}, "-trust-on-first-use"},
	} {
		code, out, errs := dsa(t, c.args...)
		if code != 2 || out != "" || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out, errs, c.want)
		}
	}
	if code, out, _ := dsa(t, "-h"); code != 0 || !strings.Contains(out, "-trust-on-first-use") {
		t.Errorf("-h: %d %q", code, out)
	}
}

// The page's workflow: activate (en dash from a copied page included), status, check in, status in
// JSON, reset.
func TestActivateStatusCheckInReset(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	m.AddToken("tok-1", 1)
	dir := filepath.Join(t.TempDir(), "agent")

	code, out, errs := dsa(t, "--dir", dir, "–a", m.URL(), "token:tok-1", "policyid:web", "relaygroupid:g2", "-fingerprint", m.Fingerprint())
	if code != 0 || !strings.Contains(out, "Activated. GUID ") || !strings.Contains(errs, "typographic dash") {
		t.Fatalf("activate: %d\n%s\n%s", code, out, errs)
	}
	guid := m.GUIDs()[0]
	if !strings.Contains(out, guid) || !strings.Contains(out, "relay group:  g2") {
		t.Errorf("activation output:\n%s", out)
	}

	code, out, _ = dsa(t, "--dir", dir, "-s")
	if code != 0 || !strings.Contains(out, "Activated:        yes") || !strings.Contains(out, guid) || !strings.Contains(out, "Last heartbeat:   never (seq 0)") {
		t.Errorf("status: %d\n%s", code, out)
	}

	p := &fleetapi.Policy{Serial: 4, PolicyID: "web", Direction: fleetapi.Bidirectional, HeartbeatSeconds: 300, Agent: fleetapi.TLSSettings{MinVersion: "TLSv1.2"}}
	m.SetPolicy(guid, p)
	code, out, errs = dsa(t, "--dir", dir, "-m")
	if code != 0 || !strings.Contains(out, "Heartbeat 1 accepted by "+m.Addr+" over TLSv1.3") || !strings.Contains(out, "web serial 4") || !strings.Contains(out, "new: stored") {
		t.Errorf("-m: %d\n%s\n%s", code, out, errs)
	}

	code, out, _ = dsa(t, "--dir", dir, "-s", "-output", "json")
	var st agent.LocalStatus
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status json: %d %v\n%s", code, err, out)
	}
	if !st.Activated || st.GUID != guid || st.Seq != 1 || st.PolicySerial != 4 || st.PolicyFingerprint != p.Fingerprint() || st.NegotiatedTLS != "TLSv1.3" || st.LastHeartbeat == "" {
		t.Errorf("status %+v", st)
	}

	// A refused heartbeat: exit 1, the reason on stderr and in the status.
	m.Deactivate(guid, true)
	code, _, errs = dsa(t, "--dir", dir, "-m")
	if code != 1 || !strings.Contains(errs, "heartbeat 2 to "+m.Addr+" failed: the Manager refused this agent") {
		t.Errorf("-m refused: %d %s", code, errs)
	}
	if _, out, _ = dsa(t, "--dir", dir, "-s"); !strings.Contains(out, "Last error:       the Manager refused this agent") {
		t.Errorf("status after refusal:\n%s", out)
	}

	code, out, _ = dsa(t, "--dir", dir, "-r")
	if code != 0 || !strings.Contains(out, "key.pem") || !strings.Contains(out, "state.json") {
		t.Errorf("-r: %d %s", code, out)
	}
	for _, f := range []string{agent.KeyFile, agent.CertFile, agent.CAFile, agent.StateFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s survived the reset", f)
		}
	}
	if code, out, _ = dsa(t, "--dir", dir, "-s"); code != 0 || !strings.Contains(out, "Activated:        no") {
		t.Errorf("status after reset: %d\n%s", code, out)
	}
	if code, out, _ = dsa(t, "--dir", dir, "-r"); code != 0 || !strings.Contains(out, "Nothing to reset") {
		t.Errorf("second reset: %d %s", code, out)
	}
	if code, _, errs = dsa(t, "--dir", dir, "-m"); code != 1 || !strings.Contains(errs, "not activated") {
		t.Errorf("-m unactivated: %d %s", code, errs)
	}
}

func TestActivateFailures(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	other := agenttest.NewManager(t, agenttest.Options{})
	m.AddToken("tok", 1)
	dir := filepath.Join(t.TempDir(), "agent")
	code, _, errs := dsa(t, "--dir", dir, "-a", m.URL(), "token:tok", "-fingerprint", other.Fingerprint())
	if code != 1 || !strings.Contains(errs, "not the Manager you pinned") {
		t.Errorf("wrong fingerprint: %d %s", code, errs)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("the state folder was created")
	}
	code, _, errs = dsa(t, "--dir", dir, "-a", m.URL(), "token:wrong", "-trust-on-first-use")
	if code != 1 || !strings.Contains(errs, "the Manager refused the activation") {
		t.Errorf("bad token: %d %s", code, errs)
	}
	code, out, errs := dsa(t, "--dir", dir, "-a", m.URL(), "token:tok", "-trust-on-first-use")
	if code != 0 || !strings.Contains(errs, "WARNING: trust on first use") || !strings.Contains(out, "trusted by trust on first use") {
		t.Errorf("tofu: %d %s %s", code, out, errs)
	}
}
