package store

import (
	"context"
	"database/sql"
	"errors"
)

// InsertAPIKey stores a key's name, public prefix and secret hash.
func (s *DB) InsertAPIKey(ctx context.Context, name, prefix, secretHash string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_keys (name, prefix, secret_hash, created_at) VALUES ($1, $2, $3, $4)`,
		name, prefix, secretHash, now())
	return err
}

// APIKeyHash returns the secret hash and name of the key with a prefix.
func (s *DB) APIKeyHash(ctx context.Context, prefix string) (name, hash string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT name, secret_hash FROM api_keys WHERE prefix = $1`, prefix).Scan(&name, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return name, hash, err
}

// APIKeyNameTaken reports whether a key of that name exists.
func (s *DB) APIKeyNameTaken(ctx context.Context, name string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE name = $1`, name).Scan(&n)
	return n > 0, err
}

// CreateAdmin stores an admin account unless one of that name exists; it reports whether it did.
func (s *DB) CreateAdmin(ctx context.Context, username, passwordHash string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO admins (username, password_hash, must_change, created_at) VALUES ($1, $2, 1, $3)
		ON CONFLICT (username) DO NOTHING`, username, passwordHash, now())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
