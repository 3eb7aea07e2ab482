// Package storetest reads a store's database with plain SQL, for tests that check which rows an action
// changed (or that bad input changed none), and runs tests on SQLite and on PostgreSQL (EachDB).
package storetest

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"tlsfleet/internal/install"
)

// Options choose what Dump reads.
type Options struct {
	Tables []string        // the tables to read; nil: every table
	Skip   map[string]bool // columns left out (times, hashes: what differs between two installs by nature)
	// Value, if set, may rewrite a value before it is written down.
	Value func(column string, v any) any
}

// Dump reads the rows of the SQLite database at path, each as "column=value ..." (JSON values), sorted,
// by table.
func Dump(t testing.TB, path string, o Options) map[string][]string {
	t.Helper()
	return DumpDatabase(t, install.Database{Type: install.DatabaseSQLite, Path: path}, o)
}

// DumpDatabase is Dump of the SQLite or PostgreSQL database d.
func DumpDatabase(t testing.TB, d install.Database, o Options) map[string][]string {
	t.Helper()
	driver, dsn, list := "sqlite", "file:"+d.Path+"?mode=ro", `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
	if d.Type == install.DatabasePostgres {
		driver, list = "pgx", `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`
		dsn = fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=%s", d.Host, d.Port, d.Name, d.User, d.SSLMode)
		if d.SSLRootCert != "" {
			dsn += " sslrootcert=" + d.SSLRootCert
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables := o.Tables
	if tables == nil {
		tables = query(t, db, list)
	}
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, c := range cols {
				if o.Skip[c] {
					continue
				}
				v := vals[i]
				if s, ok := v.([]byte); ok {
					v = string(s)
				}
				if o.Value != nil {
					v = o.Value(c, v)
				}
				j, _ := json.Marshal(v)
				b.WriteString(c + "=" + string(j) + " ")
			}
			out[table] = append(out[table], b.String())
		}
		rows.Close()
		slices.Sort(out[table])
	}
	return out
}

func query(t testing.TB, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
