package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// ActivationToken is a stored token (its secret is not kept).
type ActivationToken struct {
	ExpiresAt  string
	UsesLeft   int
	PolicyID   string
	RelayGroup string
}

// InsertActivationToken stores a token by its hash.
func (s *DB) InsertActivationToken(ctx context.Context, tokenHash string, t ActivationToken) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO activation_tokens (token_hash, created_at, expires_at, uses_left, policy_id, relay_group)
		VALUES ($1, $2, $3, $4, $5, $6)`, tokenHash, now(), t.ExpiresAt, t.UsesLeft, t.PolicyID, t.RelayGroup)
	return err
}

// ErrTokenInvalid means the token is unknown, expired or used up.
var ErrTokenInvalid = errors.New("activation token unknown, expired or used up")

// Activate spends one use of a valid token and records the computer, in one transaction: a failure
// leaves the token and the inventory as they were. issue is called inside the transaction (after the
// token checks) to make the certificate; its error aborts everything.
func (s *DB) Activate(ctx context.Context, tokenHash string, at time.Time, c Computer, issue func(tok ActivationToken) (Computer, error)) (Computer, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return Computer{}, err
	}
	defer tx.Rollback()
	var tok ActivationToken
	err = tx.QueryRowContext(ctx, `UPDATE activation_tokens SET uses_left = uses_left - 1
		WHERE token_hash = $1 AND uses_left > 0 AND expires_at > $2
		RETURNING expires_at, uses_left, policy_id, relay_group`, tokenHash, at.UTC().Format(time.RFC3339Nano)).
		Scan(&tok.ExpiresAt, &tok.UsesLeft, &tok.PolicyID, &tok.RelayGroup)
	if errors.Is(err, sql.ErrNoRows) {
		return Computer{}, ErrTokenInvalid
	}
	if err != nil {
		return Computer{}, err
	}
	c, err = issue(tok)
	if err != nil {
		return Computer{}, err
	}
	c.ActivatedAt = now()
	if c.RelayGroup == "" {
		c.RelayGroup = DefaultRelayGroup
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO computers (guid, hostname, platform, agent_version, tls_versions, cert_serial, cert_expires,
		policy_id, relay_group, activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		c.GUID, c.Hostname, c.Platform, c.AgentVersion, c.TLSVersions, c.CertSerial, c.CertExpires, c.PolicyID, c.RelayGroup, c.ActivatedAt); err != nil {
		return Computer{}, err
	}
	if err := insertCertSerial(ctx, tx, c.CertSerial, c.GUID, c.ActivatedAt, c.CertExpires); err != nil {
		return Computer{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE change_counter SET fleet = fleet + 1 WHERE id = 1`); err != nil {
		return Computer{}, err
	}
	return c, tx.Commit()
}
