package manager

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"tlsfleet/internal/fleet"
	"tlsfleet/internal/store"
)

// Several Manager nodes on one database: each registers itself at start and refreshes its last_seen on
// every round of its fleet loop; the loop's periodic jobs (automatic release and the pushes it queues,
// manager-initiated polls, the CRL's re-signing, a release when the set of online nodes changes) run on
// the node that holds the fleet lease, so they run once however many nodes are up. A node that dies
// stops renewing its lease, which expires after leaseTTL: another node takes the jobs over then.

// fleetLease is the name of the lease of the fleet loop's jobs.
const fleetLease = "fleet"

// leaseTTL is how long a fleet lease lasts unrenewed: NodeOffline rounds of the fleet loop, the time
// after which the other nodes list its holder as offline too.
func (m *Manager) leaseTTL() time.Duration { return fleet.NodeOffline * m.opts.FlushInterval }

// nodeState is this node as registered.
type nodeState struct {
	mu      sync.Mutex
	self    store.ManagerNode
	leader  bool          // this node held the fleet lease at the last round
	online  []string      // the online nodes' agent channels at the last round (the leader's view)
	started bool          // registered: Close releases the lease
	rounds  atomic.Int64  // finished rounds of the fleet loop (tests wait on it)
	stopped chan struct{} // closed when the fleet loop has returned
}

// registerNode records this node in the database (name, addresses, version, start) and tries for the
// fleet lease.
func (m *Manager) registerNode(ctx context.Context) error {
	console, agent := m.ops.NodeAddresses(m.ConsoleAddr())
	now := time.Now().UTC().Format(time.RFC3339Nano)
	n := store.ManagerNode{Name: m.folder.NodeName, ConsoleAddr: console, AgentAddr: agent, Version: m.opts.Version,
		StartedAt: now, LastSeen: now, Interval: m.opts.FlushInterval}
	m.node.mu.Lock()
	m.node.self, m.node.started = n, true // the fleet loop registers it again if this fails
	m.node.mu.Unlock()
	if err := m.db.RegisterNode(ctx, n); err != nil {
		return err
	}
	m.log.Info("manager node registered", "node", n.Name, "agent_channel", agent, "console", console)
	m.takeLease(ctx)
	return nil
}

// touchNode refreshes this node's last_seen (registering again if its row was removed) and renews or
// takes the fleet lease; it reports whether this node runs the fleet jobs this round.
func (m *Manager) touchNode(ctx context.Context) bool {
	m.node.mu.Lock()
	self := m.node.self
	m.node.mu.Unlock()
	ok, err := m.db.TouchNode(ctx, self.Name, time.Now())
	if err != nil {
		m.log.Warn("refreshing this node's last seen", "node", self.Name, "err", err)
	} else if !ok {
		if err := m.db.RegisterNode(ctx, self); err != nil {
			m.log.Warn("registering this node again", "node", self.Name, "err", err)
		}
	}
	return m.takeLease(ctx)
}

// takeLease renews or takes the fleet lease and logs when this node starts or stops running the jobs.
// A database error counts as not holding it: two nodes must never both run the jobs.
func (m *Manager) takeLease(ctx context.Context) bool {
	ok, err := m.db.TryLease(ctx, fleetLease, m.folder.NodeName, m.leaseTTL())
	if err != nil {
		m.log.Warn("taking the fleet lease", "node", m.folder.NodeName, "err", err)
		ok = false
	}
	m.node.mu.Lock()
	was := m.node.leader
	m.node.leader = ok
	m.node.mu.Unlock()
	if ok != was {
		if ok {
			m.log.Info("this node runs the fleet jobs (it holds the fleet lease)", "node", m.folder.NodeName)
		} else {
			m.log.Info("another node runs the fleet jobs (it holds the fleet lease)", "node", m.folder.NodeName)
		}
	}
	return ok
}

// isLeader reports whether this node held the fleet lease at the last round.
func (m *Manager) isLeader() bool {
	m.node.mu.Lock()
	defer m.node.mu.Unlock()
	return m.node.leader
}

// nodesChanged reports whether the online nodes differ from the last round's: the policies list them,
// so the leader releases again.
func (m *Manager) nodesChanged(ctx context.Context) bool {
	nodes, err := m.db.ManagerNodes(ctx)
	if err != nil {
		m.log.Warn("reading the manager nodes", "err", err)
		return false
	}
	online := fleet.OnlineManagers(nodes, time.Now())
	m.node.mu.Lock()
	defer m.node.mu.Unlock()
	if slices.Equal(online, m.node.online) {
		return false
	}
	m.node.online = online
	return true
}

// leaveNodes gives up the fleet lease at a clean stop, so that another node takes the jobs at once.
func (m *Manager) leaveNodes(ctx context.Context) {
	m.node.mu.Lock()
	started := m.node.started
	m.node.mu.Unlock()
	if !started {
		return
	}
	if err := m.db.ReleaseLease(ctx, fleetLease, m.folder.NodeName); err != nil {
		m.log.Warn("releasing the fleet lease", "node", m.folder.NodeName, "err", err)
	}
}
