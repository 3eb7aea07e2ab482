package manager

import (
	"crypto/tls"
	"log/slog"
	"os"
	"strings"
	"testing"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/install"
)

// The page's strong-cipher list on the default ECDSA install, with TLS 1.3 off, would leave 4119 with no
// usable suite: the Manager keeps the last good policy there, logs an ERROR with the file, the entries
// and the fix, and the console keeps answering. Port 4120, which ciphers= does not reach, follows the
// new file as usual.
func TestLockOutKeepsLastGoodPolicy(t *testing.T) {
	var logs agenttest.SyncBuffer
	m := startManager(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	conf := m.folder.Path(install.ConfigFile)
	old, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	edit := string(old) + "protocols=TLSv1.2\nciphers=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
	if err := os.WriteFile(conf, []byte(edit), 0o640); err != nil {
		t.Fatal(err)
	}
	m.Reload(t.Context())

	out := logs.String()
	for _, want := range []string{"level=ERROR", "TLS policy not applied: the port keeps its last good policy", conf,
		"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: need an RSA certificate",
		"ciphers=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "enableStrongCiphers"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "suites=0") {
		t.Errorf("a policy with no suite was applied:\n%s", out)
	}
	// The console still completes TLS 1.3 handshakes, and the API answers.
	c, err := tls.Dial("tcp", m.ConsoleAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("console refuses handshakes after the lock-out edit: %v", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("console negotiated %x, want TLS 1.3 (the last good policy)", v)
	}
	c.Close()
	var rep map[string]any
	if code := call(t, m, "GET", "/api/policy", apiKey(t, m), nil, &rep); code != 200 {
		t.Fatalf("GET /api/policy = %d", code)
	}
	if e, _ := rep["config_error"].(string); !strings.Contains(e, "could complete no TLS handshake") {
		t.Errorf("config_error = %q", e)
	}
	// 4120 is not governed by ciphers= or protocols=: it took the new (identical) policy.
	if got := m.agents.Policy().Versions; len(got) != 2 {
		t.Errorf("4120 versions = %v", got)
	}
}

// At start there is no last good policy: the Manager refuses to start, with the same text.
func TestLockOutRefusesToStart(t *testing.T) {
	m := startManager(t, nil)
	dir := m.folder.Dir
	m.Close()
	conf := m.folder.Path(install.ConfigFile)
	old, _ := os.ReadFile(conf)
	os.WriteFile(conf, append(old, "protocols=TLSv1.2\nciphers=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"...), 0o640)
	o := m.opts
	o.Dir = dir
	m2, err := Start(t.Context(), o)
	if err == nil {
		m2.Close()
		t.Fatal("the Manager started with a policy that locks port 4119 out")
	}
	if !strings.Contains(err.Error(), "could complete no TLS handshake") || !strings.Contains(err.Error(), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256") {
		t.Errorf("error = %v", err)
	}
}

// A fresh install's own java.security (the JDK's default list) once logged six "has no effect" notes,
// burying real warnings: now one line, and no warning at all.
func TestFreshInstallLogsOneNote(t *testing.T) {
	var logs agenttest.SyncBuffer
	startManager(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	var notes, warnings []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "no effect here") {
			notes = append(notes, line)
		}
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "TLS policy") {
			warnings = append(warnings, line)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "level=INFO") || !strings.Contains(notes[0], "6 entries of the JDK's default list") {
		t.Errorf("notes about the default java.security:\n%s", strings.Join(notes, "\n"))
	}
	if len(warnings) != 0 {
		t.Errorf("a fresh install warns:\n%s", strings.Join(warnings, "\n"))
	}
}
