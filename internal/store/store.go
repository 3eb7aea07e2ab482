// Package store is the Manager's persistence: settings and their change events, API keys and admins,
// activation tokens, computers and their released policies, relay groups, bundles and the handshake
// telemetry, one file per concern. Open gives the SQLite implementation (a file in the install folder),
// OpenDatabase the one the install folder's configuration.properties chooses: SQLite or PostgreSQL
// (postgres.go), the same statements and migrations on both, their differences in dialect.go. Its
// consumers (internal/ops, internal/manager) see it only through the small interfaces they own.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"tlsfleet/internal/install"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// DB is an open store.
type DB struct {
	db      *sql.DB
	dialect *dialect
	tls     ConnTLS
	now     func() time.Time // the leases' clock (SetClock); nil is time.Now
}

// OpenDatabase opens the database d names (install.Folder.Database) and applies the migrations.
func OpenDatabase(ctx context.Context, d install.Database) (*DB, error) {
	if d.Type == install.DatabasePostgres {
		return openPostgres(ctx, d)
	}
	return Open(ctx, d.Path)
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
	// A transaction takes the write lock when it begins: one that reads and then writes would otherwise
	// fail at once (SQLITE_BUSY, BUSY_SNAPSHOT) when another connection wrote in between, busy_timeout
	// or not (e.g. a renewal confirmed beside a telemetry flush). dialect.go has PostgreSQL's equivalent.
	q.Set("_txlock", "immediate")
	// Every connection the pool opens later opens the file the first one did, or fails: an install
	// folder removed or replaced under the Manager must not get a new, empty database.
	q.Set("mode", "rw")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	return ready(ctx, db, sqliteDialect, path, "", func(context.Context, *sql.DB) (ConnTLS, error) { return localFile, nil })
}

// ready pings db, applies the migrations and records the connection's TLS state; what names the
// database in errors, fix is added to a failed connection's.
func ready(ctx context.Context, db *sql.DB, d *dialect, what, fix string, connTLS func(context.Context, *sql.DB) (ConnTLS, error)) (*DB, error) {
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w%s", what, err, fix)
	}
	if err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", what, err)
	}
	st, err := connTLS(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: reading its connection's TLS state: %w", what, err)
	}
	return &DB{db: db, dialect: d, tls: st}, nil
}

func migrate(ctx context.Context, db *sql.DB, d *dialect) error {
	sub, err := d.migrations()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(d.goose, db, sub)
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
// --- API keys and admins ---
// --- handshake telemetry ---
// --- activation ---

// inTx runs f in a transaction that also bumps the fleet counter.
func (s *DB) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.begin(ctx)
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

// begin starts a write transaction that holds the database's write lock from its start (dialect.go).
func (s *DB) begin(ctx context.Context) (*sql.Tx, error) { return s.dialect.begin(ctx, s.db) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
