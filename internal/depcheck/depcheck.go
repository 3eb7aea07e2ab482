// Package depcheck is for tests only: it fails a test when a shipped binary links a package it must
// not, in the style of Tailscale's tstest/deptest (`go list -deps` on the binary's package). Each
// binary's deps_test.go says what it must leave out; a failure names the import chain to cut.
package depcheck

import (
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

// ManagerSide are the Manager's packages and the libraries only it needs, with the reason; the agent's
// binaries (ds_agent, dsa_control) must link none of them. Some do not exist yet: they are listed so
// that they stay out when they are written.
var ManagerSide = map[string]string{
	"modernc.org/sqlite":          "the Manager's SQLite database",
	"modernc.org/libc":            "SQLite's C runtime, translated to Go",
	"github.com/pressly/goose":    "the Manager's database migrations",
	"github.com/jackc/pgx":        "the Manager's PostgreSQL driver",
	"tlsfleet/internal/store":     "the Manager's database",
	"tlsfleet/internal/manager":   "the Manager's listeners, REST API and policy reloads",
	"tlsfleet/internal/dsmc":      "dsm_c, the Manager's command-line tool",
	"tlsfleet/internal/auth":      "console sign-in and API keys",
	"tlsfleet/internal/telemetry": "handshake records kept in the Manager's database",
	"tlsfleet/internal/console":   "the Manager's web console",
	"tlsfleet/internal/api":       "the Manager's REST API",
	"tlsfleet/internal/ops":       "the Manager's operations",
}

// TestOnly are packages no shipped binary links.
var TestOnly = map[string]string{
	"testing":                           "the Go test framework",
	"tlsfleet/internal/testtarget":      "test servers",
	"tlsfleet/internal/agent/agenttest": "the agent tests' fake Manager",
	"tlsfleet/internal/depcheck":        "this test helper",
}

// Forbid fails t when pkg (an import path such as tlsfleet/cmd/ds_agent) links a package that is, or
// is under, a key of one of the bad maps (import path → why it must stay out).
func Forbid(t testing.TB, pkg string, bad ...map[string]string) {
	t.Helper()
	// go test puts GOROOT/bin first on PATH, so this is the go that runs the test.
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	graph := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 {
			graph[f[0]] = f[1:]
		}
	}
	if _, ok := graph[pkg]; !ok || len(graph) < 20 {
		t.Fatalf("go list -deps %s printed %d packages, not %s's dependencies:\n%s", pkg, len(graph), pkg, out)
	}
	all := map[string]string{}
	for _, m := range bad {
		for k, v := range m {
			all[k] = v
		}
	}
	for _, v := range Violations(graph, pkg, all) {
		t.Error(v)
	}
}

// Violations lists, for each key of bad that root links (the key itself or a package under it), the
// shortest import chain from root to it. graph maps each package to its imports.
func Violations(graph map[string][]string, root string, bad map[string]string) []string {
	// Breadth-first from root: via[p] is the package that first imported p.
	via := map[string]string{root: ""}
	order := []string{root}
	for i := 0; i < len(order); i++ {
		for _, imp := range graph[order[i]] {
			if _, seen := via[imp]; !seen {
				via[imp] = order[i]
				order = append(order, imp)
			}
		}
	}
	keys := make([]string, 0, len(bad))
	for k := range bad {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		var hits []string // in breadth-first order: hits[0] is the nearest
		for _, p := range order {
			if p == k || strings.HasPrefix(p, k+"/") {
				hits = append(hits, p)
			}
		}
		if len(hits) == 0 {
			continue
		}
		var chain []string
		for p := hits[0]; p != ""; p = via[p] {
			chain = append(chain, p)
		}
		slices.Reverse(chain)
		more := ""
		if len(hits) > 1 {
			more = fmt.Sprintf(" (and %d more under %s)", len(hits)-1, k)
		}
		out = append(out, fmt.Sprintf("%s links %s%s, %s, which it must not: %s; cut an import on that chain",
			root, hits[0], more, bad[k], strings.Join(chain, " → ")))
	}
	return out
}
