package store

import "context"

// Observation is an aggregated count of handshakes that share a key.
type Observation struct {
	Port       int    `json:"port"`
	ClientIP   string `json:"client_ip"`
	SNI        string `json:"sni,omitempty"`
	UserAgent  string `json:"user_agent,omitempty"`
	AgentGUID  string `json:"agent_guid,omitempty"`
	OfferedMax string `json:"offered_max"`
	Version    string `json:"version,omitempty"`
	Suite      string `json:"cipher_suite,omitempty"`
	Outcome    string `json:"outcome"` // accepted, rejected, failed
	Reason     string `json:"reason,omitempty"`
	Count      int64  `json:"count"`
	FirstSeen  string `json:"first_seen"`
	LastSeen   string `json:"last_seen"`
	// Node is the fleet member whose port saw the handshakes: empty for the Manager's own ports, a
	// relay's or agent's GUID for what its heartbeats reported.
	Node string `json:"node,omitempty"`
}

// AddObservations adds a batch of counts in one transaction.
func (s *DB) AddObservations(ctx context.Context, obs []Observation) error {
	if len(obs) == 0 {
		return nil
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO tls_observations
		(port, client_ip, sni, user_agent, agent_guid, offered_max, version, cipher_suite, outcome, reason, count, first_seen, last_seen, node)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (port, client_ip, sni, user_agent, agent_guid, offered_max, version, cipher_suite, outcome, node)
		DO UPDATE SET count = tls_observations.count + excluded.count, last_seen = excluded.last_seen, reason = excluded.reason`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, o := range obs {
		if _, err := stmt.ExecContext(ctx, o.Port, o.ClientIP, o.SNI, o.UserAgent, o.AgentGUID, o.OfferedMax, o.Version, o.Suite,
			o.Outcome, o.Reason, o.Count, o.FirstSeen, o.LastSeen, o.Node); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// PruneObservations deletes the counts last seen before the given time (RFC 3339): telemetry is kept for
// a retention period, not for ever.
func (s *DB) PruneObservations(ctx context.Context, before string) (int64, error) {
	// Under the write lock, as the flush that upserts these rows: on PostgreSQL a DELETE of many rows
	// beside a flush could otherwise lock them in another order (a deadlock, one of the two aborted).
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM tls_observations WHERE last_seen < $1`, before)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// Observations returns the counts last seen at or after since (RFC 3339), for one port or all (0),
// newest first, at most 10,000.
func (s *DB) Observations(ctx context.Context, since string, port int) ([]Observation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT port, client_ip, sni, user_agent, agent_guid, offered_max, version, cipher_suite,
		outcome, reason, count, first_seen, last_seen, node FROM tls_observations
		WHERE last_seen >= $1 AND ($2 = 0 OR port = $2) ORDER BY last_seen DESC, port LIMIT 10000`, since, port)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Observation
	for rows.Next() {
		var o Observation
		if err := rows.Scan(&o.Port, &o.ClientIP, &o.SNI, &o.UserAgent, &o.AgentGUID, &o.OfferedMax, &o.Version, &o.Suite,
			&o.Outcome, &o.Reason, &o.Count, &o.FirstSeen, &o.LastSeen, &o.Node); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
