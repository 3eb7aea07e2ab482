package store

import (
	"context"
	"database/sql"
)

// ReleaseRow is one computer's newly released policy. Prev is the fingerprint it had when the policy was
// computed: the row is written only if that is still so (another release, by dsm_c or another Manager,
// wins otherwise and this one is dropped).
type ReleaseRow struct {
	GUID, Prev, JSON, Fingerprint string
}

// Release stores released policies in one transaction, with one new serial for all of them: build gets the
// serial and returns the rows. It returns the GUIDs whose policy was written.
func (s *DB) Release(ctx context.Context, build func(serial int64) ([]ReleaseRow, error)) ([]string, error) {
	var written []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var serial int64
		if err := tx.QueryRowContext(ctx, `UPDATE change_counter SET fleet = fleet + 1 WHERE id = 1 RETURNING fleet`).Scan(&serial); err != nil {
			return err
		}
		rows, err := build(serial)
		if err != nil {
			return err
		}
		for _, r := range rows {
			res, err := tx.ExecContext(ctx, `UPDATE computers SET policy_json = $1, policy_sent = $2 WHERE guid = $3 AND policy_sent = $4`,
				r.JSON, r.Fingerprint, r.GUID, r.Prev)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				written = append(written, r.GUID)
			}
		}
		return nil
	})
	return written, err
}

// CheckIn is a batched heartbeat record.
type CheckIn struct {
	GUID, LastSeen, Listen, RelayListen, NegotiatedTLS, AgentVersion, Platform, TLSVersions, PolicyAcked string
	Seq                                                                                                  uint64
	Legacy                                                                                               bool
}

// RecordCheckIns writes a batch of heartbeats in one transaction (one fsync for the whole batch).
func (s *DB) RecordCheckIns(ctx context.Context, batch []CheckIn) error {
	if len(batch) == 0 {
		return nil
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE computers SET last_seen = $1, last_seq = $2, listen = $3, relay_listen = $4, negotiated_tls = $5,
		agent_version = $6, platform = $7, tls_versions = $8, policy_acked = $9, legacy = $10 WHERE guid = $11`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, c := range batch {
		if _, err := stmt.ExecContext(ctx, c.LastSeen, c.Seq, c.Listen, c.RelayListen, c.NegotiatedTLS, c.AgentVersion, c.Platform, c.TLSVersions,
			c.PolicyAcked, boolInt(c.Legacy), c.GUID); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// SetPolicyAcked records that a computer confirmed running a policy (after a push over its port 4118).
func (s *DB) SetPolicyAcked(ctx context.Context, guid, fingerprint string) error {
	// Only while that policy is still the one released: an ack of an older push must not cover a newer one.
	_, err := s.db.ExecContext(ctx, `UPDATE computers SET policy_acked = $1 WHERE guid = $2 AND policy_sent = $1`, fingerprint, guid)
	return err
}
