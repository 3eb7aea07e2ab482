package install

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"tlsfleet/internal/tlspolicy"
)

// Keys of configuration.properties that choose the database. database.type and database.name are in
// install.go (database.name is the SQLite file for sqlite, the database's name for postgres).
const (
	KeyDatabaseHost         = "database.host"
	KeyDatabasePort         = "database.port"
	KeyDatabaseUser         = "database.user"
	KeyDatabasePasswordFile = "database.passwordFile"
	KeyDatabaseSSLMode      = "database.sslmode"
	KeyDatabaseSSLRootCert  = "database.sslrootcert"
	// keyDatabasePassword is refused: a password belongs in database.passwordFile or EnvDatabasePassword.
	keyDatabasePassword = "database.password"
)

// EnvDatabasePassword is the environment variable that gives the PostgreSQL password when
// database.passwordFile is not set.
const EnvDatabasePassword = "TLSFLEET_DB_PASSWORD"

// Database types.
const (
	DatabaseSQLite   = "sqlite"
	DatabasePostgres = "postgres"
)

// SSL modes a Manager accepts, as libpq names them. allow and prefer are refused: they fall back to
// plain text without a word, and the page asks the operator to know the database connection's TLS.
const (
	SSLDisable    = "disable"     // no TLS: only when written out
	SSLRequire    = "require"     // TLS, the server certificate not checked (with sslrootcert: checked as verify-ca)
	SSLVerifyCA   = "verify-ca"   // TLS, the certificate chains to sslrootcert (or the system roots)
	SSLVerifyFull = "verify-full" // verify-ca, and the certificate names database.host
)

// Defaults of the PostgreSQL keys. A host that is not loopback defaults to verify-full; a loopback
// host defaults to require: the connection is encrypted, but a local server's certificate (Debian's
// snakeoil one) usually cannot be verified, and loopback traffic does not leave the machine.
const (
	DefaultDatabaseHost = "127.0.0.1"
	DefaultDatabasePort = 5432
	DefaultDatabaseName = "tlsfleet"
	DefaultDatabaseUser = "tlsfleet"
)

// Database is the database configuration.properties chooses. For sqlite only Path is set.
type Database struct {
	Type string // DatabaseSQLite or DatabasePostgres
	Path string // the SQLite file

	Host, Name, User string
	Port             int
	// Password is read from database.passwordFile or EnvDatabasePassword ("" when neither is set:
	// trust or peer authentication, or a ~/.pgpass). It is never written to a log.
	Password    string
	SSLMode     string
	SSLRootCert string // an absolute path, "" for none
}

// String names the database for messages and logs, without the password.
func (d Database) String() string {
	if d.Type != DatabasePostgres {
		return d.Path
	}
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=%s", d.User, net.JoinHostPort(d.Host, strconv.Itoa(d.Port)), d.Name, d.SSLMode)
}

// readDatabase reads the database keys of cp; dir resolves relative paths. A bad value is an error
// naming the file, the line and the fix.
func readDatabase(cp *tlspolicy.ConfigProperties, dir string) (Database, error) {
	d := Database{Type: DatabaseSQLite, Path: filepath.Join(dir, DefaultDBFile)}
	get := func(key string) (tlspolicy.Property, string, bool) {
		pr, ok := cp.Props.Get(key)
		return pr, strings.TrimSpace(pr.Value), ok
	}
	if pr, v, ok := get(KeyDatabaseType); ok {
		switch strings.ToLower(v) {
		case DatabaseSQLite:
		case DatabasePostgres, "postgresql":
			d.Type = DatabasePostgres
		default:
			return d, fmt.Errorf("%s:%d: %s=%s is not a database type; use %s (a file in the install folder) or %s", pr.File, pr.Line, KeyDatabaseType, pr.Value, DatabaseSQLite, DatabasePostgres)
		}
	}
	if d.Type == DatabaseSQLite {
		if _, v, ok := get(KeyDatabaseName); ok && v != "" {
			d.Path = v
			if !filepath.IsAbs(v) {
				d.Path = filepath.Join(dir, v)
			}
		}
		return d, nil
	}
	return readPostgres(cp, dir)
}

