package store

import (
	"database/sql"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/store/storetest"
)

// Every rewrite of a dialect changes something in the migrations: one that no longer matches (a
// migration respelled) would silently leave SQLite's spelling to PostgreSQL.
func TestDialectRewritesApply(t *testing.T) {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	files, _ := fs.Glob(sub, "*.sql")
	for _, f := range files {
		b, _ := fs.ReadFile(sub, f)
		all = append(all, b...)
	}
	for _, d := range []*dialect{sqliteDialect, postgresDialect} {
		for _, r := range d.rewrites {
			if !r.re.Match(all) {
				t.Errorf("%s: the rewrite %q matches no migration", d.name, r.re)
			}
		}
	}
}

// The one set of migrations makes the same schema on SQLite and PostgreSQL: the same tables, columns
// (type class and NOT NULL) and indexes.
func TestSchemasMatch(t *testing.T) {
	lite, err := OpenDatabase(t.Context(), storetest.SQLite(t).Database)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg, err := OpenDatabase(t.Context(), storetest.Postgres(t).Database)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	sqliteSchema := schema(t, lite.db, `SELECT m.name, p.name, lower(p.type) || CASE WHEN p.pk = 1 AND lower(p.type) = 'integer' AND
			(SELECT COUNT(*) FROM pragma_table_info(m.name) k WHERE k.pk > 0) = 1 THEN ' rowid' ELSE '' END, p."notnull" = 1 OR p.pk > 0
		FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'goose_db_version'`,
		`SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`)
	pgSchema := schema(t, pg.db, `SELECT table_name, column_name, data_type || CASE WHEN is_identity = 'YES' THEN ' identity' ELSE '' END, is_nullable = 'NO'
		FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'goose_db_version'`,
		`SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT IN (SELECT conname FROM pg_constraint)`)
	// SQLite's INTEGER PRIMARY KEY (the rowid) is PostgreSQL's BIGINT identity; INTEGER is 64 bits on
	// SQLite, 32 on PostgreSQL, which holds what the store writes there (ports, counts of uses, flags).
	norm := strings.NewReplacer("integer rowid", "bigint identity")
	for k, v := range sqliteSchema {
		sqliteSchema[k] = norm.Replace(v)
	}
	if diff := cmp.Diff(sqliteSchema, pgSchema); diff != "" {
		t.Errorf("schemas differ (-sqlite +postgres):\n%s", diff)
	}
	if len(pgSchema) < 50 {
		t.Errorf("only %d columns and indexes read: %v", len(pgSchema), pgSchema)
	}
}

// schema reads "table.column" → "type notnull" and "index NAME" → its table.
func schema(t *testing.T, db *sql.DB, columns, indexes string) map[string]string {
	t.Helper()
	out := map[string]string{}
	rows, err := db.QueryContext(t.Context(), columns)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var table, col, typ string
		var notNull bool
		if err := rows.Scan(&table, &col, &typ, &notNull); err != nil {
			t.Fatal(err)
		}
		out[table+"."+col] = typ + map[bool]string{true: " not null", false: ""}[notNull]
	}
	rows.Close()
	rows, err = db.QueryContext(t.Context(), indexes)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			t.Fatal(err)
		}
		out["index "+name] = table
	}
	return out
}
