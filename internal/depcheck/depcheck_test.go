package depcheck

import (
	"slices"
	"testing"
)

func TestViolations(t *testing.T) {
	graph := map[string][]string{
		"cmd/a":              {"internal/agent", "fmt"},
		"internal/agent":     {"internal/storex", "internal/cli"},
		"internal/cli":       {"internal/store/sql", "internal/store"},
		"internal/store":     {"modernc.org/sqlite"},
		"internal/storex":    nil,
		"fmt":                nil,
		"internal/unused":    {"internal/store"}, // not reachable from cmd/a
		"internal/store/sql": nil,
	}
	for _, c := range []struct {
		name string
		bad  map[string]string
		want []string
	}{
		{"clean", map[string]string{"internal/manager": "the Manager", "testing": "tests"}, nil},
		{"a prefix is not a parent", map[string]string{"internal/stor": "x"}, nil},
		{"the nearest package under a key, with the chain", map[string]string{"internal/store": "the database"}, []string{
			"cmd/a links internal/store/sql (and 1 more under internal/store), the database, which it must not: " +
				"cmd/a → internal/agent → internal/cli → internal/store/sql; cut an import on that chain",
		}},
		{"one line per key, sorted", map[string]string{"modernc.org/sqlite": "SQLite", "internal/storex": "x"}, []string{
			"cmd/a links internal/storex, x, which it must not: cmd/a → internal/agent → internal/storex; cut an import on that chain",
			"cmd/a links modernc.org/sqlite, SQLite, which it must not: " +
				"cmd/a → internal/agent → internal/cli → internal/store → modernc.org/sqlite; cut an import on that chain",
		}},
		{"the root itself", map[string]string{"cmd": "commands"}, []string{
			"cmd/a links cmd/a, commands, which it must not: cmd/a; cut an import on that chain",
		}},
	} {
		if got := Violations(graph, "cmd/a", c.bad); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}
