package store

import (
	"context"
	"database/sql"
	"fmt"

	"tlsfleet/internal/install"
	"tlsfleet/internal/tlspolicy"
)

// ConnTLS is the TLS state of the store's own database connection, recorded when the store opened: what
// the page asks the operator to check before enforcing.
type ConnTLS struct {
	// Network is false for a local file (SQLite): nothing travels, TLS does not apply.
	Network bool `json:"network"`
	// TLS says whether the connection is encrypted; Version ("TLSv1.3") and Cipher (OpenSSL's name) are
	// as the server reports them (pg_stat_ssl of its own backend).
	TLS     bool   `json:"tls"`
	Version string `json:"version,omitempty"`
	Cipher  string `json:"cipher,omitempty"`
	// Verified is how the server's certificate was checked: VerifiedNone, VerifiedCA (it chains to a
	// trusted CA) or VerifiedFull (and it names the host), from the sslmode.
	Verified string `json:"verified"`
	SSLMode  string `json:"sslmode,omitempty"`
}

// Verification levels of ConnTLS.Verified.
const (
	VerifiedNone = "none"
	VerifiedCA   = "ca"
	VerifiedFull = "full"
)

var localFile = ConnTLS{Verified: VerifiedNone}

// String is the state in one line, for status output.
func (c ConnTLS) String() string {
	switch {
	case !c.Network:
		return "local file, no network"
	case !c.TLS:
		return fmt.Sprintf("no TLS (sslmode=%s)", c.SSLMode)
	}
	v := map[string]string{VerifiedNone: "server certificate not verified", VerifiedCA: "server certificate verified (CA only, not the host name)",
		VerifiedFull: "server certificate and host name verified"}[c.Verified]
	return fmt.Sprintf("%s %s, %s (sslmode=%s)", c.Version, c.Cipher, v, c.SSLMode)
}

// ConnTLS returns the TLS state of the store's database connection.
func (s *DB) ConnTLS() ConnTLS { return s.tls }

// postgresTLS asks the server about the TLS of one of the pool's connections (all are made alike), and
// takes the verification level from the sslmode as pgx applies it: require with an sslrootcert checks
// the chain, as libpq does.
func postgresTLS(ctx context.Context, db *sql.DB, d install.Database) (ConnTLS, error) {
	c := ConnTLS{Network: true, SSLMode: d.SSLMode, Verified: VerifiedNone}
	var version, cipher sql.NullString
	err := db.QueryRowContext(ctx, `SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&c.TLS, &version, &cipher)
	if err != nil {
		return c, err
	}
	c.Version, c.Cipher = version.String, cipher.String
	switch {
	case !c.TLS:
	case d.SSLMode == install.SSLVerifyFull:
		c.Verified = VerifiedFull
	case d.SSLMode == install.SSLVerifyCA, d.SSLMode == install.SSLRequire && d.SSLRootCert != "":
		c.Verified = VerifiedCA
	}
	return c, nil
}

// Blocker names what keeps the database connection from meeting a TLS minimum the Manager enforces
// (min, e.g. TLSv1.2): a network connection without TLS, or with an older version; "" when it meets it
// (a local file always does: nothing travels).
func (c ConnTLS) Blocker(min tlspolicy.Version) string {
	if !c.Network {
		return ""
	}
	if !c.TLS {
		return fmt.Sprintf("the database connection has no TLS (sslmode=%s): set database.sslmode=verify-full and ssl=on on the server", c.SSLMode)
	}
	if v, err := tlspolicy.ParseVersion(c.Version); err != nil || v < min {
		return fmt.Sprintf("the database connection negotiated %s, below the enforced minimum %s: raise ssl_min_protocol_version on the PostgreSQL server", c.Version, min)
	}
	return ""
}
