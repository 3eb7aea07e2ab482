package manager

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"tlsfleet/internal/fleet"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

// fleetState is the agent channel's in-memory view of the computers: heartbeats are answered from it and
// recorded in it, and written to the database in batches (one transaction a second, not one per
// heartbeat) — the path a Manager node serving 100,000 agents at one heartbeat a minute needs. It is
// reloaded from the database only when the fleet counter says something changed there.
type fleetState struct {
	mu      sync.Mutex
	comps   map[string]*compState
	pending map[string]store.CheckIn
	dirty   bool // a relay's address changed: other computers' policies may change
	version int64
	// direction and interval are the settings' communication direction and heartbeat interval as of the
	// last reload (the manager-initiated polls follow them).
	direction string
	interval  time.Duration
}

type compState struct {
	c        store.Computer
	policy   *fleetapi.Policy
	lastSeq  uint64
	lastSeen time.Time
}

// refreshFleet reloads the computers from the database, keeping what heartbeats taught since.
func (m *Manager) refreshFleet(ctx context.Context) error {
	// Not during a flush: a flush takes the pending heartbeats out of memory before it writes them, so
	// a snapshot read in between would have neither (a manager-initiated agent's address was lost so,
	// and nobody polled it again: it sends no heartbeat to bring it back).
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	// The version first: a change committed between the reads is then seen again by the next poll.
	ver, err := m.db.FleetVersion(ctx)
	if err != nil {
		return err
	}
	snap, err := fleet.Load(ctx, m.db)
	if err != nil {
		return err
	}
	m.fleet.mu.Lock()
	defer m.fleet.mu.Unlock()
	next := make(map[string]*compState, len(snap.Computers))
	for _, c := range snap.Computers {
		st := &compState{c: c, lastSeq: c.LastSeq}
		if t, err := time.Parse(time.RFC3339Nano, c.LastSeen); err == nil {
			st.lastSeen = t
		}
		if old := m.fleet.comps[c.GUID]; old != nil {
			st.lastSeq = max(st.lastSeq, old.lastSeq)
			if old.lastSeen.After(st.lastSeen) {
				st.lastSeen = old.lastSeen
			}
			if p, ok := m.fleet.pending[c.GUID]; ok {
				st.c.PolicyAcked, st.c.RelayListen, st.c.Listen = p.PolicyAcked, p.RelayListen, p.Listen
			}
		}
		if c.PolicyJSON != "" {
			var p fleetapi.Policy
			if json.Unmarshal([]byte(c.PolicyJSON), &p) == nil {
				st.policy = &p
			}
		}
		next[c.GUID] = st
	}
	m.fleet.comps, m.fleet.version = next, ver
	m.fleet.direction = snap.Settings.Get(settings.Direction)
	m.fleet.interval = time.Duration(fleet.HeartbeatSeconds(snap.Settings)) * time.Second
	return nil
}

// release runs the automatic release, refreshes the cache and pushes what changed.
func (m *Manager) release(ctx context.Context) {
	snap, err := fleet.Load(ctx, m.db)
	if err != nil {
		m.log.Error("computing policies", "err", err)
		return
	}
	if _, err := fleet.AutoRelease(ctx, m.db, snap); err != nil {
		m.log.Error("releasing policies", "err", err)
		return
	}
	m.syncFleet(ctx)
}

// syncFleet reloads the cache and queues a push of every released policy an agent has not confirmed.
func (m *Manager) syncFleet(ctx context.Context) {
	if err := m.refreshFleet(ctx); err != nil {
		m.log.Error("reading computers", "err", err)
		return
	}
	m.fleet.mu.Lock()
	var todo []agentJob
	for _, st := range m.fleet.comps {
		if st.policy != nil && st.c.PolicySent != st.c.PolicyAcked && st.c.Listen != "" && !st.c.Deactivated && st.policy.Direction != fleetapi.AgentInitiated {
			todo = append(todo, agentJob{kind: jobPush, guid: st.c.GUID, addr: st.c.Listen, policy: st.policy, fp: st.c.PolicySent})
		}
	}
	live := make(map[string]bool, len(m.fleet.comps))
	for guid, st := range m.fleet.comps {
		live[guid] = !st.c.Deactivated
	}
	m.fleet.mu.Unlock()
	m.pusher.forget(live)
	for _, j := range todo {
		m.pusher.enqueue(j)
	}
}

// fleetLoop flushes heartbeats, refreshes this node's registration and lease, and follows changes made
// elsewhere (dsm_c, another node). The jobs that must run once across nodes (releases and the pushes
// they queue, manager-initiated polls, the CRL's re-signing) run on the lease holder only; every node
// keeps its cache and its CRL current, to answer heartbeats and check certificates.
func (m *Manager) fleetLoop(ctx context.Context) {
	t := time.NewTicker(m.opts.FlushInterval)
	defer t.Stop()
	lastPoll := time.Time{}
	for {
		select {
		case <-ctx.Done():
			m.flushCheckIns(context.WithoutCancel(ctx))
			return
		case <-t.C:
		}
		if m.fleetRound(ctx, time.Since(lastPoll)) {
			lastPoll = time.Now()
			m.pollAgents()
		}
		m.node.rounds.Add(1)
	}
}

