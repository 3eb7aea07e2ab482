package store

import (
	"context"
	"time"
)

// TryLease takes or renews the lease of job for node until ttl from now, and reports whether node holds
// it: a node renews its own lease, and takes one whose holder let it expire (it died, or stopped
// renewing). It is one conditional upsert — the row is locked by the statement itself on PostgreSQL and
// by the write lock on SQLite — so of nodes racing for a lease exactly one gets it, with no advisory
// locks.
func (s *DB) TryLease(ctx context.Context, job, node string, ttl time.Duration) (bool, error) {
	at := s.clock()
	res, err := s.db.ExecContext(ctx, `INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $4`,
		job, node, stamp(at.Add(ttl)), stamp(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseLease gives up node's lease of job (a node stopping): another node takes the job at once
// instead of after the lease expires. A lease node does not hold is left alone.
func (s *DB) ReleaseLease(ctx context.Context, job, node string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM job_leases WHERE name = $1 AND holder = $2`, job, node)
	return err
}

// SetClock makes the leases read the time from now instead of the system clock (tests that expire a
// lease without waiting for it). Call it before the store is used.
func (s *DB) SetClock(now func() time.Time) { s.now = now }

func (s *DB) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}
