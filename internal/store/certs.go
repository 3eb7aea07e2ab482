package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Agent certificates: every serial the fleet CA issues is recorded (activation, renewal); deactivation
// puts a computer's certificates on hold, reactivation lifts the hold, a confirmed renewal supersedes
// the old certificate. Each change of the revoked set bumps the CRL number in the same transaction.

// Revocation reasons (RFC 5280), as pki names them.
const (
	reasonSuperseded      = 4
	reasonCertificateHold = 6
)

// RevokedCert is a row of the CRL.
type RevokedCert struct {
	Serial    string // hex
	Computer  string
	RevokedAt string // RFC 3339
	Reason    int
}

// CertSerial is a recorded certificate.
type CertSerial struct {
	Serial, Computer, Issued, Expires, RevokedAt string
	Reason                                       int
}

// ErrCertNotCurrent is returned for a renewal with a certificate that is not the computer's current (or
// previous, while a renewal is unconfirmed) certificate.
var ErrCertNotCurrent = errors.New("not the computer's current certificate")

func insertCertSerial(ctx context.Context, tx *sql.Tx, serial, guid, issued, expires string) error {
	if serial == "" {
		return nil // a computer recorded without a certificate (tests, imports)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO cert_serials (serial, computer, issued, expires) VALUES ($1, $2, $3, $4)`, serial, guid, issued, expires)
	return err
}

func bumpCRL(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE change_counter SET crl = crl + 1 WHERE id = 1`)
	return err
}

// holdCerts puts every unrevoked certificate of a computer on hold (off) or lifts its holds; it bumps
// the CRL number when a row changed.
func holdCerts(ctx context.Context, tx *sql.Tx, guid string, off bool) error {
	var res sql.Result
	var err error
	if off {
		res, err = tx.ExecContext(ctx, `UPDATE cert_serials SET revoked_at = $1, reason = $2 WHERE computer = $3 AND revoked_at = ''`,
			now(), reasonCertificateHold, guid)
	} else {
		res, err = tx.ExecContext(ctx, `UPDATE cert_serials SET revoked_at = '', reason = 0 WHERE computer = $1 AND reason = $2`,
			guid, reasonCertificateHold)
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return bumpCRL(ctx, tx)
	}
	return nil
}

// supersede revokes serials of a computer as superseded (those not revoked already).
func supersede(ctx context.Context, tx *sql.Tx, guid string, serials ...string) (int64, error) {
	var total int64
	for _, sn := range serials {
		if sn == "" {
			continue
		}
		res, err := tx.ExecContext(ctx, `UPDATE cert_serials SET revoked_at = $1, reason = $2 WHERE serial = $3 AND computer = $4 AND revoked_at = ''`,
			now(), reasonSuperseded, sn, guid)
		if err != nil {
			return 0, err
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// CRLVersion is the CRL number: it grows with every change of the revoked certificates.
func (s *DB) CRLVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT crl FROM change_counter WHERE id = 1`).Scan(&v)
	return v, err
}

// BumpCRL moves the CRL number without a change of entries: the Manager re-signs its list before the
// list's NextUpdate, dropping expired certificates, and listeners take only a higher number.
func (s *DB) BumpCRL(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE change_counter SET crl = crl + 1 WHERE id = 1`)
	return err
}

// RevokedCerts lists the revoked certificates that have not expired at `at`, with the CRL number they
// belong to (read in one transaction).
func (s *DB) RevokedCerts(ctx context.Context, at time.Time) ([]RevokedCert, int64, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	var number int64
	if err := tx.QueryRowContext(ctx, `SELECT crl FROM change_counter WHERE id = 1`).Scan(&number); err != nil {
		return nil, 0, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT serial, computer, revoked_at, reason FROM cert_serials WHERE revoked_at <> '' AND expires > $1 ORDER BY serial`,
		at.UTC().Format(time.RFC3339))
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []RevokedCert
	for rows.Next() {
		var r RevokedCert
		if err := rows.Scan(&r.Serial, &r.Computer, &r.RevokedAt, &r.Reason); err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	return out, number, rows.Err()
}

// CertSerials lists the certificates issued to a computer, oldest first.
func (s *DB) CertSerials(ctx context.Context, guid string) ([]CertSerial, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT serial, computer, issued, expires, revoked_at, reason FROM cert_serials WHERE computer = $1 ORDER BY issued, serial`, guid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CertSerial
	for rows.Next() {
		var c CertSerial
		if err := rows.Scan(&c.Serial, &c.Computer, &c.Issued, &c.Expires, &c.RevokedAt, &c.Reason); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Renew records a renewed certificate for an active computer that presented `presented`, its current
// certificate or the one it renewed with last time (a renewal whose answer it never stored). issue makes
// the new certificate inside the transaction; its error aborts everything. Every other unrevoked serial
// the computer may still hold (an unconfirmed earlier renewal) is superseded; `presented` stays valid
// until ConfirmCert.
func (s *DB) Renew(ctx context.Context, guid, presented string, issue func() (serial, expires string, err error)) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var cur, prev string
		var off int
		err := tx.QueryRowContext(ctx, `SELECT cert_serial, cert_prev_serial, deactivated FROM computers WHERE guid = $1`, guid).Scan(&cur, &prev, &off)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: computer %s", ErrNotFound, guid)
		}
		if err != nil {
			return err
		}
		if off != 0 || presented == "" || presented != cur && presented != prev {
			return fmt.Errorf("certificate %s: %w", presented, ErrCertNotCurrent)
		}
		serial, expires, err := issue()
		if err != nil {
			return err
		}
		if err := insertCertSerial(ctx, tx, serial, guid, now(), expires); err != nil {
			return err
		}
		others := []string{cur, prev}
		for i, sn := range others {
			if sn == presented {
				others[i] = ""
			}
		}
		n, err := supersede(ctx, tx, guid, others...)
		if err != nil {
			return err
		}
		if n > 0 {
			if err := bumpCRL(ctx, tx); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE computers SET cert_prev_serial = $1, cert_serial = $2, cert_expires = $3 WHERE guid = $4`, presented, serial, expires, guid)
		return err
	})
}

// ConfirmCert records that a computer uses its renewed certificate `current`: the previous one is
// superseded. It reports whether anything changed.
func (s *DB) ConfirmCert(ctx context.Context, guid, current string) (bool, error) {
	changed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT cert_prev_serial FROM computers WHERE guid = $1 AND cert_serial = $2`, guid, current).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) || err == nil && prev == "" {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := supersede(ctx, tx, guid, prev); err != nil {
			return err
		}
		if err := bumpCRL(ctx, tx); err != nil {
			return err
		}
		changed = true
		_, err = tx.ExecContext(ctx, `UPDATE computers SET cert_prev_serial = '' WHERE guid = $1`, guid)
		return err
	})
	return changed, err
}
