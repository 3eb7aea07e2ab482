package agent

import (
	"testing"

	"tlsfleet/internal/depcheck"
)

// The agent is small: it must not link the Manager's database, console or command-line tool. (Its
// binaries have the same test: cmd/ds_agent, cmd/dsa_control.)
func TestAgentDependencies(t *testing.T) {
	for _, pkg := range []string{"tlsfleet/internal/agent", "tlsfleet/internal/agent/agentcmd"} {
		depcheck.Forbid(t, pkg, depcheck.ManagerSide, depcheck.TestOnly)
	}
}
