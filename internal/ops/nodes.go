package ops

import (
	"context"
	"net"
	"strings"

	"tlsfleet/internal/fleet"
)

// NodeView is one Manager node as listmanagernodes and GET /api/managernodes show it.
type NodeView struct {
	Name        string `json:"name"`
	ConsoleAddr string `json:"console_addr"`
	AgentAddr   string `json:"agent_addr"`
	Version     string `json:"version"`
	StartedAt   string `json:"started_at"`
	LastSeen    string `json:"last_seen"`
	// Status is online, or offline once the node went unseen for fleet.NodeOffline of its intervals.
	Status string `json:"status"`
}

// ListManagerNodes lists the Manager nodes sharing this database, by name.
func (o *Ops) ListManagerNodes(ctx context.Context) ([]NodeView, error) {
	nodes, err := o.store.ManagerNodes(ctx)
	if err != nil {
		return nil, err
	}
	now := o.now()
	out := make([]NodeView, 0, len(nodes))
	for _, n := range nodes {
		status := StatusOffline
		if fleet.NodeOnline(n, now) {
			status = StatusOnline
		}
		out = append(out, NodeView{Name: n.Name, ConsoleAddr: n.ConsoleAddr, AgentAddr: n.AgentAddr, Version: n.Version,
			StartedAt: n.StartedAt, LastSeen: n.LastSeen, Status: status})
	}
	return out, nil
}

// NodeAddresses are the console's and the agent channel's HOST:PORT as this node registers them for
// the others (and their policies) to list: the agent channel as activation commands name it
// (ManagerURL), the console on the same host when it listens on every address.
func (o *Ops) NodeAddresses(consoleListen string) (console, agent string) {
	agent = strings.TrimSuffix(strings.TrimPrefix(o.ManagerURL(), "dsm://"), "/")
	host, _, _ := net.SplitHostPort(agent)
	console = consoleListen
	if h, p, err := net.SplitHostPort(consoleListen); err == nil {
		if ip := net.ParseIP(h); ip == nil || ip.IsUnspecified() {
			h = host
		}
		console = net.JoinHostPort(h, p)
	}
	return console, agent
}
