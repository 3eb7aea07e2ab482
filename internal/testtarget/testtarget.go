// Package testtarget starts real TLS servers on free loopback ports for the tests and benchmarks of
// tlsfleet's scanner, and records for each one the truth a scanner must find: the protocol versions and
// the IANA cipher-suite names it accepts, whether it picks suites in its own order, and its certificate.
//
// The servers are `openssl s_server` processes (OpenSSL 3.0: no SSLv3, RC4 or 3DES; TLS 1.0/1.1 only
// with @SECLEVEL=0), a Go crypto/tls server with RC4 and 3DES suites, a hand-written SSLv3-only
// responder that answers up to ServerHelloDone, and a real PostgreSQL server that speaks TLS after its
// SSLRequest (STARTTLS). RunNmap and RunSSLScan run the reference scanners against any of them.
//
// Every function takes a testing.TB and stops what it started with t.Cleanup. A missing external tool
// skips the test, except when the environment variable CI is set, where it fails it (RequireTool).
package testtarget

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// Versions in ascending order, in nmap's and OpenSSL's spelling.
const (
	SSLv3  = "SSLv3"
	TLSv10 = "TLSv1.0"
	TLSv11 = "TLSv1.1"
	TLSv12 = "TLSv1.2"
	TLSv13 = "TLSv1.3"
)

// AllVersions lists the protocol versions a target can have, oldest first.
var AllVersions = []string{SSLv3, TLSv10, TLSv11, TLSv12, TLSv13}

// versionIndex returns v's position in AllVersions, or -1.
func versionIndex(v string) int { return slices.Index(AllVersions, v) }

// Target is a running server and what it accepts.
type Target struct {
	Name string `json:"name"`
	Addr string `json:"addr"` // "127.0.0.1:port"
	// Versions the server completes a handshake with, oldest first (nmap's names: SSLv3, TLSv1.0, ...).
	Versions []string `json:"versions"`
	// Suites maps each of Versions to the IANA names of the suites the server accepts with it, in the
	// server's preference order when ServerOrder is set. The list is the truth a scanner must find.
	Suites map[string][]string `json:"suites"`
	// ServerOrder is set when the server picks the suite by its own preference, not the client's.
	ServerOrder bool `json:"server_order"`
	// CertKey describes the certificate's key like nmap's kex_info ("rsa 2048", "ec 256"); CertSig is
	// its signature algorithm as Go names it ("SHA256-RSA", "SHA1-RSA", "ECDSA-SHA256").
	CertKey string `json:"cert_key"`
	CertSig string `json:"cert_sig"`
	// DHBits is the size of the finite-field group of DHE suites when it is fixed (-dhparam, or
	// PostgreSQL's built-in group), 0 when there are no DHE suites or OpenSSL picks it.
	DHBits int `json:"dh_bits,omitempty"`
	// StartTLS names the plain-text preamble a client must send before the TLS handshake, in
	// `openssl s_client -starttls` spelling ("postgres"); empty for direct TLS.
	StartTLS string `json:"starttls,omitempty"`
	// Cert is the certificate the server presents.
	Cert *Cert `json:"-"`

	conns *atomic.Int64
}

// Host returns the target's IP address ("127.0.0.1").
func (tg *Target) Host() string {
	h, _, _ := net.SplitHostPort(tg.Addr)
	return h
}

// Port returns the target's TCP port.
func (tg *Target) Port() int {
	_, p, _ := net.SplitHostPort(tg.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Accepts reports whether the truth says the server accepts suite (an IANA name) with version.
func (tg *Target) Accepts(version, suite string) bool {
	return slices.Contains(tg.Suites[version], suite)
}

// Connections returns how many TCP connections the target has accepted so far, or -1 when it does not
// count them (OpenSSL and PostgreSQL targets; put a Proxy in front of those to count).
func (tg *Target) Connections() int64 {
	if tg.conns == nil {
		return -1
	}
	return tg.conns.Load()
}

// RequireTool returns the path of the named program. When it is missing the test is skipped — or, when
// the environment variable CI is non-empty, failed: CI must never skip silently (scripts/test-deps.sh
// installs every tool).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s is not installed; run scripts/test-deps.sh", name)
	}
	return p
}

// missing skips the test, or fails it under CI.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Listen listens on a free loopback port until the test ends.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// errExited is returned by waitAccepting when the process died before it listened.
var errExited = errors.New("process exited before it accepted connections")

// waitAccepting polls addr until a TCP connection succeeds, the process signals exited (closed channel)
// or the timeout passes.
func waitAccepting(addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 100*time.Millisecond) {
		select {
		case <-exited:
			return errExited
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			// Make sure the listener is ours: a process that lost the port to another one exits at once.
			select {
			case <-exited:
				return errExited
			case <-time.After(20 * time.Millisecond):
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not accepting after %v: %w", addr, timeout, err)
		}
		time.Sleep(delay)
	}
}
