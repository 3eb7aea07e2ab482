package main

import (
	"testing"

	"tlsfleet/internal/depcheck"
)

// tlsfleet holds the Manager and the agent alias, but nothing made for tests.
func TestDependencies(t *testing.T) {
	depcheck.Forbid(t, "tlsfleet/cmd/tlsfleet", depcheck.TestOnly)
}
