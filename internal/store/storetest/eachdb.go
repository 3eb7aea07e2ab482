package storetest

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"tlsfleet/internal/install"
	"tlsfleet/internal/testtarget"
)

// Backend is one database a test runs on: Name is "sqlite" or "postgres", Database what
// configuration.properties would say (an SQLite file in the test's temporary folder, or a fresh
// database on the package's PostgreSQL server).
type Backend struct {
	Name     string
	Database install.Database
}

// EachDB runs f as a subtest on SQLite and on PostgreSQL. The PostgreSQL subtest skips, with the
// reason, only when the server binaries are missing and CI is not set (testtarget's rule); the package
// must call Main from its TestMain.
func EachDB(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run(install.DatabaseSQLite, func(t *testing.T) { f(t, SQLite(t)) })
	t.Run(install.DatabasePostgres, func(t *testing.T) { f(t, Postgres(t)) })
}

// SQLite returns a backend on a new SQLite file in t's temporary folder.
func SQLite(t testing.TB) Backend {
	return Backend{Name: install.DatabaseSQLite, Database: install.Database{Type: install.DatabaseSQLite, Path: filepath.Join(t.TempDir(), install.DefaultDBFile)}}
}

// server is the package's one PostgreSQL server, started by the first test that needs it and stopped
// by Main after the last.
var server struct {
	sync.Mutex
	main     bool
	started  bool
	why      string // why there is no server: the first test's skip or failure
	target   *testtarget.Target
	admin    *sql.DB // connected to the database "postgres", to create and drop the tests' databases
	n        int
	cleanups []func()
}

// Main runs the package's tests and then stops its PostgreSQL server: call it from TestMain.
func Main(m *testing.M) {
	server.main = true
	code := m.Run()
	server.Lock()
	if server.admin != nil {
		server.admin.Close()
	}
	for i := len(server.cleanups) - 1; i >= 0; i-- {
		server.cleanups[i]()
	}
	server.Unlock()
	os.Exit(code)
}

// Postgres returns a backend on a fresh database (dropped when t ends) of the package's PostgreSQL
// server, reached over TLS on loopback (sslmode=require: the test server's certificate is
// self-signed).
func Postgres(t testing.TB) Backend {
	t.Helper()
	tg, admin := startServer(t)
	server.Lock()
	server.n++
	name := fmt.Sprintf("t%d", server.n)
	server.Unlock()
	if _, err := admin.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storetest: CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		// WITH (FORCE): a store the test left open must not keep its database.
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("storetest: DROP DATABASE %s: %v", name, err)
		}
	})
	return Backend{Name: install.DatabasePostgres, Database: PostgresDatabase(tg, name)}
}

// PostgresDatabase is the install.Database of the database name on tg, as its superuser postgres (trust
// authentication, no password), with sslmode=require.
func PostgresDatabase(tg *testtarget.Target, name string) install.Database {
	return install.Database{Type: install.DatabasePostgres, Host: tg.Host(), Port: tg.Port(), Name: name, User: "postgres", SSLMode: install.SSLRequire}
}

func startServer(t testing.TB) (*testtarget.Target, *sql.DB) {
	t.Helper()
	server.Lock()
	defer server.Unlock()
	if !server.main {
		t.Fatal("storetest: the package's PostgreSQL server needs `func TestMain(m *testing.M) { storetest.Main(m) }`, which stops it")
	}
	if server.started {
		if server.target == nil {
			t.Skipf("storetest: no PostgreSQL server: %s", server.why)
		}
		return server.target, server.admin
	}
	server.started = true
	server.why = "it did not start (see the first PostgreSQL test's failure)"
	tb := &packageTB{TB: t}
	tg := testtarget.Postgres(tb, testtarget.PostgresConfig{Name: "storetest-postgres", MaxConnections: 200})
	d := PostgresDatabase(tg, "postgres")
	admin, err := sql.Open("pgx", fmt.Sprintf("host=%s port=%d dbname=postgres user=postgres sslmode=require", d.Host, d.Port))
	if err != nil {
		t.Fatal(err)
	}
	server.target, server.admin = tg, admin
	return tg, admin
}

// packageTB is the first test that needs the server, but the server's cleanups wait for Main, and its
// skip or failure is remembered for the tests after it.
type packageTB struct {
	testing.TB
}

func (p *packageTB) Cleanup(f func()) { server.cleanups = append(server.cleanups, f) }

func (p *packageTB) Skipf(format string, args ...any) {
	server.why = fmt.Sprintf(format, args...)
	p.TB.Skipf(format, args...)
}

// UseDatabase makes dir an install folder (with the given ports) whose configuration.properties names
// b's database.
func UseDatabase(t testing.TB, dir string, b Backend, consolePort, agentPort int) {
	t.Helper()
	if _, err := install.InitFiles(dir, consolePort, agentPort); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, install.ConfigFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.Database.Properties()); err != nil {
		t.Fatal(err)
	}
}
