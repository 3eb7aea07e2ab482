package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"tlsfleet/internal/install"
)

// Pool defaults of a PostgreSQL store. Every *DB method goes through database/sql (pgx's stdlib
// driver), so the SQLite and PostgreSQL stores are one code; database/sql is the pool.
const (
	// PostgresMaxConns bounds the connections one Manager (or dsm_c) holds: PostgreSQL's default
	// max_connections is 100, shared by every node and tool.
	PostgresMaxConns = 10
	// PostgresMaxIdleConns are kept open between bursts (a heartbeat flush, a policy send).
	PostgresMaxIdleConns = 4
	// PostgresConnMaxIdleTime closes a connection idle that long.
	PostgresConnMaxIdleTime = 5 * time.Minute
	// PostgresConnectTimeout bounds one connection attempt (TCP, TLS and authentication).
	PostgresConnectTimeout = 10 * time.Second
)

// openPostgres connects to the PostgreSQL database d names, through a pool, and applies the migrations.
func openPostgres(ctx context.Context, d install.Database) (*DB, error) {
	cfg, err := pgx.ParseConfig(connString(d))
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", d, err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(PostgresMaxConns)
	db.SetMaxIdleConns(PostgresMaxIdleConns)
	db.SetConnMaxIdleTime(PostgresConnMaxIdleTime)
	fix := fmt.Sprintf("; check %s, %s, %s and the password (%s or %s) in %s, that the server runs and accepts this client (pg_hba.conf), and %s",
		install.KeyDatabaseHost, install.KeyDatabasePort, install.KeyDatabaseUser, install.KeyDatabasePasswordFile, install.EnvDatabasePassword,
		install.ConfigFile, install.KeyDatabaseSSLMode)
	return ready(ctx, db, postgresDialect, d.String(), fix, func(ctx context.Context, db *sql.DB) (ConnTLS, error) {
		return postgresTLS(ctx, db, d)
	})
}

// connString is d as a libpq keyword/value connection string, every value quoted.
func connString(d install.Database) string {
	kv := []string{
		"host", d.Host, "port", strconv.Itoa(d.Port), "dbname", d.Name, "user", d.User,
		"sslmode", d.SSLMode, "application_name", "tlsfleet",
		"connect_timeout", strconv.Itoa(int(PostgresConnectTimeout / time.Second)),
	}
	if d.Password != "" {
		kv = append(kv, "password", d.Password)
	}
	if d.SSLRootCert != "" {
		kv = append(kv, "sslrootcert", d.SSLRootCert)
	}
	var b strings.Builder
	q := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	for i := 0; i < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s='%s' ", kv[i], q.Replace(kv[i+1]))
	}
	return b.String()
}
