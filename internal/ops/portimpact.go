package ops

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

// What a settings change does to the Manager's own ports (4119, 4120): a change of the settings layer
// of the TLS policy is applied to them by a running Manager at once — and the connections it forbids are
// closed — so its message must say which versions each port accepts before and after, and which
// clients recently seen on the port it cuts off. "No computer's policy changed" alone hides that a
// TLS 1.0 agent is about to lose the Manager.

// CutOffDays is the window of handshake telemetry a change message looks back on for clients it cuts off.
const CutOffDays = DefaultDays

// PortImpact is what a change does to one of the Manager's ports.
type PortImpact struct {
	Port           int      `json:"port"`
	Role           string   `json:"role"` // console, agent channel
	VersionsBefore []string `json:"versions_before"`
	Versions       []string `json:"versions"`
	SuitesBefore   int      `json:"suites_before"`
	Suites         int      `json:"suites"`
	Changed        bool     `json:"changed"`
	// CutOff are the clients seen on the port in the last CutOffDays days whose version or suite the
	// new policy no longer accepts.
	CutOff []CutOffClient `json:"cut_off"`
}

// CutOffClient is a client a change cuts off, from the recorded handshakes.
type CutOffClient struct {
	Address   string `json:"address"`
	Computer  string `json:"computer,omitempty"` // host name (GUID), when it presented an agent certificate
	UserAgent string `json:"user_agent,omitempty"`
	Version   string `json:"version"`
	Suite     string `json:"cipher_suite"`
	LastSeen  string `json:"last_seen"`
}

// portPolicies explains the Manager's ports' policies under the install folder's files and the given
// settings values.
func (o *Ops) portPolicies(layers tlspolicy.Layers, vals map[string]string) []*tlspolicy.Explanation {
	layers.Settings = settings.Values(vals).Policy()
	var out []*tlspolicy.Explanation
	for _, l := range o.managerListeners() {
		out = append(out, tlspolicy.Explain(l, layers))
	}
	return out
}

func (o *Ops) managerListeners() []tlspolicy.Listener {
	return tlspolicy.ManagerListenersOn(o.folder.ConsolePort, o.folder.HeartbeatPort)
}

// portLayers reads the install folder's policy files and the Manager's certificate.
func (o *Ops) portLayers() (tlspolicy.Layers, error) {
	layers, err := tlspolicy.LoadDir(o.folder.Dir)
	if err != nil {
		return layers, fmt.Errorf("reading the TLS policy files to tell what the change does to the Manager's ports: %w", err)
	}
	if ci, err := tlspolicy.LoadCertFile(o.folder.Path(pki.ServerFile)); err == nil {
		layers.Cert = ci
	}
	return layers, nil
}

// portImpact says what changing the settings from before to after does to the Manager's ports; nil when
// the change is not part of their TLS policy (restrictManagerMinimumTLSProtocol always is, even when
// java.security already decides). A change under which a port could complete no handshake (the
// Manager would keep the port's last good policy) is an error on field value: nothing is stored.
func (o *Ops) portImpact(ctx context.Context, name, value string, before map[string]string) ([]PortImpact, error) {
	after := map[string]string{}
	for k, v := range before {
		after[k] = v
	}
	after[name] = value
	if settings.Values(before).Policy() == settings.Values(after).Policy() {
		return nil, nil
	}
	layers, err := o.portLayers()
	if err != nil {
		return nil, err
	}
	wasEx, willEx := o.portPolicies(layers, before), o.portPolicies(layers, after)
	was, will := policiesOf(wasEx), policiesOf(willEx)
	out := make([]PortImpact, len(will))
	for i, p := range will {
		out[i] = PortImpact{Port: p.Listener.Port, Role: roleName(p.Listener.Role), VersionsBefore: versionNames(was[i].Versions),
			Versions: versionNames(p.Versions), SuitesBefore: len(was[i].Suites), Suites: len(p.Suites), CutOff: []CutOffClient{}}
		out[i].Changed = !slices.Equal(out[i].VersionsBefore, out[i].Versions) || !slices.Equal(was[i].Suites, p.Suites) ||
			!slices.Equal(was[i].TLS13Suites, p.TLS13Suites)
		if lo := willEx[i].LockOut(); lo != nil && wasEx[i].LockOut() == nil {
			return nil, invalid("value", "{field}: %s=%s refused, nothing changed: %v (the files in %s allow %s today); choose a lower minimum or change java.security first",
				name, value, lo, o.folder.Dir, strings.Join(out[i].VersionsBefore, ", "))
		}
	}
	if name != settings.ManagerMinimumTLS && !slices.ContainsFunc(out, func(p PortImpact) bool { return p.Changed }) {
		return nil, nil // a relay or agent setting: the Manager's ports are not its business
	}
	if err := o.fillCutOff(ctx, out, will); err != nil {
		return nil, err
	}
	return out, nil
}

// fillCutOff lists, per changed port, the clients recently seen on it that the new policy refuses.
func (o *Ops) fillCutOff(ctx context.Context, out []PortImpact, will []*tlspolicy.Policy) error {
	o.hooks.Flush(ctx)
	since := o.now().UTC().Add(-CutOffDays * 24 * time.Hour).Format(time.RFC3339Nano)
	var names map[string]string
	for i := range out {
		if !out[i].Changed {
			continue
		}
		obs, err := o.store.Observations(ctx, since, out[i].Port)
		if err != nil {
			return err
		}
		seen := map[CutOffClient]bool{}
		for _, ob := range obs { // newest first: each client is listed with its last handshake
			if ob.Node != "" || ob.Outcome != "accepted" || !forbids(will[i], ob) {
				continue
			}
			if names == nil {
				if names, err = o.computerNames(ctx); err != nil {
					return err
				}
			}
			c := CutOffClient{Address: ob.ClientIP, Computer: names[ob.AgentGUID], UserAgent: ob.UserAgent, Version: ob.Version, Suite: ob.Suite}
			if !seen[c] {
				seen[c] = true
				c.LastSeen = ob.LastSeen
				out[i].CutOff = append(out[i].CutOff, c)
			}
		}
	}
	return nil
}

// forbids reports whether p refuses what a recorded handshake negotiated.
func forbids(p *tlspolicy.Policy, ob store.Observation) bool {
	v, err := tlspolicy.ParseVersion(ob.Version)
	if err != nil {
		return false
	}
	if !p.Allows(v) {
		return true
	}
	s, ok := tlspolicy.LookupSuite(ob.Suite)
	if !ok {
		return false
	}
	suites := p.Suites
	if v == tlspolicy.TLSv1_3 {
		suites = p.TLS13Suites
	}
	return !slices.Contains(suites, s.ID)
}

// computerNames maps GUIDs to "host name (GUID)".
func (o *Ops) computerNames(ctx context.Context) (map[string]string, error) {
	cs, err := o.store.Computers(ctx)
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(cs))
	for _, c := range cs {
		names[c.GUID] = Who(c)
	}
	return names, nil
}

func policiesOf(exs []*tlspolicy.Explanation) []*tlspolicy.Policy {
	out := make([]*tlspolicy.Policy, len(exs))
	for i, ex := range exs {
		out[i] = ex.Policy
	}
	return out
}

func roleName(r tlspolicy.Role) string {
	if r == tlspolicy.RoleAgentChannel {
		return "agent channel"
	}
	return string(r)
}

func versionNames(vs []tlspolicy.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}
