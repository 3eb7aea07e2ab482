package ops

import (
	"context"
	"fmt"
	"strings"

	"tlsfleet/internal/fleet"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

// PolicyEntry is a computer and the fingerprint of a policy.
type PolicyEntry struct {
	GUID        string `json:"guid"`
	Hostname    string `json:"hostname"`
	Fingerprint string `json:"fingerprint"`
	Serial      int64  `json:"serial,omitempty"`

	// Name is how a command names it: the host name, or the GUID when several share the host name.
	Name  string `json:"-"`
	Relay bool   `json:"-"`
}

func newEntry(c store.Computer, fp string, hostCount map[string]int) PolicyEntry {
	name := c.Hostname
	if hostCount[strings.ToLower(c.Hostname)] > 1 || name == "" {
		name = c.GUID
	}
	return PolicyEntry{GUID: c.GUID, Hostname: c.Hostname, Fingerprint: fp, Name: name, Relay: c.Relay}
}

func countHosts(cs []store.Computer) map[string]int {
	n := map[string]int{}
	for _, c := range cs {
		n[strings.ToLower(c.Hostname)]++
	}
	return n
}

// ReleaseReport is what a change did to the policies (part of the result of every changing operation).
type ReleaseReport struct {
	AutoSend bool `json:"automatically_send_policy"`
	// Released are the computers whose released policy changed (a running Manager pushes it).
	Released []PolicyEntry `json:"released"`
	// Unsent are the computers whose policy changed but was not released (automaticallySendPolicy is
	// false): sendpolicy sends it.
	Unsent []PolicyEntry `json:"unsent"`
	// Active counts the computers not deactivated.
	Active int `json:"-"`
}

// sentPolicies returns the fingerprint of every computer's released policy, to compare after a change.
func (o *Ops) sentPolicies(ctx context.Context) (map[string]string, error) {
	cs, err := o.store.Computers(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(cs))
	for _, c := range cs {
		out[c.GUID] = c.PolicySent
	}
	return out, nil
}

// releaseSince runs the automatic release after a change and reports every computer whose released
// policy differs from before (released here or, meanwhile, by a running Manager) and every computer
// whose policy changed but stays unsent.
func (o *Ops) releaseSince(ctx context.Context, before map[string]string) (*ReleaseReport, error) {
	snap, err := fleet.Load(ctx, o.store)
	if err != nil {
		return nil, err
	}
	released, err := fleet.AutoRelease(ctx, o.store, snap)
	if err != nil {
		return nil, err
	}
	after, err := fleet.Load(ctx, o.store)
	if err != nil {
		return nil, err
	}
	r := &ReleaseReport{AutoSend: after.Settings.Get(settings.AutoSendPolicy) == "true", Released: []PolicyEntry{}, Unsent: []PolicyEntry{}}
	hosts := countHosts(after.Computers)
	for _, c := range after.Computers {
		if c.Deactivated {
			continue
		}
		r.Active++
		if old, ok := before[c.GUID]; !ok || old != c.PolicySent {
			e := newEntry(c, c.PolicySent, hosts)
			e.Serial = released[c.GUID].Serial
			r.Released = append(r.Released, e)
		} else if p := after.PolicyFor(c); p.Fingerprint() != c.PolicySent {
			r.Unsent = append(r.Unsent, newEntry(c, p.Fingerprint(), hosts))
		}
	}
	if len(r.Released) > 0 {
		o.hooks.FleetChanged(ctx)
	}
	return r, nil
}

// SendTarget selects the computers of SendPolicy: exactly one of its fields.
type SendTarget struct {
	Computers  []string `json:"computers,omitempty"`   // host names or GUIDs
	RelayGroup string   `json:"relay_group,omitempty"` // the relays of this group
	AllRelays  bool     `json:"all_relays,omitempty"`  // every relay
}

// Check validates the target without the database.
func (t SendTarget) Check() error {
	const targets = "{field} takes exactly one of computers (host names or GUIDs), relay_group or all_relays"
	n := 0
	for _, set := range []bool{len(t.Computers) > 0, t.RelayGroup != "", t.AllRelays} {
		if set {
			n++
		}
	}
	if n != 1 {
		return invalid("target", targets)
	}
	for _, c := range t.Computers {
		if strings.TrimSpace(c) == "" {
			return invalid("computers", "{field} needs a computer's host name or GUID (dsm_c -action listcomputers lists them)")
		}
	}
	return nil
}

// SendResult is what SendPolicy did.
type SendResult struct {
	Released []PolicyEntry `json:"released"` // got a new policy
	Current  []PolicyEntry `json:"current"`  // already had the current one
	// What names the target in a sentence ("relay group \"G\"", "the fleet", a computer).
	What string `json:"-"`
}

// SendPolicy releases the current policy to the target's computers (the page's "send policy"): those
// whose policy changed get it with one new serial; a running Manager pushes it, and a computer that is
// offline gets it at its next heartbeat.
func (o *Ops) SendPolicy(ctx context.Context, target SendTarget) (SendResult, error) {
	res := SendResult{Released: []PolicyEntry{}, Current: []PolicyEntry{}}
	if err := target.Check(); err != nil {
		return res, err
	}
	if err := o.writable(); err != nil {
		return res, err
	}
	var t fleet.Target
	switch {
	case len(target.Computers) > 0:
		cs, err := o.store.Computers(ctx)
		if err != nil {
			return res, err
		}
		for _, name := range target.Computers {
			c, err := findComputer(cs, "computers", strings.TrimSpace(name))
			if err != nil {
				return res, err
			}
			if c.Deactivated {
				return res, invalid("computers", "{field} %q: %s is deactivated and gets no policy; reactivate it first (dsm_c -action reactivate -name %s)",
					name, Who(c), c.GUID)
			}
			t.GUIDs = append(t.GUIDs, c.GUID)
			res.What = Who(c)
		}
		if len(t.GUIDs) > 1 {
			res.What = fmt.Sprintf("%d computers", len(t.GUIDs))
		}
	case target.RelayGroup != "":
		group := strings.TrimSpace(target.RelayGroup)
		if err := o.findGroup(ctx, "relay_group", group); err != nil {
			return res, err
		}
		t.RelayGroup, res.What = group, fmt.Sprintf("relay group %q", group)
	default:
		t.AllRelays, res.What = true, "the fleet"
	}
	snap, err := fleet.Load(ctx, o.store)
	if err != nil {
		return res, err
	}
	released, err := fleet.Release(ctx, o.store, snap, t)
	if err != nil {
		return res, err
	}
	hosts := countHosts(snap.Computers)
	for _, c := range snap.Computers {
		if c.Deactivated || !t.Selects(c) {
			continue
		}
		if p, ok := released[c.GUID]; ok {
			e := newEntry(c, p.Fingerprint(), hosts)
			e.Serial = p.Serial
			res.Released = append(res.Released, e)
		} else {
			res.Current = append(res.Current, newEntry(c, c.PolicySent, hosts))
		}
	}
	if len(res.Released) > 0 {
		o.hooks.FleetChanged(ctx)
	}
	return res, nil
}
