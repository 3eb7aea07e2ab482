package testtarget

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostgresDefaultCiphers is PostgreSQL's default ssl_ciphers.
const PostgresDefaultCiphers = "HIGH:MEDIUM:+3DES:!aNULL"

// PostgresConfig describes a PostgreSQL target.
type PostgresConfig struct {
	Name string
	Cert CertKind // default RSA2048
	// MinProtocol and MaxProtocol set ssl_min_protocol_version and ssl_max_protocol_version in this
	// package's spelling ("TLSv1.0" ... "TLSv1.3"); empty means PostgreSQL's defaults (TLSv1.2, none).
	MinProtocol, MaxProtocol string
	// Ciphers sets ssl_ciphers (TLS 1.2 and older); empty means PostgresDefaultCiphers. TLS 1.0/1.1
	// need "@SECLEVEL=0" in it, as with s_server.
	Ciphers string
	// ClientOrder sets ssl_prefer_server_ciphers=off (PostgreSQL's default is on: server order).
	ClientOrder bool
	// SSLOff starts the server with ssl=off: it answers an SSLRequest with 'N', and the target has no
	// versions or suites.
	SSLOff bool
	// MaxConnections sets max_connections (default 20); a server that many stores share needs more.
	MaxConnections int
}

// postgresBinDir finds the directory of the PostgreSQL server binaries: the newest
// /usr/lib/postgresql/N/bin (Debian), else the directory of `postgres` on PATH.
func postgresBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return vb - va
	})
	if len(dirs) > 0 {
		return filepath.Dir(dirs[0])
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// Postgres starts a PostgreSQL server (initdb into a fresh directory, then postgres) with ssl=on and a
// certificate from NewCert, listening on 127.0.0.1 at a free port with its Unix socket in its own
// directory. As root it runs as the OS user postgres (PostgreSQL refuses root); otherwise as the current
// user. It waits until the server answers an SSLRequest with 'S', and cleanup stops it with SIGQUIT —
// what `pg_ctl stop -m immediate` sends — then removes its directory. The target's StartTLS is
// "postgres": TLS starts after the 8-byte SSLRequest.
func Postgres(t testing.TB, cfg PostgresConfig) *Target {
	t.Helper()
	openssl := RequireTool(t, "openssl")
	bin := postgresBinDir()
	if bin == "" {
		missing(t, "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin); run scripts/test-deps.sh")
	}
	if cfg.Name == "" {
		cfg.Name = "postgres"
	}
	if cfg.Cert == "" {
		cfg.Cert = RSA2048
	}
	if cfg.Ciphers == "" {
		cfg.Ciphers = PostgresDefaultCiphers
	}
	lo, hi := orDefault(cfg.MinProtocol, TLSv12), orDefault(cfg.MaxProtocol, TLSv13)
	versions, err := versionRange([]string{lo, hi})
	if err != nil || versions[0] == SSLv3 {
		t.Fatalf("testtarget %s: bad protocol range %s..%s: %v", cfg.Name, lo, hi, err)
	}

	dir, data, cert, cred := initPostgres(t, cfg, bin)

	tg := &Target{Name: cfg.Name, ServerOrder: !cfg.ClientOrder, CertKey: cert.Key, CertSig: cert.Sig, Cert: cert,
		StartTLS: "postgres"}
	if !cfg.SSLOff {
		tg.Versions, tg.Suites, err = OpenSSLTruth(openssl, versions, cfg.Ciphers, "", cert.OpenSSLAuth)
		if err != nil {
			t.Fatalf("testtarget %s: %v", cfg.Name, err)
		}
	}
	for _, v := range tg.Versions {
		for _, s := range tg.Suites[v] {
			if strings.HasPrefix(s, "TLS_DHE_") {
				tg.DHBits = 2048 // PostgreSQL's built-in group when ssl_dh_params_file is empty
			}
		}
	}
	settings := postgresSettings(cfg, dir, cert, lo, hi)
	tg.Addr = startProcess(t, cfg.Name, syscall.SIGQUIT, func(port int) *exec.Cmd {
		args := []string{"-D", data, "-c", "port=" + strconv.Itoa(port)}
		for _, s := range settings {
			args = append(args, "-c", s)
		}
		cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = dir
		return cmd
	})
	waitPostgres(t, cfg.Name, tg.Addr, map[bool]byte{false: 'S', true: 'N'}[cfg.SSLOff])
	return tg
}

// initPostgres makes the server's directory — its certificate, and a data directory initdb fills — owned
// by the OS user postgres when running as root (PostgreSQL refuses root), and returns the directory, the
// data directory, the certificate and the credential to run the server with (nil: the current user).
func initPostgres(t testing.TB, cfg PostgresConfig, bin string) (string, string, *Cert, *syscall.Credential) {
	t.Helper()
	var cred *syscall.Credential
	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			missing(t, "running as root and there is no OS user postgres to run PostgreSQL as: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir(): its parent is mode 0700 and owned by root, out of the postgres user's reach.
	dir, err := os.MkdirTemp("", "testtarget-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cert, err := writeCert(cfg.Cert, dir)
	if err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		for _, f := range []string{dir, cert.CertFile, cert.KeyFile} {
			if err := os.Chown(f, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("testtarget %s: initdb: %v\n%s", cfg.Name, err, out)
	}
	return dir, data, cert, cred
}

// postgresSettings are the -c settings of the server: TLS as cfg says, with the certificate, and the
// socket in dir.
func postgresSettings(cfg PostgresConfig, dir string, cert *Cert, lo, hi string) []string {
	pgVersion := func(v string) string {
		if v == TLSv10 {
			return "TLSv1"
		}
		return v
	}
	settings := []string{
		"listen_addresses=127.0.0.1",
		"unix_socket_directories=" + dir,
		"ssl=" + map[bool]string{false: "on", true: "off"}[cfg.SSLOff],
		"ssl_cert_file=" + cert.CertFile,
		"ssl_key_file=" + cert.KeyFile,
		"ssl_ciphers=" + cfg.Ciphers,
		"ssl_min_protocol_version=" + pgVersion(lo),
		"ssl_prefer_server_ciphers=" + map[bool]string{true: "off", false: "on"}[cfg.ClientOrder],
		"fsync=off",
		"max_connections=" + strconv.Itoa(cmp.Or(cfg.MaxConnections, 20)),
		"shared_buffers=16MB",
	}
	if cfg.MaxProtocol != "" {
		settings = append(settings, "ssl_max_protocol_version="+pgVersion(hi))
	}
	return settings
}

// waitPostgres waits (up to 20 s) until the server at addr answers an SSLRequest with want ('S' with
// ssl=on, 'N' with ssl=off).
func waitPostgres(t testing.TB, name, addr string, want byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := postgresSSLAnswer(addr, want)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("testtarget %s: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// PostgresSSLRequest sends PostgreSQL's SSLRequest to addr and checks that the server answers 'S'
// (ready to start TLS).
func PostgresSSLRequest(addr string) error { return postgresSSLAnswer(addr, 'S') }

// postgresSSLAnswer sends an SSLRequest to addr and checks that the server answers want.
func postgresSSLAnswer(addr string, want byte) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(PostgresSSLRequestBytes); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("postgres %s: no answer to SSLRequest: %w", addr, err)
	}
	if b[0] != want {
		return fmt.Errorf("postgres %s: SSLRequest answered %q, want %q", addr, b[0], want)
	}
	return nil
}

// PostgresSSLRequestBytes is the SSLRequest message: length 8, code 80877103.
var PostgresSSLRequestBytes = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