// readPostgres reads the PostgreSQL keys.
func readPostgres(cp *tlspolicy.ConfigProperties, dir string) (Database, error) {
	d := Database{Type: DatabasePostgres, Host: DefaultDatabaseHost, Port: DefaultDatabasePort, Name: DefaultDatabaseName, User: DefaultDatabaseUser}
	at := func(pr tlspolicy.Property) string {
		return fmt.Sprintf("%s:%d: %s=%s", pr.File, pr.Line, pr.Key, pr.Value)
	}
	if pr, ok := cp.Props.Get(keyDatabasePassword); ok {
		return d, fmt.Errorf("%s:%d: %s: the password may not be written in %s; put it in a file only the Manager's user can read and name it with %s=FILE, or set %s, and remove this line",
			pr.File, pr.Line, keyDatabasePassword, ConfigFile, KeyDatabasePasswordFile, EnvDatabasePassword)
	}
	for _, k := range []struct {
		key string
		dst *string
	}{{KeyDatabaseHost, &d.Host}, {KeyDatabaseName, &d.Name}, {KeyDatabaseUser, &d.User}} {
		if pr, ok := cp.Props.Get(k.key); ok {
			v := strings.TrimSpace(pr.Value)
			if v == "" || strings.ContainsAny(v, " \t'\"\\") || k.key == KeyDatabaseHost && !validHostName(v) {
				return d, fmt.Errorf("%s is not valid; write a plain %s (no spaces or quotes), or remove the line for %s", at(pr), k.key, *k.dst)
			}
			*k.dst = v
		}
	}
	if pr, ok := cp.Props.Get(KeyDatabasePort); ok {
		n, err := strconv.Atoi(strings.TrimSpace(pr.Value))
		if err != nil || n < 1 || n > 65535 {
			return d, fmt.Errorf("%s is not a port number (1-65535); PostgreSQL's is %d", at(pr), DefaultDatabasePort)
		}
		d.Port = n
	}
	if err := readPassword(cp, dir, &d); err != nil {
		return d, err
	}
	return d, readSSL(cp, dir, &d)
}

// readPassword reads database.passwordFile (which only its owner may read), else EnvDatabasePassword.
func readPassword(cp *tlspolicy.ConfigProperties, dir string, d *Database) error {
	pr, ok := cp.Props.Get(KeyDatabasePasswordFile)
	if !ok {
		d.Password = os.Getenv(EnvDatabasePassword)
		return nil
	}
	p := absIn(dir, strings.TrimSpace(pr.Value))
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("%s:%d: %s=%s: %v; write the password into that file (mode 0600), or remove the line and set %s", pr.File, pr.Line, pr.Key, pr.Value, err, EnvDatabasePassword)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s:%d: %s=%s: the file is readable by others (mode %04o); run chmod 600 %s", pr.File, pr.Line, pr.Key, pr.Value, fi.Mode().Perm(), p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("%s:%d: %s=%s: %w", pr.File, pr.Line, pr.Key, pr.Value, err)
	}
	d.Password = strings.TrimRight(string(b), "\r\n")
	return nil
}

// readSSL reads database.sslmode (default verify-full, require for a loopback host) and
// database.sslrootcert.
func readSSL(cp *tlspolicy.ConfigProperties, dir string, d *Database) error {
	d.SSLMode = SSLVerifyFull
	if isLoopback(d.Host) {
		d.SSLMode = SSLRequire
	}
	if pr, ok := cp.Props.Get(KeyDatabaseSSLMode); ok {
		switch v := strings.TrimSpace(pr.Value); v {
		case SSLDisable, SSLRequire, SSLVerifyCA, SSLVerifyFull:
			d.SSLMode = v
		default:
			return fmt.Errorf("%s:%d: %s=%s is not an SSL mode this Manager accepts; use %s, %s, %s or %s (allow and prefer would fall back to plain text unseen)",
				pr.File, pr.Line, pr.Key, pr.Value, SSLVerifyFull, SSLVerifyCA, SSLRequire, SSLDisable)
		}
	}
	if pr, ok := cp.Props.Get(KeyDatabaseSSLRootCert); ok {
		p := absIn(dir, strings.TrimSpace(pr.Value))
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s:%d: %s=%s: %v; name the PEM file of the CA that signed the PostgreSQL server's certificate", pr.File, pr.Line, pr.Key, pr.Value, err)
		}
		if d.SSLMode == SSLDisable {
			return fmt.Errorf("%s:%d: %s=%s is set but %s=%s: set %s=%s to verify the server with it, or remove the line", pr.File, pr.Line, pr.Key, pr.Value, KeyDatabaseSSLMode, SSLDisable, KeyDatabaseSSLMode, SSLVerifyFull)
		}
		d.SSLRootCert = p
	}
	return nil
}

func absIn(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Properties is d as configuration.properties lines (never the password: that is in
// database.passwordFile or EnvDatabasePassword).
func (d Database) Properties() string {
	if d.Type != DatabasePostgres {
		return fmt.Sprintf("%s=%s\n%s=%s\n", KeyDatabaseType, DatabaseSQLite, KeyDatabaseName, d.Path)
	}
	s := fmt.Sprintf("%s=%s\n%s=%s\n%s=%d\n%s=%s\n%s=%s\n%s=%s\n", KeyDatabaseType, DatabasePostgres, KeyDatabaseHost, d.Host,
		KeyDatabasePort, d.Port, KeyDatabaseName, d.Name, KeyDatabaseUser, d.User, KeyDatabaseSSLMode, d.SSLMode)
	if d.SSLRootCert != "" {
		s += fmt.Sprintf("%s=%s\n", KeyDatabaseSSLRootCert, d.SSLRootCert)
	}
	return s
}
