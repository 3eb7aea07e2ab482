// Package store is the Manager's persistence: the settings with their change events, API keys, admin
// accounts and the handshake telemetry. Open gives the SQLite implementation (a file in the install
// folder); the statements use $n parameters, ON CONFLICT and RETURNING so that a PostgreSQL
// implementation can share them.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open store.
type DB struct {
	db *sql.DB
}

// Open opens (creating if needed) the SQLite database at path and applies the migrations. WAL lets a
// running Manager and dsm_c use the file at once; FULL synchronous makes an acknowledged write survive a
// crash of the process or the machine.
func Open(ctx context.Context, path string) (*DB, error) {
	// The database holds password and key hashes: only its owner may read it.
	if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "foreign_keys(1)", "busy_timeout(10000)", "synchronous(FULL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, sub)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// ErrNotFound is returned for a missing row.
var ErrNotFound = errors.New("not found")

// --- settings ---

// Settings returns every stored setting value by name (settings never changed are absent: they have
// their defaults).
func (s *DB) Settings(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, rows.Err()
}

// SetSetting stores a (validated) value and records the change as an event, in one transaction. It
// returns the previous value ("" if none) and whether anything changed; setting the same value again
// records nothing.
func (s *DB) SetSetting(ctx context.Context, name, value, actor string) (old string, changed bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", false, err
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&old)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", false, err
	}
	if err == nil && old == value {
		return old, false, nil
	}
	t := now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value, updated_at, updated_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		name, value, t, actor); err != nil {
		return "", false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO setting_events (name, old_value, new_value, actor, at) VALUES ($1, $2, $3, $4, $5)`,
		name, old, value, actor, t); err != nil {
		return "", false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE change_counter SET settings = settings + 1 WHERE id = 1`); err != nil {
		return "", false, err
	}
	return old, true, tx.Commit()
}

