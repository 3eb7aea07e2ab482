package tlspolicy

import "fmt"

// Role says which part of the fleet a listener belongs to, and so which layers apply to it.
type Role string

// The roles of tlsfleet's listeners.
const (
	RoleConsole      Role = "console"       // Manager 4119: console, REST API, downloads
	RoleAgentChannel Role = "agent-channel" // Manager 4120: activation and heartbeats
	RoleRelay        Role = "relay"         // Relay 4122
	RoleAgent        Role = "agent"         // Agent 4118
)

// Listener is one TLS port of the fleet.
type Listener struct {
	Port int  `json:"port"`
	Role Role `json:"role"`
}

// Default ports: the one table of tlsfleet's port numbers, which the Manager, the agent, install and
// fleetapi's users share.
const (
	PortAgent        = 4118
	PortConsole      = 4119
	PortAgentChannel = 4120
	PortRelay        = 4122
)

// ManagerListeners are the Manager's two ports with their default numbers.
var ManagerListeners = []Listener{{PortConsole, RoleConsole}, {PortAgentChannel, RoleAgentChannel}}

// ListenerForPort maps a default port number to its listener.
func ListenerForPort(port int) (Listener, error) {
	switch port {
	case PortConsole:
		return Listener{port, RoleConsole}, nil
	case PortAgentChannel:
		return Listener{port, RoleAgentChannel}, nil
	case PortRelay:
		return Listener{port, RoleRelay}, nil
	case PortAgent:
		return Listener{port, RoleAgent}, nil
	}
	return Listener{}, fmt.Errorf("port %d is not a tlsfleet port; use %d (console), %d (agent channel), %d (relay) or %d (agent)",
		port, PortConsole, PortAgentChannel, PortRelay, PortAgent)
}

// managerPort reports whether java.security applies (it governs every Manager port).
func (r Role) managerPort() bool { return r == RoleConsole || r == RoleAgentChannel }
