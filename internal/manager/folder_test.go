package manager

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/dsmc"
	"tlsfleet/internal/install"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/testtarget"
)

// options are startManager's, for a Manager started by hand on dir.
func options(t *testing.T, dir string) Options {
	return Options{Dir: dir, ConsolePort: testtarget.FreePort(t), HeartbeatPort: testtarget.FreePort(t), Listen: "127.0.0.1",
		PollInterval: 50 * time.Millisecond, FlushInterval: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
}

// A second Manager on the same folder, even with other ports, is refused with the PID of the one that
// holds it; once that one stops, the folder is free. A lock file left by a dead process blocks nobody.
func TestOneManagerPerFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manager")
	first, err := Start(t.Context(), options(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	run, err := install.ReadRunning(dir)
	if err != nil || run.PID != os.Getpid() || run.AgentAddr != first.AgentAddr() || run.ConsoleAddr != first.ConsoleAddr() {
		t.Errorf("lock file: %+v, %v; want PID %d and the addresses %s, %s", run, err, os.Getpid(), first.ConsoleAddr(), first.AgentAddr())
	}
	second, err := Start(t.Context(), options(t, dir))
	if err == nil {
		second.Close()
		t.Fatal("a second Manager started on the same install folder")
	}
	if !errors.Is(err, install.ErrLocked) || !strings.Contains(err.Error(), "PID "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "--dir") {
		t.Errorf("refusal: %v; want the holder's PID and the fix", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if run, _ := install.ReadRunning(dir); run.PID != 0 {
		t.Errorf("the lock file still names PID %d after the Manager stopped", run.PID)
	}
	again, err := Start(t.Context(), options(t, dir))
	if err != nil {
		t.Fatalf("the folder stayed locked after the first Manager stopped: %v", err)
	}
	again.Close()

	stale := filepath.Join(t.TempDir(), "manager")
	if err := os.MkdirAll(stale, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, install.LockFile), []byte("pid=999999\nagent_channel=127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Start(t.Context(), options(t, stale))
	if err != nil {
		t.Fatalf("a stale lock file blocked the start: %v", err)
	}
	m.Close()
}

func healthz(t *testing.T, m *Manager) (int, string) {
	t.Helper()
	resp, err := apiClient().Get("https://" + m.ConsoleAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// An install folder removed, renamed or replaced under a running Manager makes /healthz answer 503 with
// the reason, and every change is refused with 503 and written nowhere; put back, the Manager takes
// changes again.
func TestFolderLostUnderManager(t *testing.T) {
	tests := []struct {
		name   string
		lose   func(t *testing.T, dir string)
		want   string
		moved  bool // the database is at dir+".moved"
		canFix bool
	}{
		{name: "renamed", lose: func(t *testing.T, dir string) { mustRename(t, dir, dir+".moved") }, want: "was removed or renamed", moved: true, canFix: true},
		{name: "removed", lose: func(t *testing.T, dir string) { os.RemoveAll(dir) }, want: "was removed or renamed"},
		{name: "replaced", lose: func(t *testing.T, dir string) {
			mustRename(t, dir, dir+".moved")
			if err := os.MkdirAll(dir, 0o750); err != nil {
				t.Fatal(err)
			}
		}, want: "was replaced", moved: true},
		{name: "database removed", lose: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, install.DefaultDBFile)) }, want: "database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "database removed" && os.Getenv(envTestDB) == install.DatabasePostgres {
				t.Skip("on PostgreSQL the database is no file of the folder")
			}
			m := startManager(t, func(o *Options) { o.PollInterval = 50 * time.Millisecond })
			key := apiKey(t, m)
			if code, body := healthz(t, m); code != 200 || body != "ok\n" {
				t.Fatalf("healthz before: %d %q", code, body)
			}
			dir := m.Dir()
			tt.lose(t, dir)
			code, body := healthz(t, m)
			if code != http.StatusServiceUnavailable || !strings.Contains(body, tt.want) || !strings.Contains(body, dir) {
				t.Errorf("healthz with the folder %s: %d %q", tt.name, code, body)
			}
			var res map[string]any
			if code := call(t, m, "PUT", "/api/settings/"+settings.RelayMinimumTLS, key, map[string]string{"value": "TLSv1.3"}, &res); code != http.StatusServiceUnavailable ||
				!strings.Contains(res["error"].(string), tt.want) || !strings.Contains(res["error"].(string), "changed nothing") {
				t.Errorf("PUT a setting with the folder %s: %d %v", tt.name, code, res)
			}
			if code := call(t, m, "GET", "/api/settings", key, nil, nil); code != http.StatusServiceUnavailable {
				t.Errorf("GET the settings with the folder %s: %d (a database that is not the Manager's would answer)", tt.name, code)
			}
			if code := call(t, m, "POST", "/api/activationtokens", key, map[string]any{}, &res); code != http.StatusServiceUnavailable {
				t.Errorf("create an activation token with the folder %s: %d %v", tt.name, code, res)
			}
			if _, err := os.Stat(filepath.Join(dir, install.DefaultDBFile)); err == nil {
				t.Errorf("a new database appeared in %s", dir)
			}
			if moved := filepath.Join(dir+".moved", install.DefaultDBFile); tt.moved {
				db, err := store.Open(t.Context(), moved)
				if err != nil {
					t.Fatal(err)
				}
				vals, err := db.Settings(t.Context())
				db.Close()
				if v, ok := vals[settings.RelayMinimumTLS]; err != nil || ok {
					t.Errorf("the refused change was written: %s=%s (%v)", settings.RelayMinimumTLS, v, err)
				}
			}
			eventually(t, 5*time.Second, "the watch loop notices", func() bool {
				m.mu.Lock()
				defer m.mu.Unlock()
				return m.healthErr != ""
			})
			if !tt.canFix {
				return
			}
			mustRename(t, dir+".moved", dir)
			if code, body := healthz(t, m); code != 200 {
				t.Errorf("healthz with the folder back: %d %q", code, body)
			}
			if code := call(t, m, "PUT", "/api/settings/"+settings.RelayMinimumTLS, key, map[string]string{"value": "TLSv1.3"}, &res); code != 200 {
				t.Errorf("PUT a setting with the folder back: %d %v", code, res)
			}
		})
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// A folder that had agents never gets a new fleet CA or database by itself: the Manager refuses to start,
// names what is missing and the fix, and creates nothing; --new-fleet starts a new fleet.
func TestStartRefusesNewFleetOverAgents(t *testing.T) {
	tests := []struct {
		name    string
		lose    func(t *testing.T, dir string)
		want    []string
		created string // a file the refusal must not create
		keepsCA bool   // --new-fleet keeps the fleet CA (it was not lost)
	}{
		{name: "CA removed", lose: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, pki.CAFile))
			os.Remove(filepath.Join(dir, pki.CAKeyFile))
		}, want: []string{"fleet CA", "is missing", "holds 1 activated computers", "--new-fleet"}, created: pki.CAFile},
		{name: "CA removed with the database", lose: func(t *testing.T, dir string) {
			for _, f := range []string{pki.CAFile, pki.CAKeyFile, install.DefaultDBFile, install.DefaultDBFile + "-wal", install.DefaultDBFile + "-shm"} {
				os.Remove(filepath.Join(dir, f))
			}
		}, want: []string{"database", "is missing", install.FleetMarkerFile, "--new-fleet"}, created: install.DefaultDBFile},
		{name: "database removed", lose: func(t *testing.T, dir string) {
			for _, f := range []string{install.DefaultDBFile, install.DefaultDBFile + "-wal", install.DefaultDBFile + "-shm"} {
				os.Remove(filepath.Join(dir, f))
			}
		}, want: []string{"database", "is missing", install.FleetMarkerFile, "--new-fleet"}, created: install.DefaultDBFile, keepsCA: true},
		{name: "CA replaced", lose: func(t *testing.T, dir string) {
			other := t.TempDir()
			if _, err := pki.LoadOrCreateCA(other); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{pki.CAFile, pki.CAKeyFile} {
				data, _ := os.ReadFile(filepath.Join(other, f))
				os.WriteFile(filepath.Join(dir, f), data, 0o600)
			}
		}, want: []string{"is not the fleet CA its agents pin", "--new-fleet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "manager")
			m, err := Start(t.Context(), options(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			activateTestAgent(t, m, "web1")
			oldCA := m.CA().Fingerprint()
			m.Close()
			tt.lose(t, dir)
			m, err = Start(t.Context(), options(t, dir))
			if err == nil {
				m.Close()
				t.Fatal("the Manager started a new fleet over a folder that had agents")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q does not say %q", err, w)
				}
			}
			if tt.created != "" {
				if _, err := os.Stat(filepath.Join(dir, tt.created)); err == nil {
					t.Errorf("the refused start created %s", tt.created)
				}
			}
			o := options(t, dir)
			o.NewFleet = true
			m, err = Start(t.Context(), o)
			if err != nil {
				t.Fatalf("--new-fleet: %v", err)
			}
			if (m.CA().Fingerprint() == oldCA) != tt.keepsCA {
				t.Errorf("--new-fleet: CA %s, the old one %s; want kept: %v", m.CA().Fingerprint(), oldCA, tt.keepsCA)
			}
			if c := m.cert.get(); c.Leaf.CheckSignatureFrom(m.CA().Cert) != nil {
				t.Errorf("--new-fleet serves a certificate the new CA did not sign")
			}
			m.Close()
			if m, err = Start(t.Context(), options(t, dir)); err != nil {
				t.Fatalf("the start after --new-fleet needs it again: %v", err)
			}
			m.Close()
		})
	}
}

// The fleet marker is written at the first activation, and records the CA the agents pin; a folder
// without agents starts without one.
func TestFleetMarker(t *testing.T) {
	m := startManager(t, nil)
	marker := filepath.Join(m.Dir(), install.FleetMarkerFile)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a fleet without agents has a marker")
	}
	activateTestAgent(t, m, "web1")
	data, err := os.ReadFile(marker)
	if err != nil || !strings.Contains(string(data), m.CA().Fingerprint()) {
		t.Fatalf("marker after the first activation: %q, %v", data, err)
	}
	if n, err := m.db.(*store.DB).ComputerCount(t.Context()); err != nil || n != 1 {
		t.Errorf("ComputerCount = %d, %v", n, err)
	}
}

// The activation command that the API and dsm_c print names the address the running Manager's agent
// channel listens on (here 127.0.0.1 only), not the machine's host name.
func TestActivationCommandNamesListenAddress(t *testing.T) {
	m := startManager(t, nil)
	want := "dsm://" + m.AgentAddr() + "/"
	var tok ops.Token
	if code := call(t, m, "POST", "/api/activationtokens", apiKey(t, m), map[string]any{}, &tok); code != http.StatusCreated || !strings.Contains(tok.Command, want) {
		t.Errorf("API: %d %q; want %s", code, tok.Command, want)
	}
	var out, errb bytes.Buffer
	if code := dsmc.Run(t.Context(), []string{"--dir", m.Dir(), "-action", "createactivationtoken"}, &out, &errb); code != 0 || !strings.Contains(out.String(), want) {
		t.Errorf("dsm_c: %d\n%s%s\nwant %s", code, out.String(), errb.String(), want)
	}
}
