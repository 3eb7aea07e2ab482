package store

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/store/storetest"
)

// fakeClock is a settable time shared by two store handles.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time       { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) add(d time.Duration)  { c.ns.Add(int64(d)) }
func newFakeClock(t time.Time) *fakeClock { c := &fakeClock{}; c.ns.Store(t.UnixNano()); return c }

// eachTwoNodes runs f on SQLite and on PostgreSQL with the same database opened twice, as two Manager
// nodes on one database would.
func eachTwoNodes(t *testing.T, clk *fakeClock, f func(t *testing.T, a, b *DB)) {
	eachDB(t, func(t *testing.T, a *DB, be storetest.Backend) {
		b, err := OpenDatabase(t.Context(), be.Database)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		a.SetClock(clk.now)
		b.SetClock(clk.now)
		f(t, a, b)
	})
}

func TestLeaseOneHolderThenTakeover(t *testing.T) {
	ctx := t.Context()
	clk := newFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	eachTwoNodes(t, clk, func(t *testing.T, a, b *DB) {
		const ttl = 3 * time.Second
		type step struct {
			name    string
			advance time.Duration
			db      *DB
			node    string
			want    bool
		}
		for _, s := range []step{
			{"A takes the free lease", 0, a, "A", true},
			{"B is refused while A holds it", 0, b, "B", false},
			{"A renews its own", time.Second, a, "A", true},
			{"B is refused before the renewed expiry", 2*time.Second + 999*time.Millisecond, b, "B", false},
			{"B takes it once it expired", time.Millisecond, b, "B", true},
			{"A, back, is refused", 0, a, "A", false},
			{"B renews", time.Second, b, "B", true},
		} {
			clk.add(s.advance)
			got, err := s.db.TryLease(ctx, "fleet", s.node, ttl)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got != s.want {
				t.Fatalf("%s: TryLease = %v, want %v", s.name, got, s.want)
			}
		}
		// Another job's lease is its own.
		if ok, err := a.TryLease(ctx, "other", "A", ttl); err != nil || !ok {
			t.Fatalf("another job: %v %v", ok, err)
		}
		// A release hands the job over at once; releasing a lease one does not hold changes nothing.
		if err := a.ReleaseLease(ctx, "fleet", "A"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := a.TryLease(ctx, "fleet", "A", ttl); ok {
			t.Fatal("A's release took B's lease away")
		}
		if err := b.ReleaseLease(ctx, "fleet", "B"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := a.TryLease(ctx, "fleet", "A", ttl); !ok {
			t.Fatal("after B released the lease, A could not take it")
		}
	})
}

// Of two nodes racing for a free lease, exactly one wins, every time.
func TestLeaseRaceHasOneWinner(t *testing.T) {
	clk := newFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	eachTwoNodes(t, clk, func(t *testing.T, a, b *DB) {
		for i := range 20 {
			job := "job" + string(rune('a'+i))
			var wins atomic.Int32
			var wg sync.WaitGroup
			for _, n := range []struct {
				db   *DB
				name string
			}{{a, "A"}, {b, "B"}} {
				wg.Go(func() {
					ok, err := n.db.TryLease(t.Context(), job, n.name, time.Minute)
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins.Add(1)
					}
				})
			}
			wg.Wait()
			if w := wins.Load(); w != 1 {
				t.Fatalf("%s: %d winners, want 1", job, w)
			}
		}
	})
}

func TestNodesRegisterAndTouch(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, _ storetest.Backend) {
		ctx := t.Context()
		start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		n := ManagerNode{Name: "m1:4120", ConsoleAddr: "m1:4119", AgentAddr: "m1:4120", Version: "1.0",
			StartedAt: stamp(start), LastSeen: stamp(start), Interval: time.Second}
		if err := db.RegisterNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.TouchNode(ctx, "m1:4120", start.Add(5*time.Second)); err != nil || !ok {
			t.Fatalf("touch: %v %v", ok, err)
		}
		if ok, _ := db.TouchNode(ctx, "nobody", start); ok {
			t.Error("touching an unregistered node reported it registered")
		}
		// A restart registers again under the same name: one row, the new addresses.
		n.AgentAddr = "m1:5120"
		n.LastSeen = stamp(start.Add(5 * time.Second))
		if err := db.RegisterNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		got, err := db.ManagerNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]ManagerNode{n}, got); diff != "" {
			t.Errorf("nodes (-want +got):\n%s", diff)
		}
	})
}

func TestStampSortsAsTime(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, d := range []time.Duration{1, 100 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		if !(stamp(base) < stamp(base.Add(d))) {
			t.Errorf("stamp(%v) >= stamp(+%v)", base, d)
		}
	}
}
