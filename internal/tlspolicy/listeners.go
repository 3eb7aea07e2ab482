package tlspolicy

import (
	"fmt"
	"slices"
	"strings"
)

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
var ManagerListeners = ManagerListenersOn(PortConsole, PortAgentChannel)

// ManagerListenersOn are the Manager's two ports on the numbers an install configures.
func ManagerListenersOn(consolePort, agentPort int) []Listener {
	return []Listener{{consolePort, RoleConsole}, {agentPort, RoleAgentChannel}}
}

// ListenerForPort maps a port number to its listener: one of the Manager's listeners as its install
// configures them (manager; ManagerListeners when nil), or a relay's or agent's default port.
func ListenerForPort(port int, manager []Listener) (Listener, error) {
	if manager == nil {
		manager = ManagerListeners
	}
	known := append(slices.Clone(manager), Listener{PortRelay, RoleRelay}, Listener{PortAgent, RoleAgent})
	var names []string
	for _, l := range known {
		if l.Port == port {
			return l, nil
		}
		names = append(names, fmt.Sprintf("%d (%s)", l.Port, l.Role))
	}
	return Listener{}, fmt.Errorf("port %d is not a port of this install; use %s", port, strings.Join(names, ", "))
}

// managerPort reports whether java.security applies (it governs every Manager port).
func (r Role) managerPort() bool { return r == RoleConsole || r == RoleAgentChannel }
