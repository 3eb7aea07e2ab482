package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/install"
	"tlsfleet/internal/store"
	"tlsfleet/internal/store/storetest"
	"tlsfleet/internal/testtarget"
)

// buildBinary builds tlsfleet once per test into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tlsfleet")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestMain(m *testing.M) { storetest.Main(m) }

// A setting change the API acknowledged survives a kill -9 of the Manager, every time, on SQLite and on
// PostgreSQL (`tlsfleet manager --dir D` with database.type=postgres in D's configuration.properties).
func TestKill9KeepsAcknowledgedChanges(t *testing.T) {
	bin := buildBinary(t)
	storetest.EachDB(t, func(t *testing.T, b storetest.Backend) { kill9KeepsAcknowledgedChanges(t, bin, b) })
}

func kill9KeepsAcknowledgedChanges(t *testing.T, bin string, b storetest.Backend) {
	dir := filepath.Join(t.TempDir(), "manager")
	storetest.UseDatabase(t, dir, b, 4119, 4120)
	port := testtarget.FreePort(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "manager", "--dir", dir, "--console-port", strconv.Itoa(port), "--heartbeat-port", strconv.Itoa(testtarget.FreePort(t)), "--listen", "127.0.0.1")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		for i := 0; ; i++ {
			resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/healthz", port))
			if err == nil {
				resp.Body.Close()
				return cmd
			}
			if i > 100 {
				t.Fatalf("manager did not come up: %v\n%s", err, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cmd := start()
	folder, err := install.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenDatabase(t.Context(), folder.Database)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := auth.NewAPIKey()
	if err := db.InsertAPIKey(t.Context(), "kill9", k.Prefix, k.Hash); err != nil {
		t.Fatal(err)
	}
	db.Close()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	acked := 0
	for round := 0; round < 3; round++ {
		for i := 0; i < 10; i++ {
			v := strconv.Itoa(1 + (round*10+i)%1440)
			body, _ := json.Marshal(map[string]string{"value": v})
			req, _ := http.NewRequest("PUT", fmt.Sprintf("https://127.0.0.1:%d/api/settings/settings.configuration.defaultHeartbeatPeriod", port), bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+k.Plaintext)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				acked++
			}
		}
		cmd.Process.Signal(syscall.SIGKILL) // right after the last acknowledgement
		cmd.Wait()
		db, err := store.OpenDatabase(context.Background(), folder.Database)
		if err != nil {
			t.Fatal(err)
		}
		ev, _ := db.SettingEvents(t.Context(), "settings.configuration.defaultHeartbeatPeriod", 1000)
		vals, _ := db.Settings(t.Context())
		db.Close()
		if len(ev) != acked || vals["settings.configuration.defaultHeartbeatPeriod"] != strconv.Itoa(1+(round*10+9)%1440) {
			t.Fatalf("round %d: %d changes acknowledged, %d stored, value %q", round, acked, len(ev), vals["settings.configuration.defaultHeartbeatPeriod"])
		}
		if round < 2 {
			cmd = start()
		}
	}
	if _, err := os.Stat(filepath.Join(dir, install.PasswordFile)); err != nil {
		t.Errorf("first start wrote no password file: %v", err)
	}
}
