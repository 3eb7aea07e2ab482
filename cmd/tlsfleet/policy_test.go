package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tlsfleet/internal/install"
	"tlsfleet/internal/manager"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/store/storetest"
	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlspolicy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func TestPolicyCommand(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode string // "" success, "usage", "error", "lockout" (the report, then an error)
		godebug  string
		contains []string // besides the golden file, lines the output must hold
	}{
		{name: "new-install", args: []string{"policy", "--dir", "testdata/new-install"}},
		{name: "new-install-json", args: []string{"policy", "--dir", "testdata/new-install", "--json"}},
		{name: "page-enforce-4120", args: []string{"policy", "--dir", "testdata/page-enforce", "--port", "4120"}},
		{name: "page-enforce-json", args: []string{"policy", "--dir", "testdata/page-enforce", "--json"}},
		{name: "gui-only", args: []string{"policy", "--dir", "testdata/gui-only"}},
		{name: "gui-only-json", args: []string{"policy", "--dir", "testdata/gui-only", "--json"}},
		{name: "gui-undo-4119", args: []string{"policy", "--dir", "testdata/gui-undo", "--port", "4119"}},
		{name: "bad-java", args: []string{"policy", "--dir", "testdata/bad-java"}, wantCode: "error"},
		{name: "bad-conf", args: []string{"policy", "--dir", "testdata/bad-conf"}, wantCode: "error"},
		{name: "missing-dir", args: []string{"policy", "--dir", "testdata/does-not-exist"}, wantCode: "error"},
		{name: "bad-port", args: []string{"policy", "--dir", "testdata/new-install", "--port", "443"}, wantCode: "usage"},
		{name: "no-command", args: nil, wantCode: "usage"},
		{name: "rsa-install-4119", args: []string{"policy", "--dir", "testdata/rsa-install", "--port", "4119"},
			contains: []string{"certificate: testdata/rsa-install/manager.pem, RSA key of 2048 bits", "    TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"}},
		{name: "port-24119", args: []string{"policy", "--dir", "testdata/port-24119", "--port", "24119"},
			contains: []string{"Port 24119 (console)", "assumed: testdata/port-24119/manager.pem does not exist yet"}},
		{name: "port-4119-not-this-install", args: []string{"policy", "--dir", "testdata/port-24119", "--port", "4119"}, wantCode: "usage",
			contains: []string{"use 24119 (console), 24120 (agent-channel)"}},
		{name: "strong-ec-lockout", args: []string{"policy", "--dir", "testdata/strong-ec", "--port", "4119"}, wantCode: "lockout",
			contains: []string{"error: port 4119 (console) could complete no TLS handshake", "ciphers=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}},
		{name: "strong-rsa", args: []string{"policy", "--dir", "testdata/strong-rsa", "--port", "4119"},
			contains: []string{"versions:                           TLSv1.2\n", "    TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n"}},
		{name: "godebug", args: []string{"policy", "--dir", "testdata/new-install", "--port", "4120"}, godebug: "http2client=0,tlsrsakex=1, tlssha1=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.godebug != "" {
				t.Setenv("GODEBUG", tt.godebug)
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			got := stdout.String()
			switch tt.wantCode {
			case "":
				if err != nil {
					t.Fatalf("error: %v\n%s", err, stderr.String())
				}
			case "usage":
				if err == nil || !strings.Contains(err.Error(), "usage") {
					t.Fatalf("want a usage error, got %v", err)
				}
				got = err.Error() + "\n"
			case "error":
				if err == nil {
					t.Fatal("want an error")
				}
				got = err.Error() + "\n"
			case "lockout":
				if err == nil || strings.Contains(err.Error(), "usage") {
					t.Fatalf("want a lock-out error, got %v", err)
				}
				got += "error: " + err.Error() + "\n"
			}
			checkGolden(t, tt.name, got)
			for _, c := range tt.contains {
				if !strings.Contains(got, c) {
					t.Errorf("output lacks %q:\n%s", c, got)
				}
			}
		})
	}
}

// tlsfleet policy reads the fleet settings from the install's database (SQLite or PostgreSQL), as the
// Manager does: a raised Manager minimum shows, and enableStrongCiphers says it leaves the Manager's ports
// alone.
func TestPolicyReadsTheInstallsSettings(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, b storetest.Backend) {
		dir := t.TempDir()
		b.Database.Path = filepath.Join(dir, install.DefaultDBFile)
		if err := os.WriteFile(filepath.Join(dir, install.ConfigFile), []byte("port=24119\nmanagerPort=24120\n"+b.Database.Properties()), 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := store.OpenDatabase(t.Context(), b.Database)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string]string{settings.ManagerMinimumTLS: "TLSv1.3", settings.StrongCiphers: "true"} {
			if _, _, err := db.SetSetting(t.Context(), name, v, "test"); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"policy", "--dir", dir, "--port", "24120"}, &stdout, &stderr); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		shown, conn := b.Database.Path, "database connection: local file, no network\n"
		if b.Name == install.DatabasePostgres {
			shown, conn = b.Database.String(), "database connection: TLSv1.3 " // the test server: ssl=on, TLS 1.3
		}
		if strings.Contains(stdout.String(), "BLOCKER") {
			t.Errorf("a blocker on a database that meets TLS 1.3:\n%s", stdout.String())
		}
		for _, want := range []string{
			"settings: " + shown + "\n",
			conn,
			"Port 24120 (agent-channel)\n  versions:                           TLSv1.3\n",
			"settings.configuration.restrictManagerMinimumTLSProtocol=TLSv1.3 applies here",
			"settings.configuration.enableStrongCiphers=true does not apply here: it reaches relays' port 4122 and agents' port 4118",
		} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, stdout.String())
			}
		}
	})
}

// On an install the Manager made with --rsa, on other ports, tlsfleet policy reports what the Manager
// serves: its RSA certificate and RSA suites, its ports, the same versions and suites per port.
func TestPolicyMatchesARunningRSAInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manager")
	m, err := manager.Start(t.Context(), manager.Options{Dir: dir, ConsolePort: testtarget.FreePort(t), HeartbeatPort: testtarget.FreePort(t),
		Listen: "127.0.0.1", KeyType: pki.RSA2048, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"policy", "--dir", dir, "--json"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var rep tlspolicy.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Certificate, filepath.Join(dir, pki.ServerFile)+", RSA key of 2048 bits") {
		t.Errorf("certificate used: %q", rep.Certificate)
	}
	b, err := json.Marshal(m.PolicyReport())
	if err != nil {
		t.Fatal(err)
	}
	var live tlspolicy.Report
	if err := json.Unmarshal(b, &live); err != nil {
		t.Fatal(err)
	}
	if len(rep.Ports) != 2 || len(live.Ports) != 2 {
		t.Fatalf("ports: policy %d, Manager %d", len(rep.Ports), len(live.Ports))
	}
	for i, p := range rep.Ports {
		l := live.Ports[i]
		if p.Port != l.Port || p.Role != l.Role || strings.Join(p.Versions, ",") != strings.Join(l.Versions, ",") ||
			strings.Join(p.CipherSuites, ",") != strings.Join(l.CipherSuites, ",") || p.Certificate != l.Certificate {
			t.Errorf("port %d: tlsfleet policy says %+v\nthe Manager serves %+v", l.Port, p, l)
		}
		if !slices.Contains(p.CipherSuites, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") || p.Certificate.KeyAlgorithm != "RSA" {
			t.Errorf("port %d: not RSA: %v %v", p.Port, p.Certificate, p.CipherSuites)
		}
	}
}
