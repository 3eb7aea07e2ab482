package telemetry

import "time"

// A User-Agent is whatever the client writes, and each distinct one is a row kept for the retention
// period: a client that sends a new one with every request would grow the telemetry at will (as the
// listener prevents for server names, which it records as "other" unless they are the certificate's).
// So the User-Agents of clients that did not authenticate with a fleet certificate are bounded: each
// port keeps the first MaxUserAgentsPerPortDay distinct ones of a UTC day, and records the rest as
// OtherUserAgent. A computer with a fleet certificate (Key.AgentGUID) is named by its certificate and
// keeps its own.

// User-Agent bounds.
const (
	// MaxUserAgentsPerPortDay is how many distinct User-Agents of unauthenticated clients one port
	// records per UTC day; later ones are recorded as OtherUserAgent.
	MaxUserAgentsPerPortDay = 64
	// OtherUserAgent stands for the User-Agents past the bound.
	OtherUserAgent = "other"
	// maxUserAgentPorts bounds the ports whose User-Agents are tracked in a day (the Manager has two).
	maxUserAgentPorts = 64
)

// userAgents are the distinct User-Agents each port recorded today.
type userAgents struct {
	day    string                      // YYYY-MM-DD in UTC
	byPort map[int]map[string]struct{} // port → User-Agents kept today
}

// label is what to record for a handshake's User-Agent on a port at now. The caller holds the
// Recorder's lock.
func (u *userAgents) label(k Key, now time.Time) string {
	if k.UserAgent == "" || k.AgentGUID != "" || k.Node != "" {
		return k.UserAgent
	}
	if day := now.UTC().Format(time.DateOnly); day != u.day || u.byPort == nil {
		u.day, u.byPort = day, map[int]map[string]struct{}{}
	}
	seen := u.byPort[k.Port]
	if seen == nil {
		if len(u.byPort) >= maxUserAgentPorts {
			return OtherUserAgent
		}
		seen = map[string]struct{}{}
		u.byPort[k.Port] = seen
	}
	if _, ok := seen[k.UserAgent]; ok {
		return k.UserAgent
	}
	if len(seen) >= MaxUserAgentsPerPortDay {
		return OtherUserAgent
	}
	seen[k.UserAgent] = struct{}{}
	return k.UserAgent
}
