package manager

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"tlsfleet/internal/pki"
)

func testPusher(t *testing.T) *pusher {
	t.Helper()
	ca, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newPusher(slog.New(slog.DiscardHandler), (&managerCert{}).clientCert, ca.Cert,
		func(context.Context, string, string) error { return nil }, func(string, string, string, *int64) {}, func() []byte { return nil })
}

// A computer has at most one call queued or running; a full queue refuses instead of blocking.
func TestPusherQueue(t *testing.T) {
	p := testPusher(t)
	if !p.enqueue(agentJob{guid: "a"}) {
		t.Fatal("first job refused")
	}
	if p.enqueue(agentJob{guid: "a"}) {
		t.Error("a second job for the same computer was queued")
	}
	for i := range pushQueue - 1 {
		if !p.enqueue(agentJob{guid: "g" + toString(i)}) {
			t.Fatalf("job %d refused below the bound", i)
		}
	}
	if p.enqueue(agentJob{guid: "one too many"}) {
		t.Error("a job beyond the queue's bound was queued")
	}
	if p.inFlight["one too many"] {
		t.Error("a refused job stays in flight")
	}
}

// Connection pools to agents do not grow for ever: idle ones and those of computers that left go.
func TestPusherPools(t *testing.T) {
	p := testPusher(t)
	p.client("a")
	p.client("b")
	p.client("c")
	if n := p.poolCount(); n != 3 {
		t.Fatalf("%d pools", n)
	}
	p.forget(map[string]bool{"a": true, "b": false}) // b deactivated, c gone
	if n := p.poolCount(); n != 1 {
		t.Errorf("after forget: %d pools, want 1", n)
	}
	p.sweep(time.Now().Add(agentPoolIdle / 2))
	if n := p.poolCount(); n != 1 {
		t.Errorf("a pool used recently was swept")
	}
	p.sweep(time.Now().Add(agentPoolIdle + time.Second))
	if n := p.poolCount(); n != 0 {
		t.Errorf("an idle pool survived the sweep")
	}
}