// fleetRound is one round of the fleet loop; it reports whether the manager-initiated poll is due (on
// the lease holder, when the last poll is sincePoll ago).
func (m *Manager) fleetRound(ctx context.Context, sincePoll time.Duration) bool {
	leader := m.touchNode(ctx)
	dirty := m.flushCheckIns(ctx)
	m.certsChanged(ctx, leader) // a deactivation or renewal elsewhere (dsm_c, another node): pushed to relays at once
	changed := dirty
	if ver, err := m.db.FleetVersion(ctx); err == nil {
		m.fleet.mu.Lock()
		changed = changed || ver != m.fleet.version // a role, group or bundle changed elsewhere (dsm_c)
		m.fleet.mu.Unlock()
	}
	if m.nodesChanged(ctx) {
		changed = true // the policies list the online nodes
	}
	switch {
	case changed && leader:
		m.release(ctx) // released as the settings say
	case changed:
		if err := m.refreshFleet(ctx); err != nil {
			m.log.Error("reading computers", "err", err)
		}
	}
	m.fleet.mu.Lock()
	direction, every := m.fleet.direction, m.fleet.interval
	m.fleet.mu.Unlock()
	return leader && direction == fleetapi.ManagerInitiated && sincePoll >= every
}

// pollAgents is the manager-initiated direction: the Manager asks every agent for its status on 4118 and
// pushes its policy when the agent runs another.
func (m *Manager) pollAgents() {
	m.fleet.mu.Lock()
	var todo []agentJob
	for _, st := range m.fleet.comps {
		if st.c.Listen != "" && !st.c.Deactivated {
			todo = append(todo, agentJob{kind: jobPoll, guid: st.c.GUID, addr: st.c.Listen, policy: st.policy, fp: st.c.PolicySent})
		}
	}
	m.fleet.mu.Unlock()
	for _, j := range todo {
		m.pusher.enqueue(j)
	}
}

// flushCheckIns writes the heartbeats counted since the last flush; it reports whether a relay's address
// changed.
func (m *Manager) flushCheckIns(ctx context.Context) bool {
	m.flushMu.Lock() // one flush at a time: a failed batch is put back before the next one is taken
	defer m.flushMu.Unlock()
	m.fleet.mu.Lock()
	batch := make([]store.CheckIn, 0, len(m.fleet.pending))
	for _, c := range m.fleet.pending {
		batch = append(batch, c)
	}
	m.fleet.pending = map[string]store.CheckIn{}
	dirty := m.fleet.dirty
	m.fleet.dirty = false
	m.fleet.mu.Unlock()
	if err := m.db.RecordCheckIns(ctx, batch); err != nil {
		m.log.Error("recording heartbeats; kept for the next batch", "err", err, "count", len(batch))
		m.fleet.mu.Lock()
		for _, c := range batch {
			if _, newer := m.fleet.pending[c.GUID]; !newer {
				m.fleet.pending[c.GUID] = c
			}
		}
		m.fleet.dirty = m.fleet.dirty || dirty
		m.fleet.mu.Unlock()
		return false
	}
	return dirty
}

// recordAck notes in memory that an agent confirmed a policy the database now says it acknowledged.
func (m *Manager) recordAck(guid, fp string) {
	m.fleet.mu.Lock()
	defer m.fleet.mu.Unlock()
	if st := m.fleet.comps[guid]; st != nil {
		st.c.PolicyAcked = fp
	}
	if c, ok := m.fleet.pending[guid]; ok { // a heartbeat not yet written must not undo the ack
		c.PolicyAcked = fp
		m.fleet.pending[guid] = c
	}
}

// recordStatus notes an agent's answer to a manager-initiated poll, for the next batch. An agent that
// sends no heartbeats (manager-initiated) confirms a renewal by presenting the new certificate here.
//
// A relay polled here sends no heartbeat either, whose answer would name a newer CRL: one that holds an
// older list than the Manager's (a push it missed while offline) gets the current one now.
func (m *Manager) recordStatus(guid, fp, serial string, crl *int64) {
	m.fleet.mu.Lock()
	st := m.fleet.comps[guid]
	if st == nil {
		m.fleet.mu.Unlock()
		return
	}
	if cur := m.currentCRL(); crl != nil && cur != nil && *crl < cur.Number && st.c.Relay && !st.c.Deactivated && st.c.Listen != "" {
		m.pusher.enqueue(agentJob{kind: jobCRL, guid: guid, addr: st.c.Listen})
	}
	confirm := st.c.CertPrevSerial != "" && serial == st.c.CertSerial
	st.lastSeen = time.Now()
	st.c.PolicyAcked = fp
	m.fleet.pending[guid] = store.CheckIn{GUID: guid, LastSeen: st.lastSeen.UTC().Format(time.RFC3339Nano), Seq: st.lastSeq,
		Listen: st.c.Listen, RelayListen: st.c.RelayListen, NegotiatedTLS: st.c.NegotiatedTLS, AgentVersion: st.c.AgentVersion,
		Platform: st.c.Platform, TLSVersions: st.c.TLSVersions, PolicyAcked: fp, Legacy: st.c.Legacy}
	m.fleet.mu.Unlock()
	if confirm {
		m.confirmRenewal(m.runCtx, guid, serial)
	}
}
