// Package fleet computes the policy document each computer runs, from the settings, its relay role and
// group, the group's relays and the published bundles, and releases it: a released policy is stored
// with the computer (so a pending send survives a Manager restart and an offline relay gets it when it
// returns) and heartbeats deliver it until the computer reports its fingerprint. The Manager and dsm_c
// both release through this package.
package fleet

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

// Snapshot is what policies are computed from.
type Snapshot struct {
	Settings  settings.Values
	Computers []store.Computer
	Bundles   []store.Bundle
	// Managers are the agent channels of the online Manager nodes (OnlineManagers), sorted.
	Managers []string
}

// Source is what a snapshot is read from (the store).
type Source interface {
	Settings(ctx context.Context) (map[string]string, error)
	Computers(ctx context.Context) ([]store.Computer, error)
	Bundles(ctx context.Context) ([]store.Bundle, error)
	ManagerNodes(ctx context.Context) ([]store.ManagerNode, error)
}

// Releaser stores released policies: build gets one new serial for the release and returns the rows,
// which are written in one transaction, each only if the computer's policy is still the one it was
// computed from. It returns the GUIDs written.
type Releaser interface {
	Release(ctx context.Context, build func(serial int64) ([]store.ReleaseRow, error)) ([]string, error)
}

// Store is a Source that can release.
type Store interface {
	Source
	Releaser
}

