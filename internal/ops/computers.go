package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"tlsfleet/internal/fleet"
	"tlsfleet/internal/store"
)

// MissedHeartbeats is how many heartbeats a computer may miss before it counts as offline.
const MissedHeartbeats = 3

// Computer statuses.
const (
	StatusOnline      = "online"
	StatusOffline     = "offline"
	StatusNeverSeen   = "never seen"
	StatusDeactivated = "deactivated"
)

// Status says whether a computer checks in: online until it has missed MissedHeartbeats heartbeats of
// the interval it runs, then offline.
func Status(c store.Computer, interval time.Duration, now time.Time) string {
	if c.Deactivated {
		return StatusDeactivated
	}
	t, err := time.Parse(time.RFC3339Nano, c.LastSeen)
	switch {
	case c.LastSeen == "" || err != nil:
		return StatusNeverSeen
	case now.Sub(t) <= MissedHeartbeats*interval:
		return StatusOnline
	}
	return StatusOffline
}

// ComputerView is a computer with its status, as every front-end lists it.
type ComputerView struct {
	store.Computer
	Status string `json:"status"` // online, offline, never seen, deactivated
	// HeartbeatSeconds is the interval the computer runs (its released policy's, else the settings').
	HeartbeatSeconds int `json:"heartbeat_seconds"`
	// Pending: the computer does not run its policy yet — the released policy is not acknowledged, or
	// its policy changed and was not released (Unsent).
	Pending bool `json:"policy_pending"`
	// Unsent: the policy the computer would get now differs from the one released (automaticallySendPolicy
	// is false and nobody sent it).
	Unsent bool `json:"policy_unsent"`
}

// ListComputers lists the activated computers with their status. A running Manager first writes the
// heartbeats it holds, so that the list is as fresh as its memory.
func (o *Ops) ListComputers(ctx context.Context) ([]ComputerView, error) {
	o.hooks.Flush(ctx)
	snap, err := fleet.Load(ctx, o.store)
	if err != nil {
		return nil, err
	}
	now := o.now()
	views := make([]ComputerView, 0, len(snap.Computers))
	for _, c := range snap.Computers {
		iv := snap.Interval(c)
		v := ComputerView{Computer: c, Status: Status(c, iv, now), HeartbeatSeconds: int(iv / time.Second),
			Pending: c.PolicySent != c.PolicyAcked}
		if !c.Deactivated && c.PolicySent != "" {
			p := snap.PolicyFor(c)
			v.Unsent = p.Fingerprint() != c.PolicySent
			v.Pending = v.Pending || v.Unsent // acknowledged what was sent, but that is not its policy any more
		}
		views = append(views, v)
	}
	return views, nil
}

// findComputer finds a computer by GUID or host name (case-insensitive); a name no computer has, or
// that several have, is an input error on field.
func findComputer(cs []store.Computer, field, name string) (store.Computer, error) {
	if name == "" {
		return store.Computer{}, invalid(field, "{field} needs a computer's host name or GUID (dsm_c -action listcomputers lists them)")
	}
	var exact, folded []store.Computer
	for _, c := range cs {
		switch {
		case c.GUID == name:
			return c, nil
		case c.Hostname == name:
			exact = append(exact, c)
		case strings.EqualFold(c.Hostname, name) || strings.EqualFold(c.GUID, name):
			folded = append(folded, c)
		}
	}
	found := exact
	if len(found) == 0 {
		found = folded // host names are case-insensitive
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return store.Computer{}, conflict(field, "{field} %q: %d computers have that host name: %s; give the GUID", name, len(found), computerNames(found))
	case len(cs) == 0:
		return store.Computer{}, notFound(field, "{field} %q: no computer is activated yet (dsm_c -action createactivationtoken makes a token to activate one)", name)
	}
	return store.Computer{}, notFound(field, "{field} %q: no computer has that host name or GUID; the computers are: %s (dsm_c -action listcomputers lists them)",
		name, computerNames(cs))
}

// FindComputer finds a computer by GUID or host name.
func (o *Ops) FindComputer(ctx context.Context, name string) (store.Computer, error) {
	cs, err := o.store.Computers(ctx)
	if err != nil {
		return store.Computer{}, err
	}
	return findComputer(cs, "name", strings.TrimSpace(name))
}

