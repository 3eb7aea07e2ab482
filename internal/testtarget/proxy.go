package testtarget

import (
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy puts a counting TCP relay in front of tg, so that Connections() tells how many connections a
// scanner opened (OpenSSL and PostgreSQL targets do not count their own). The returned Target is a copy
// of tg with the relay's address and the name tg.Name+"+proxy"; the truth is tg's.
func Proxy(t testing.TB, tg *Target) *Target {
	t.Helper()
	ln := Listen(t)
	p := *tg
	p.Name, p.Addr, p.conns = tg.Name+"+proxy", ln.Addr().String(), new(atomic.Int64)
	serve(t, ln, p.conns, func(c net.Conn) {
		up, err := net.DialTimeout("tcp", tg.Addr, 5*time.Second)
		if err != nil {
			return
		}
		defer up.Close()
		done := make(chan struct{})
		go func() {
			io.Copy(up, c)
			up.(*net.TCPConn).CloseWrite()
			close(done)
		}()
		io.Copy(c, up)
		c.(*net.TCPConn).CloseWrite()
		// The client's side ends when it closes; serve's cleanup closes c to end a stuck copy.
		<-done
	})
	return &p
}

// StartAll starts every kind of target: the OpenSSL presets (Modern, Legacy, ECDSA, DHE1024,
// TLS13Only), GoLegacy, FakeSSLv3 and a default Postgres, in that order. A missing tool skips (or under
// CI fails) the test, as RequireTool does.
func StartAll(t testing.TB) []*Target {
	t.Helper()
	return []*Target{
		Modern(t), Legacy(t), ECDSA(t), DHE1024(t), TLS13Only(t),
		GoLegacy(t), FakeSSLv3(t), Postgres(t, PostgresConfig{}),
	}
}
