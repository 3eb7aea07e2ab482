package main

import (
	"testing"

	"tlsfleet/internal/depcheck"
)

// dsa_control ships with ds_agent on agent hosts: the agent, not the Manager, its database or console.
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "tlsfleet/cmd/dsa_control", depcheck.ManagerSide, depcheck.TestOnly)
}
