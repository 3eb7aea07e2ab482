package ops

import (
	"context"
	"time"

	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

// TLS clients report limits.
const (
	DefaultDays = 7
	MaxDays     = 36500
)

// TLSClientsReport is the handshakes recorded on the fleet's ports in a window.
type TLSClientsReport struct {
	Days    int                 `json:"days"`
	Port    int                 `json:"port,omitempty"` // 0: every port
	Clients []store.Observation `json:"clients"`
	// Total counts the distinct client addresses; Legacy those on TLS older than 1.2.
	Total  int `json:"total_clients"`
	Legacy int `json:"legacy_clients"`
}

// CheckTLSClients validates the window and the port.
func CheckTLSClients(days, port int) error {
	if days < 1 || days > MaxDays {
		return invalid("days", "{field} \"%d\" is not a whole number from 1 to %d; e.g. 30", days, MaxDays)
	}
	if port < 0 || port > 65535 {
		return invalid("port", "{field} \"%d\" is not a port number from 1 to 65535; e.g. 4119", port)
	}
	return nil
}

// TLSClients reports the TLS clients seen in the last days on one port (or all, 0): who negotiated
// what, refused handshakes included. A running Manager first writes what it counted a moment ago.
func (o *Ops) TLSClients(ctx context.Context, days, port int) (TLSClientsReport, error) {
	if days == 0 {
		days = DefaultDays
	}
	rep := TLSClientsReport{Days: days, Port: port, Clients: []store.Observation{}}
	if err := CheckTLSClients(days, port); err != nil {
		return rep, err
	}
	o.hooks.Flush(ctx)
	since := o.now().UTC().Add(-time.Duration(days) * 24 * time.Hour).Format(time.RFC3339Nano)
	obs, err := o.store.Observations(ctx, since, port)
	if err != nil {
		return rep, err
	}
	if obs != nil {
		rep.Clients = obs
	}
	all, old := map[string]bool{}, map[string]bool{}
	for _, ob := range obs {
		all[ob.ClientIP] = true
		if Legacy(ob) {
			old[ob.ClientIP] = true
		}
	}
	rep.Total, rep.Legacy = len(all), len(old)
	return rep, nil
}

// older reports whether a version name is a known version older than TLS 1.2.
func older(name string) bool {
	v, err := tlspolicy.ParseVersion(name)
	return err == nil && v < tlspolicy.TLSv1_2
}

// Legacy reports whether an observation is a client on TLS older than 1.2: it negotiated such a version,
// or its handshake did not finish (rejected or failed) while it offered nothing newer.
func Legacy(o store.Observation) bool {
	return older(o.Version) || o.Outcome != "accepted" && older(o.OfferedMax)
}
