package ops

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/store"
)

// A node is online through three of its intervals unseen, offline after.
func TestListManagerNodes(t *testing.T) {
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	for _, n := range []store.ManagerNode{
		{Name: "a", ConsoleAddr: "a:4119", AgentAddr: "a:4120", Version: "1", StartedAt: at(-time.Hour), LastSeen: at(-2999 * time.Millisecond), Interval: time.Second},
		{Name: "b", ConsoleAddr: "b:4119", AgentAddr: "b:4120", Version: "1", StartedAt: at(-time.Hour), LastSeen: at(-3001 * time.Millisecond), Interval: time.Second},
		{Name: "c", ConsoleAddr: "c:4119", AgentAddr: "c:4120", Version: "2", StartedAt: at(-time.Hour), LastSeen: at(-time.Minute), Interval: time.Minute},
	} {
		if err := db.RegisterNode(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	o := New(db, nil, nil)
	o.now = func() time.Time { return now }
	got, err := o.ListManagerNodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, v := range got {
		status[v.Name] = v.Status
	}
	want := map[string]string{"a": StatusOnline, "b": StatusOffline, "c": StatusOnline}
	if diff := cmp.Diff(want, status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}