// ComputerChange is what an operation on one computer did; each operation sets its own field.
type ComputerChange struct {
	GUID        string `json:"guid"`
	Hostname    string `json:"hostname"`
	Deactivated *bool  `json:"deactivated,omitempty"`
	Relay       *bool  `json:"relay,omitempty"`
	RelayGroup  string `json:"relay_group,omitempty"`
	Changed     bool   `json:"changed"`
	// Summary says what happened, in a sentence after the computer's name.
	Summary string `json:"summary"`
	*ReleaseReport
}

// changeComputer is the shared work of the operations on one computer: find it; plan fills in the
// result, sets Changed and returns the summaries; apply makes the change; then the release.
func (o *Ops) changeComputer(ctx context.Context, name string, plan func(c store.Computer, res *ComputerChange) (done, unchanged string),
	apply func(ctx context.Context, c store.Computer) error) (ComputerChange, error) {
	c, err := o.FindComputer(ctx, name)
	if err != nil {
		return ComputerChange{}, err
	}
	res := ComputerChange{GUID: c.GUID, Hostname: c.Hostname}
	done, unchanged := plan(c, &res)
	res.Summary = unchanged
	if !res.Changed {
		return res, nil
	}
	res.Summary = done
	if err := o.writable(); err != nil {
		return ComputerChange{}, err
	}
	before, err := o.sentPolicies(ctx)
	if err != nil {
		return res, err
	}
	if err := apply(ctx, c); err != nil {
		return res, err
	}
	if res.ReleaseReport, err = o.releaseSince(ctx, before); err != nil {
		return res, fmt.Errorf("%s: %s, but releasing the policies failed: %w; send them with dsm_c -action sendpolicy", Who(c), done, err)
	}
	return res, nil
}

// SetDeactivated deactivates a computer (off) or reactivates it: the Manager refuses a deactivated
// computer's heartbeats and sends it no policy; its certificates are put on hold in the fleet's
// revocation list, which the Manager pushes to every relay at once, so that relays refuse it their
// bundles whether or not policies are sent automatically. Reactivation lifts the hold.
func (o *Ops) SetDeactivated(ctx context.Context, name string, off bool) (ComputerChange, error) {
	res, err := o.changeComputer(ctx, name, func(c store.Computer, res *ComputerChange) (string, string) {
		res.Deactivated, res.Changed = &off, c.Deactivated != off
		if off {
			return "deactivated: the Manager refuses its heartbeats and sends it no policy, its certificate is on hold in the fleet's revocation list and relays refuse it (dsm_c -action reactivate undoes it)",
				"already deactivated (unchanged)"
		}
		return "reactivated: the Manager accepts it again and its certificate's hold is lifted", "not deactivated (unchanged)"
	}, func(ctx context.Context, c store.Computer) error {
		return o.store.SetDeactivated(ctx, c.GUID, off)
	})
	if res.Changed {
		o.hooks.CertsChanged(ctx) // also after a failed release: the hold is stored
	}
	return res, err
}

// SetRelay turns a computer's relay role on or off (a policy change).
func (o *Ops) SetRelay(ctx context.Context, name string, on bool) (ComputerChange, error) {
	return o.changeComputer(ctx, name, func(c store.Computer, res *ComputerChange) (string, string) {
		res.Relay, res.Changed = &on, c.Relay != on
		if on {
			return fmt.Sprintf("relay role on (relay group %q)", c.RelayGroup), "already a relay (unchanged)"
		}
		return "relay role off", "not a relay (unchanged)"
	}, func(ctx context.Context, c store.Computer) error {
		return o.store.SetRelay(ctx, c.GUID, on)
	})
}

// AssignRelayGroup puts a computer in a relay group that exists (a policy change). groupField names the
// group's field in errors.
func (o *Ops) AssignRelayGroup(ctx context.Context, name, group string) (ComputerChange, error) {
	group = strings.TrimSpace(group)
	if group == "" {
		return ComputerChange{}, invalid("relay_group", "{field} needs a relay group (dsm_c -action listrelaygroups lists them)")
	}
	if err := o.findGroup(ctx, "relay_group", group); err != nil {
		return ComputerChange{}, err
	}
	return o.changeComputer(ctx, name, func(c store.Computer, res *ComputerChange) (string, string) {
		res.RelayGroup, res.Changed = group, c.RelayGroup != group
		return fmt.Sprintf("relay group %q -> %q", c.RelayGroup, group), fmt.Sprintf("already in relay group %q (unchanged)", group)
	}, func(ctx context.Context, c store.Computer) error {
		return o.store.AssignRelayGroup(ctx, c.GUID, group)
	})
}
