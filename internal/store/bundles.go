package store

import (
	"context"
	"database/sql"
)

// Bundle is a published update bundle.
type Bundle struct {
	SHA256 string `json:"sha256"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
}

// AddBundle records a published bundle (its bytes live in the install folder).
func (s *DB) AddBundle(ctx context.Context, b Bundle) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO bundles (sha256, name, size, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (sha256) DO UPDATE SET name = excluded.name`, b.SHA256, b.Name, b.Size, now())
		return err
	})
}

// Bundles lists the published bundles.
func (s *DB) Bundles(ctx context.Context) ([]Bundle, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT sha256, name, size FROM bundles ORDER BY name, sha256`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Bundle
	for rows.Next() {
		var b Bundle
		if err := rows.Scan(&b.SHA256, &b.Name, &b.Size); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
