package main

import (
	"testing"

	"tlsfleet/internal/depcheck"
)

// dsm_c works on the Manager's install folder and database, and reaches agents through the wire format
// of internal/fleetapi: it runs neither the Manager's listeners nor the agent.
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "tlsfleet/cmd/dsm_c", depcheck.TestOnly, map[string]string{
		"tlsfleet/internal/manager": "the Manager's listeners, REST API and policy reloads (the running Manager, not its tool)",
		"tlsfleet/internal/agent":   "the agent daemon (dsm_c talks to agents through internal/fleetapi)",
	})
}
