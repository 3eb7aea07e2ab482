package main

import (
	"testing"

	"tlsfleet/internal/depcheck"
)

// ds_agent is what agent hosts install: the agent, not the Manager, its database or console.
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "tlsfleet/cmd/ds_agent", depcheck.ManagerSide, depcheck.TestOnly)
}
