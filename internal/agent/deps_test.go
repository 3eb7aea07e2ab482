package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The agent is small: it must not link the Manager's database, console or command-line tool.
func TestAgentDependencies(t *testing.T) {
	gobin := "go"
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			gobin = p
		}
	}
	out, err := exec.CommandContext(t.Context(), gobin, "list", "-deps", "tlsfleet/internal/agent", "tlsfleet/cmd/dsa_control").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"modernc.org/sqlite", "modernc.org/libc", "github.com/pressly/goose", "github.com/jackc/pgx",
		"tlsfleet/internal/store", "tlsfleet/internal/manager", "tlsfleet/internal/dsmc",
		"tlsfleet/internal/auth", "tlsfleet/internal/telemetry", // console sign-in and API keys; handshake records in the store
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 {
		t.Fatalf("go list printed only %v", deps)
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("the agent links %s", d)
			}
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
