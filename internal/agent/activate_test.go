package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/pki"
)

// filesIn lists a folder's entries ("" when it does not exist).
func filesIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestActivateWithFingerprint(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	m.AddToken("tok", 2)
	for i, fp := range []string{m.Fingerprint(), strings.ToLower(strings.ReplaceAll(m.Fingerprint(), ":", ""))} {
		dir := filepath.Join(t.TempDir(), "agent")
		act, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: m.URL(), Token: "tok", PolicyID: "web", RelayGroup: "g1", Fingerprint: fp, Hostname: "web-1"})
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if c := m.Computer(act.GUID); c.Hostname != "web-1" || c.PolicyID != "web" || c.RelayGroup != "g1" || strings.Join(c.TLSVersions, ",") != "TLSv1.2,TLSv1.3" {
			t.Errorf("the Manager recorded %+v", c)
		}
		st := mustState(t, dir)
		if st.GUID != act.GUID || st.Manager != m.Addr || st.Seq != 0 || st.CAFingerprint != m.Fingerprint() || st.PolicyID != "web" {
			t.Errorf("state %+v", st)
		}
		if fi, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key.pem: %v %v", fi, err)
		}
		if !bytes.Equal(readFile(t, filepath.Join(dir, CAFile)), m.CAPEM()) {
			t.Error("ca.pem is not the fleet CA")
		}
		if _, _, err := loadIdentity(dir); err != nil {
			t.Errorf("identity: %v", err)
		}
		// A second activation of the same folder is refused, naming the reset.
		if _, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: m.URL(), Token: "tok", Fingerprint: fp}); err == nil || !strings.Contains(err.Error(), "dsa_control -r") {
			t.Errorf("second activation: %v", err)
		}
	}
}

// The admin copied the fleet CA (dsm_c -action exportdsmcert) to STATE/ca.pem before activation.
func TestActivatePrebound(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	m.AddToken("tok", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CAFile), m.CAPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	// "localhost" is in the Manager's certificate too; the host name is checked against it.
	url := strings.Replace(m.URL(), "127.0.0.1", "localhost", 1)
	act, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: url, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if act.TrustedOnFirstUse || mustState(t, dir).GUID != act.GUID {
		t.Errorf("activation %+v", act)
	}
	if st, _ := ReadStatus(dir); !st.Activated || st.CAFingerprint != m.Fingerprint() {
		t.Errorf("status %+v", st)
	}
}

// A ca.pem of another fleet: refused, nothing but the admin's file in the folder.
func TestActivatePreboundWrongCA(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	other := agenttest.NewManager(t, agenttest.Options{})
	m.AddToken("tok", 1)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, CAFile), other.CAPEM(), 0o644)
	if st, _ := ReadStatus(dir); st.Activated || st.PreboundCA != other.Fingerprint() {
		t.Errorf("status before activation %+v", st)
	}
	_, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: m.URL(), Token: "tok"})
	if err == nil || !strings.Contains(err.Error(), "is not the Manager of the fleet CA in ca.pem") {
		t.Fatalf("err = %v", err)
	}
	if got := filesIn(t, dir); len(got) != 1 || got[0] != CAFile {
		t.Errorf("files after refusal: %v", got)
	}
	// The token was not spent.
	if _, err := Activate(t.Context(), ActivateOptions{Dir: t.TempDir(), URL: m.URL(), Token: "tok", Fingerprint: m.Fingerprint()}); err != nil {
		t.Errorf("token spent by the refused activation: %v", err)
	}
}

func TestActivateTrustOnFirstUse(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	m.AddToken("tok", 1)
	dir := filepath.Join(t.TempDir(), "a")
	var warn bytes.Buffer
	act, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: m.URL(), Token: "tok", TrustOnFirstUse: true, Warn: &warn})
	if err != nil {
		t.Fatal(err)
	}
	if !act.TrustedOnFirstUse || act.CAFingerprint != m.Fingerprint() {
		t.Errorf("activation %+v", act)
	}
	if w := warn.String(); !strings.Contains(w, "WARNING: trust on first use") || !strings.Contains(w, m.Fingerprint()) || !strings.Contains(w, "exportdsmcert") {
		t.Errorf("warning:\n%s", w)
	}
}

func TestActivateWrongFingerprintWritesNothing(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	other := agenttest.NewManager(t, agenttest.Options{})
	m.AddToken("tok", 1)
	dir := filepath.Join(t.TempDir(), "a")
	_, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: m.URL(), Token: "tok", Fingerprint: other.Fingerprint()})
	if err == nil || !strings.Contains(err.Error(), "not the Manager you pinned") || !strings.Contains(err.Error(), m.Fingerprint()) || !strings.Contains(err.Error(), other.Fingerprint()) {
		t.Fatalf("err = %v", err)
	}
	if got := filesIn(t, dir); got != nil {
		t.Errorf("wrote %v", got)
	}
	if len(m.GUIDs()) != 0 {
		t.Error("the Manager activated a computer although the agent refused it")
	}
	// A malformed fingerprint is a usage error.
	if _, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: m.URL(), Token: "tok", Fingerprint: "AB:CD"}); !errors.Is(err, ErrUsage) {
		t.Errorf("short fingerprint: %v", err)
	}
}

func TestActivateWithoutTrustRefused(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	m.AddToken("tok", 1)
	dir := filepath.Join(t.TempDir(), "a")
	_, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: m.URL(), Token: "tok"})
	if !errors.Is(err, ErrNoTrust) || !errors.Is(err, ErrUsage) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"-fingerprint", "ca.pem", "-trust-on-first-use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message does not name %s: %v", want, err)
		}
	}
	if filesIn(t, dir) != nil || len(m.GUIDs()) != 0 {
		t.Error("something was written or activated")
	}
}

func TestActivateBadToken(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := filepath.Join(t.TempDir(), "a")
	_, err := Activate(t.Context(), ActivateOptions{Dir: dir, URL: m.URL(), Token: "nope", Fingerprint: m.Fingerprint()})
	if err == nil || !strings.Contains(err.Error(), "the Manager refused the activation: activation token is invalid") {
		t.Fatalf("err = %v", err)
	}
	if filesIn(t, dir) != nil {
		t.Error("wrote files")
	}
}

func TestParseManagerURL(t *testing.T) {
	for in, want := range map[string]string{
		"dsm://mgr.example:4120/": "mgr.example:4120", "dsm://mgr.example/": "mgr.example:4120", "https://10.0.0.5:4120": "10.0.0.5:4120",
		"mgr:4121": "mgr:4121", "dsm://[::1]:4120/": "[::1]:4120",
	} {
		if got, err := ParseManagerURL(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "ftp://x/", "dsm://x:99999/", "dsm://x:4120/path", "dsm://:4120/"} {
		if _, err := ParseManagerURL(bad); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	want := sha256Of(m.CA.Cert)
	for _, s := range []string{m.Fingerprint(), strings.ToLower(m.Fingerprint()), strings.ReplaceAll(m.Fingerprint(), ":", ""), " " + m.Fingerprint() + "\n"} {
		if got, err := ParseFingerprint(s); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %v", s, err)
		}
	}
	if formatFP(want) != pki.Fingerprint(m.CA.Cert) {
		t.Error("formatFP differs from pki.Fingerprint")
	}
}
