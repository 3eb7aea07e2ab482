package store

import (
	"context"
	"time"
)

// ManagerNode is one Manager node sharing this database, as it registered.
type ManagerNode struct {
	Name        string `json:"name"`
	ConsoleAddr string `json:"console_addr"`
	AgentAddr   string `json:"agent_addr"`
	Version     string `json:"version"`
	StartedAt   string `json:"started_at"`
	LastSeen    string `json:"last_seen"`
	// Interval is how often the node refreshes LastSeen (its fleet loop).
	Interval time.Duration `json:"-"`
}

// RegisterNode records a node at its start (a node of that name registered before is replaced: it
// is the same node restarted).
func (s *DB) RegisterNode(ctx context.Context, n ManagerNode) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO manager_nodes (name, console_addr, agent_addr, version, started_at, last_seen, interval_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (name) DO UPDATE SET console_addr = excluded.console_addr, agent_addr = excluded.agent_addr,
			version = excluded.version, started_at = excluded.started_at, last_seen = excluded.last_seen, interval_ms = excluded.interval_ms`,
		n.Name, n.ConsoleAddr, n.AgentAddr, n.Version, n.StartedAt, n.LastSeen, n.Interval.Milliseconds())
	return err
}

// TouchNode refreshes a node's last_seen; it reports false when the node is not registered (its row
// was removed: the caller registers again).
func (s *DB) TouchNode(ctx context.Context, name string, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE manager_nodes SET last_seen = $1 WHERE name = $2`, stamp(at), name)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ManagerNodes lists the registered nodes by name.
func (s *DB) ManagerNodes(ctx context.Context) ([]ManagerNode, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, console_addr, agent_addr, version, started_at, last_seen, interval_ms
		FROM manager_nodes ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ManagerNode
	for rows.Next() {
		var n ManagerNode
		var ms int64
		if err := rows.Scan(&n.Name, &n.ConsoleAddr, &n.AgentAddr, &n.Version, &n.StartedAt, &n.LastSeen, &ms); err != nil {
			return nil, err
		}
		n.Interval = time.Duration(ms) * time.Millisecond
		out = append(out, n)
	}
	return out, rows.Err()
}

// stamp is a fixed-width RFC 3339 UTC time: such strings compare as the times do (RFC3339Nano drops
// trailing zeros, and "05Z" sorts after "05.1Z"), which lets SQL compare them on every database.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") }
