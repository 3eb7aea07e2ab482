package fleet

import (
	"slices"
	"strings"
	"testing"

	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

func TestPolicyFor(t *testing.T) {
	var comps []store.Computer
	for i, g := range []string{"a", "b", "c", "d", "e"} {
		comps = append(comps, store.Computer{GUID: "relay-" + g, Relay: true, RelayGroup: store.DefaultRelayGroup, RelayListen: "10.0.0." + string(rune('1'+i)) + ":4122"})
	}
	comps = append(comps, store.Computer{GUID: "relay-other", Relay: true, RelayGroup: "dmz", RelayListen: "10.9.9.9:4122"},
		store.Computer{GUID: "relay-off", Relay: true, RelayGroup: store.DefaultRelayGroup, RelayListen: "10.0.0.99:4122", Deactivated: true})
	snap := &Snapshot{Settings: settings.Values{settings.RelayMinimumTLS: "TLSv1.1", settings.HeartbeatPeriod: "5"}, Computers: comps,
		Bundles: []store.Bundle{{SHA256: strings.Repeat("ab", 32), Name: "b"}}}
	agent := store.Computer{GUID: "agent-1", RelayGroup: store.DefaultRelayGroup}
	p := snap.PolicyFor(agent)
	if p.Relay != nil || p.HeartbeatSeconds != 300 || p.Agent.MinVersion != "TLSv1.2" || len(p.Relays) != 5 || slices.Contains(p.Relays, "10.9.9.9:4122") {
		t.Errorf("agent policy %+v", p)
	}
	if q := snap.PolicyFor(agent); q.Fingerprint() != p.Fingerprint() || !slices.Equal(q.Relays, p.Relays) {
		t.Error("the same agent got another relay order or fingerprint")
	}
	other := snap.PolicyFor(store.Computer{GUID: "agent-2", RelayGroup: store.DefaultRelayGroup})
	sorted := slices.Sorted(slices.Values(other.Relays))
	if !slices.Equal(slices.Sorted(slices.Values(p.Relays)), sorted) {
		t.Error("two agents of a group see different relays")
	}
	r := snap.PolicyFor(comps[0])
	if r.Relay == nil || r.Relay.TLS.MinVersion != "TLSv1.1" || r.Relay.Port != 4122 || slices.Contains(r.Relays, comps[0].RelayListen) {
		t.Errorf("relay policy %+v", r)
	}
	snap.Settings[settings.HeartbeatSeconds] = "2"
	if q := snap.PolicyFor(agent); q.HeartbeatSeconds != 2 || q.Fingerprint() == p.Fingerprint() {
		t.Errorf("heartbeat override: %+v", q)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("computed policy does not validate: %v", err)
	}
}
