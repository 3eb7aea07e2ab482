package store

import (
	"context"
	"database/sql"
	"fmt"
)

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
	// CertPrevSerial is the certificate a renewal replaced, valid until the computer heartbeats with
	// the new one.
	CertPrevSerial string `json:"cert_prev_serial,omitempty"`
}

const computerColumns = `guid, hostname, platform, agent_version, tls_versions, cert_serial, cert_expires, policy_id, relay_group,
	activated_at, deactivated, relay, relay_listen, listen, last_seen, last_seq, negotiated_tls, legacy, policy_json, policy_sent, policy_acked, cert_prev_serial`

func scanComputer(sc interface{ Scan(...any) error }) (Computer, error) {
	var c Computer
	var d, r, l int
	err := sc.Scan(&c.GUID, &c.Hostname, &c.Platform, &c.AgentVersion, &c.TLSVersions, &c.CertSerial, &c.CertExpires, &c.PolicyID, &c.RelayGroup,
		&c.ActivatedAt, &d, &r, &c.RelayListen, &c.Listen, &c.LastSeen, &c.LastSeq, &c.NegotiatedTLS, &l, &c.PolicyJSON, &c.PolicySent, &c.PolicyAcked, &c.CertPrevSerial)
	c.Deactivated, c.Relay, c.Legacy = d != 0, r != 0, l != 0
	return c, err
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

// SetDeactivated deactivates (or reactivates) a computer, and in the same transaction puts its
// certificates on hold in the CRL (or lifts the hold).
func (s *DB) SetDeactivated(ctx context.Context, guid string, off bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE computers SET deactivated = $1 WHERE guid = $2`, boolInt(off), guid); err != nil {
			return err
		}
		return holdCerts(ctx, tx, guid, off)
	})
}

// SetRelay turns a computer's relay role on or off.
func (s *DB) SetRelay(ctx context.Context, guid string, on bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE computers SET relay = $1 WHERE guid = $2`, boolInt(on), guid)
		return err
	})
}

// ComputerCount is how many computers were ever activated and are still in the inventory (deactivated
// ones too): the Manager refuses to start with a new fleet CA over them.
func (s *DB) ComputerCount(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM computers`).Scan(&n)
	return n, err
}