// SettingsVersion is a counter that every settings change increments.
func (s *DB) SettingsVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT settings FROM change_counter WHERE id = 1`).Scan(&v)
	return v, err
}

// SettingEvent is one recorded change.
type SettingEvent struct {
	Name     string `json:"name"`
	OldValue string `json:"old_value"`
	NewValue string `json:"new_value"`
	Actor    string `json:"actor"`
	At       string `json:"at"`
}

// SettingEvents returns the latest changes, newest first; name "" means all settings.
func (s *DB) SettingEvents(ctx context.Context, name string, limit int) ([]SettingEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, old_value, new_value, actor, at FROM setting_events
		WHERE $1 = '' OR name = $1 ORDER BY id DESC LIMIT $2`, name, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SettingEvent
	for rows.Next() {
		var e SettingEvent
		if err := rows.Scan(&e.Name, &e.OldValue, &e.NewValue, &e.Actor, &e.At); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// --- API keys and admins ---

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

// --- handshake telemetry ---

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
	tx, err := s.db.BeginTx(ctx, nil)
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
	res, err := s.db.ExecContext(ctx, `DELETE FROM tls_observations WHERE last_seen < $1`, before)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
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

// --- activation ---

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

// Computer is an activated agent.
type Computer struct {
	GUID         string `json:"guid"`
	Hostname     string `json:"hostname"`
	Platform     string `json:"platform"`
	AgentVersion string `json:"agent_version"`
	TLSVersions  string `json:"tls_versions"`
	CertSerial   string `json:"cert_serial"`
	CertExpires  string `json:"cert_expires"`
	PolicyID     string `json:"policy_id"`
	RelayGroup   string `json:"relay_group"`
	ActivatedAt  string `json:"activated_at"`
	Deactivated  bool   `json:"deactivated"`

	Relay         bool   `json:"relay"`
	RelayListen   string `json:"relay_listen,omitempty"`
	Listen        string `json:"listen,omitempty"`
	LastSeen      string `json:"last_seen,omitempty"`
	LastSeq       uint64 `json:"last_seq"`
	NegotiatedTLS string `json:"negotiated_tls,omitempty"`
	Legacy        bool   `json:"legacy,omitempty"`
	PolicyJSON    string `json:"-"`
	PolicySent    string `json:"policy_sent,omitempty"`
	PolicyAcked   string `json:"policy_acked,omitempty"`
}

const computerColumns = `guid, hostname, platform, agent_version, tls_versions, cert_serial, cert_expires, policy_id, relay_group,
	activated_at, deactivated, relay, relay_listen, listen, last_seen, last_seq, negotiated_tls, legacy, policy_json, policy_sent, policy_acked`

func scanComputer(sc interface{ Scan(...any) error }) (Computer, error) {
	var c Computer
	var d, r, l int
	err := sc.Scan(&c.GUID, &c.Hostname, &c.Platform, &c.AgentVersion, &c.TLSVersions, &c.CertSerial, &c.CertExpires, &c.PolicyID, &c.RelayGroup,
		&c.ActivatedAt, &d, &r, &c.RelayListen, &c.Listen, &c.LastSeen, &c.LastSeq, &c.NegotiatedTLS, &l, &c.PolicyJSON, &c.PolicySent, &c.PolicyAcked)
	c.Deactivated, c.Relay, c.Legacy = d != 0, r != 0, l != 0
	return c, err
}

// DefaultRelayGroup is the group of computers not assigned to another.
const DefaultRelayGroup = "Default Relay Group"

// ErrTokenInvalid means the token is unknown, expired or used up.
var ErrTokenInvalid = errors.New("activation token unknown, expired or used up")

// Activate spends one use of a valid token and records the computer, in one transaction: a failure
// leaves the token and the inventory as they were. issue is called inside the transaction (after the
// token checks) to make the certificate; its error aborts everything.
func (s *DB) Activate(ctx context.Context, tokenHash string, at time.Time, c Computer, issue func(tok ActivationToken) (Computer, error)) (Computer, error) {
	tx, err := s.db.BeginTx(ctx, nil)
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
	if _, err := tx.ExecContext(ctx, `UPDATE change_counter SET fleet = fleet + 1 WHERE id = 1`); err != nil {
		return Computer{}, err
	}
	return c, tx.Commit()
}

// Computers lists the activated computers.
func (s *DB) Computers(ctx context.Context) ([]Computer, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+computerColumns+` FROM computers ORDER BY hostname, guid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Computer
	for rows.Next() {
		c, err := scanComputer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// FindComputer finds a computer by GUID or host name (the name must be unique).
func (s *DB) FindComputer(ctx context.Context, name string) (Computer, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+computerColumns+` FROM computers WHERE guid = $1 OR hostname = $1`, name)
	if err != nil {
		return Computer{}, err
	}
	defer rows.Close()
	var found []Computer
	for rows.Next() {
		c, err := scanComputer(rows)
		if err != nil {
			return Computer{}, err
		}
		found = append(found, c)
	}
	switch len(found) {
	case 0:
		return Computer{}, fmt.Errorf("%w: no computer named %q (use its host name or GUID; dsm_c -action listcomputers lists them)", ErrNotFound, name)
	case 1:
		return found[0], nil
	}
	return Computer{}, fmt.Errorf("%d computers are named %q: use the GUID", len(found), name)
}

// FleetVersion is a counter that every change to roles, groups, bundles and released policies bumps.
func (s *DB) FleetVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT fleet FROM change_counter WHERE id = 1`).Scan(&v)
	return v, err
}

// inTx runs f in a transaction that also bumps the fleet counter.
func (s *DB) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE change_counter SET fleet = fleet + 1 WHERE id = 1`); err != nil {
		return err
	}
	return tx.Commit()
}

// SetDeactivated deactivates (or reactivates) a computer.
func (s *DB) SetDeactivated(ctx context.Context, guid string, off bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE computers SET deactivated = $1 WHERE guid = $2`, boolInt(off), guid)
		return err
	})
}

// SetRelay turns a computer's relay role on or off.
func (s *DB) SetRelay(ctx context.Context, guid string, on bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE computers SET relay = $1 WHERE guid = $2`, boolInt(on), guid)
		return err
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

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
	tx, err := s.db.BeginTx(ctx, nil)
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
