package fleet

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/store"
)

// Policies list the online nodes' agent channels when there are several, and nothing with one (a
// single Manager's policies, and their fingerprints, are as before).
func TestPolicyListsOnlineManagers(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	node := func(addr string, ago time.Duration) store.ManagerNode {
		return store.ManagerNode{Name: addr, AgentAddr: addr, LastSeen: now.Add(-ago).Format(time.RFC3339Nano), Interval: time.Second}
	}
	tests := []struct {
		name  string
		nodes []store.ManagerNode
		want  []string
	}{
		{"no node", nil, nil},
		{"one node", []store.ManagerNode{node("a:4120", 0)}, nil},
		{"two online", []store.ManagerNode{node("b:4120", time.Second), node("a:4120", 0)}, []string{"a:4120", "b:4120"}},
		{"one of two offline", []store.ManagerNode{node("a:4120", 0), node("b:4120", 4*time.Second)}, nil},
		{"three, one offline", []store.ManagerNode{node("c:4120", 0), node("a:4120", 0), node("b:4120", time.Minute)}, []string{"a:4120", "c:4120"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := &Snapshot{Settings: nil, Managers: OnlineManagers(tt.nodes, now)}
			p := snap.PolicyFor(store.Computer{GUID: "g"})
			if diff := cmp.Diff(tt.want, p.Managers); diff != "" {
				t.Errorf("managers (-want +got):\n%s", diff)
			}
			if len(tt.want) == 0 {
				if single := (&Snapshot{}).PolicyFor(store.Computer{GUID: "g"}); single.Fingerprint() != p.Fingerprint() {
					t.Error("with one node online the policy differs from a single Manager's")
				}
			}
		})
	}
}