// Load reads a snapshot from the store.
func Load(ctx context.Context, db Source) (*Snapshot, error) {
	vals, err := db.Settings(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := db.Computers(ctx)
	if err != nil {
		return nil, err
	}
	bs, err := db.Bundles(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := db.ManagerNodes(ctx)
	if err != nil {
		return nil, err
	}
	return &Snapshot{Settings: vals, Computers: cs, Bundles: bs, Managers: OnlineManagers(nodes, time.Now())}, nil
}

// NodeOffline is how many of its own refresh intervals a Manager node may go unseen and still count as
// online.
const NodeOffline = 3

// NodeOnline reports whether a node refreshed its last_seen within NodeOffline of its intervals.
func NodeOnline(n store.ManagerNode, now time.Time) bool {
	seen, err := time.Parse(time.RFC3339Nano, n.LastSeen)
	return err == nil && now.Sub(seen) <= NodeOffline*n.Interval
}

// OnlineManagers lists the agent channels of the online nodes, sorted and without repeats.
func OnlineManagers(nodes []store.ManagerNode, now time.Time) []string {
	var out []string
	for _, n := range nodes {
		if n.AgentAddr != "" && NodeOnline(n, now) {
			out = append(out, n.AgentAddr)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// HeartbeatSeconds is the heartbeat interval the settings give: heartbeatPeriodSeconds when set (tests,
// demonstrations), else defaultHeartbeatPeriod in minutes.
func HeartbeatSeconds(vals settings.Values) int {
	hb, _ := strconv.Atoi(vals.Get(settings.HeartbeatSeconds))
	if hb == 0 {
		m, _ := strconv.Atoi(vals.Get(settings.HeartbeatPeriod))
		hb = m * 60
	}
	return hb
}

// Interval is the heartbeat interval a computer runs: the one of the policy it was sent (which it keeps
// until it gets another), else the one the settings give.
func (s *Snapshot) Interval(c store.Computer) time.Duration {
	if c.PolicyJSON != "" {
		var p struct {
			HeartbeatSeconds int `json:"heartbeat_seconds"`
		}
		if json.Unmarshal([]byte(c.PolicyJSON), &p) == nil && p.HeartbeatSeconds > 0 {
			return time.Duration(p.HeartbeatSeconds) * time.Second
		}
	}
	return time.Duration(HeartbeatSeconds(s.Settings)) * time.Second
}

// PolicyFor computes a computer's policy (Serial left 0).
func (s *Snapshot) PolicyFor(c store.Computer) fleetapi.Policy {
	hb := HeartbeatSeconds(s.Settings)
	strong := s.Settings.Get(settings.StrongCiphers) == "true"
	p := fleetapi.Policy{
		PolicyID:         c.PolicyID,
		Direction:        s.Settings.Get(settings.Direction),
		HeartbeatSeconds: hb,
		Agent:            fleetapi.TLSSettings{MinVersion: s.Settings.Get(settings.NewNodeMinimumTLS), StrongCiphers: strong},
		Relays:           []string{},
		Bundles:          []fleetapi.Bundle{},
	}
	if c.Relay {
		p.Relay = &fleetapi.RelayPolicy{Port: tlspolicy.PortRelay, Group: c.RelayGroup,
			TLS: fleetapi.TLSSettings{MinVersion: s.Settings.Get(settings.RelayMinimumTLS), StrongCiphers: strong}}
		for _, d := range s.Computers {
			if d.Deactivated {
				p.Relay.Denied = append(p.Relay.Denied, d.GUID)
			}
		}
		slices.Sort(p.Relay.Denied)
	}
	for _, r := range s.Computers {
		if r.Relay && !r.Deactivated && r.RelayGroup == c.RelayGroup && r.GUID != c.GUID && r.RelayListen != "" {
			p.Relays = append(p.Relays, r.RelayListen)
			if p.RelayIDs == nil {
				p.RelayIDs = map[string]string{}
			}
			p.RelayIDs[r.RelayListen] = r.GUID
		}
	}
	slices.Sort(p.Relays)
	// Each agent gets its group's relays in its own random order (stable for the agent, so that the
	// fingerprint changes only when the group does), which spreads agents over relays.
	h := fnv.New64a()
	h.Write([]byte(c.GUID))
	rng := rand.New(rand.NewPCG(h.Sum64(), 0x746c73666c656574))
	rng.Shuffle(len(p.Relays), func(i, j int) { p.Relays[i], p.Relays[j] = p.Relays[j], p.Relays[i] })
	for _, b := range s.Bundles {
		p.Bundles = append(p.Bundles, fleetapi.Bundle{Name: b.Name, SHA256: b.SHA256, Size: b.Size})
	}
	// With one node there is nothing to fail over to: the field stays out and the policy as it was.
	if len(s.Managers) > 1 {
		p.Managers = slices.Clone(s.Managers)
	}
	return p
}

// Target selects computers for Release.
type Target struct {
	GUIDs      []string // these computers
	RelayGroup string   // the relays of this group
	AllRelays  bool
	All        bool
}

// Selects reports whether the target takes a computer (deactivated computers are skipped elsewhere).
func (t Target) Selects(c store.Computer) bool {
	switch {
	case t.All:
		return true
	case t.AllRelays:
		return c.Relay
	case t.RelayGroup != "":
		return c.Relay && c.RelayGroup == t.RelayGroup
	}
	return slices.Contains(t.GUIDs, c.GUID)
}

// Release computes the selected computers' policies and stores those that changed, with one new serial,
// each only if no other release changed the computer's policy meanwhile. It returns the released policies
// by GUID.
func Release(ctx context.Context, db Releaser, snap *Snapshot, t Target) (map[string]fleetapi.Policy, error) {
	type item struct {
		c  store.Computer
		p  fleetapi.Policy
		fp string
	}
	var items []item
	for _, c := range snap.Computers {
		if c.Deactivated || !t.Selects(c) {
			continue
		}
		p := snap.PolicyFor(c)
		if fp := p.Fingerprint(); fp != c.PolicySent {
			items = append(items, item{c, p, fp})
		}
	}
	out := map[string]fleetapi.Policy{}
	if len(items) == 0 {
		return out, nil
	}
	written, err := db.Release(ctx, func(serial int64) ([]store.ReleaseRow, error) {
		rows := make([]store.ReleaseRow, 0, len(items))
		for i := range items {
			items[i].p.Serial = serial
			b, err := json.Marshal(items[i].p)
			if err != nil {
				return nil, err
			}
			rows = append(rows, store.ReleaseRow{GUID: items[i].c.GUID, Prev: items[i].c.PolicySent, JSON: string(b), Fingerprint: items[i].fp})
		}
		return rows, nil
	})
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if slices.Contains(written, it.c.GUID) {
			out[it.c.GUID] = it.p
		}
	}
	return out, nil
}

// AutoRelease releases every computer's policy when automaticallySendPolicy is on (and only computers
// that never had one otherwise: a new agent always gets its first policy).
func AutoRelease(ctx context.Context, db Releaser, snap *Snapshot) (map[string]fleetapi.Policy, error) {
	if snap.Settings.Get(settings.AutoSendPolicy) == "true" {
		return Release(ctx, db, snap, Target{All: true})
	}
	var fresh []string
	for _, c := range snap.Computers {
		if c.PolicySent == "" {
			fresh = append(fresh, c.GUID)
		}
	}
	return Release(ctx, db, snap, Target{GUIDs: fresh})
}
