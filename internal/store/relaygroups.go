package store

import (
	"context"
	"database/sql"
	"fmt"
)

// DefaultRelayGroup is the group of computers not assigned to another.
const DefaultRelayGroup = "Default Relay Group"

// CreateRelayGroup adds a relay group; it reports false when it exists.
func (s *DB) CreateRelayGroup(ctx context.Context, name string) (bool, error) {
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO relay_groups (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, now())
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		created = n == 1
		return nil
	})
	return created, err
}

// RelayGroups lists the relay group names.
func (s *DB) RelayGroups(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM relay_groups ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// AssignRelayGroup puts a computer in a relay group (which must exist).
func (s *DB) AssignRelayGroup(ctx context.Context, guid, group string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM relay_groups WHERE name = $1`, group).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: no relay group %q (create it with dsm_c -action createrelaygroup -name %q)", ErrNotFound, group, group)
		}
		_, err := tx.ExecContext(ctx, `UPDATE computers SET relay_group = $1 WHERE guid = $2`, group, guid)
		return err
	})
}
