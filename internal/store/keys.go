package store

import (
	"context"
	"database/sql"
	"errors"
)

// APIKey is an API key as stored, without its secret hash. Times are RFC 3339 UTC text; "" means none
// (a key that never expires, was never used, is not revoked).
type APIKey struct {
	Name       string `json:"name"`
	Prefix     string `json:"prefix"`
	Scope      string `json:"scope"`
	CreatedAt  string `json:"created_at"`
	ExpiresAt  string `json:"expires_at"`
	LastUsedAt string `json:"last_used_at"`
	RevokedAt  string `json:"revoked_at"`
}

// ScopeAdmin is the scope of keys that do not name one (every key made before scopes existed).
const ScopeAdmin = "admin"

const keyColumns = `name, prefix, scope, created_at, expires_at, last_used_at, revoked_at`

func scanKey(row interface{ Scan(...any) error }, extra ...any) (APIKey, error) {
	var k APIKey
	err := row.Scan(append([]any{&k.Name, &k.Prefix, &k.Scope, &k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt, &k.RevokedAt}, extra...)...)
	return k, err
}

// AddAPIKey stores a key (its name, public prefix, scope and expiry) with its secret hash; the store
// sets the creation time.
func (s *DB) AddAPIKey(ctx context.Context, k APIKey, secretHash string) error {
	if k.Scope == "" {
		k.Scope = ScopeAdmin
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_keys (name, prefix, secret_hash, created_at, scope, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.Name, k.Prefix, secretHash, now(), k.Scope, k.ExpiresAt)
	return err
}

// InsertAPIKey stores an admin key that never expires (what tests and seeding need).
func (s *DB) InsertAPIKey(ctx context.Context, name, prefix, secretHash string) error {
	return s.AddAPIKey(ctx, APIKey{Name: name, Prefix: prefix}, secretHash)
}

// APIKeyByPrefix returns the key with a prefix and its secret hash.
func (s *DB) APIKeyByPrefix(ctx context.Context, prefix string) (APIKey, string, error) {
	var hash string
	k, err := scanKey(s.db.QueryRowContext(ctx, `SELECT `+keyColumns+`, secret_hash FROM api_keys WHERE prefix = $1`, prefix), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return k, hash, err
}

// APIKeyHash returns the secret hash and name of the key with a prefix.
func (s *DB) APIKeyHash(ctx context.Context, prefix string) (name, hash string, err error) {
	k, hash, err := s.APIKeyByPrefix(ctx, prefix)
	return k.Name, hash, err
}

// APIKeys lists the keys by name, without their hashes.
func (s *DB) APIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []APIKey{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// APIKeyNameTaken reports whether a key of that name exists.
func (s *DB) APIKeyNameTaken(ctx context.Context, name string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE name = $1`, name).Scan(&n)
	return n > 0, err
}

// RevokeAPIKey marks a key revoked at a time unless it is revoked already; it reports whether it did.
func (s *DB) RevokeAPIKey(ctx context.Context, name, at string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at = ''`, at, name)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// TouchAPIKey records when a key was last used.
func (s *DB) TouchAPIKey(ctx context.Context, prefix, at string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE prefix = $2`, at, prefix)
	return err
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
