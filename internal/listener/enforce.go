package listener

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"

	"tlsfleet/internal/tlspolicy"
)

// Enforcement: a policy change reaches the connections already open. A port's new policy applies to
// new handshakes at once (tlspolicy.Server.Update), but a client on a kept-alive connection negotiated
// under the old one would go on talking TLS 1.0 for as long as it keeps the connection — and a scanner
// would report the port clean meanwhile. Enforce closes every open connection whose negotiated version
// or suite the policy in force forbids: idle ones at once, ones serving a request once its response is
// written (TrackHTTP tells them apart).

// Enforcement counts what Enforce did to a port's open connections.
type Enforcement struct {
	Closed        int // forbidden, closed at once (idle, or not serving HTTP; the close runs in the background)
	AfterResponse int // forbidden, serving a request: closed once its response is written
	Kept          int // allowed by the policy
}

// Forbids says why a policy no longer allows a connection that negotiated version and suite ("" when
// it does).
func Forbids(p *tlspolicy.Policy, version, suite uint16) string {
	v := tlspolicy.Version(version)
	if !p.Allows(v) {
		return fmt.Sprintf("port %d no longer accepts %s", p.Listener.Port, v)
	}
	suites := p.Suites
	if v == tlspolicy.TLSv1_3 {
		suites = p.TLS13Suites
	}
	if !slices.Contains(suites, suite) {
		return fmt.Sprintf("port %d no longer accepts %s with %s", p.Listener.Port, v, tls.CipherSuiteName(suite))
	}
	return ""
}

// Enforce closes the open connections that the policy in force (Config.Policy) forbids and logs how
// many, per port. Call it after each tlspolicy.Server.Update. Without Config.Policy it does nothing.
func (l *Listener) Enforce() Enforcement {
	var e Enforcement
	if l.cfg.Policy == nil {
		return e
	}
	p := l.cfg.Policy.Policy()
	l.mu.Lock()
	conns := slices.Collect(maps.Keys(l.open))
	l.mu.Unlock()
	for _, c := range conns {
		switch c.enforce(p) {
		case enforceClosed:
			e.Closed++
		case enforceAfterResponse:
			e.AfterResponse++
		case enforceKept:
			e.Kept++
		}
	}
	if e.Closed+e.AfterResponse > 0 && l.cfg.Log != nil {
		l.cfg.Log.Info("open connections closed: the new TLS policy forbids their version or suite", "port", l.cfg.Port,
			"closed", e.Closed, "closing_after_response", e.AfterResponse, "kept", e.Kept)
	}
	return e
}

// TrackHTTP lets Enforce tell hs's idle connections from those serving a request (it wraps
// hs.ConnState). Call it before hs serves this listener; Instrument calls it.
func (l *Listener) TrackHTTP(hs *http.Server) {
	base := hs.ConnState
	hs.ConnState = func(nc net.Conn, st http.ConnState) {
		if c := l.connOf(nc); c != nil {
			c.httpState(st)
		}
		if base != nil {
			base(nc, st)
		}
	}
}

// connOf is the listener's connection under a connection its server was handed.
func (l *Listener) connOf(nc net.Conn) *conn {
	if tc, ok := nc.(*tls.Conn); ok {
		if c, ok := tc.NetConn().(*conn); ok && c.l == l {
			return c
		}
	}
	return nil
}

type enforceResult int

const (
	enforceSkipped       enforceResult = iota // still in its handshake (checked when it ends), closed or closing
	enforceKept                               // allowed
	enforceClosed                             // closed now
	enforceAfterResponse                      // closes when its response is written
)

// established notes a finished handshake's connection and what it negotiated.
func (c *conn) established(tc *tls.Conn) {
	cs := tc.ConnectionState()
	c.mu.Lock()
	c.tc, c.version, c.suite = tc, cs.Version, cs.CipherSuite
	c.mu.Unlock()
}

// enforce applies p to an established connection.
func (c *conn) enforce(p *tlspolicy.Policy) enforceResult {
	c.mu.Lock()
	if c.tc == nil || c.closed || c.doomed {
		c.mu.Unlock()
		return enforceSkipped
	}
	if Forbids(p, c.version, c.suite) == "" {
		c.mu.Unlock()
		return enforceKept
	}
	c.doomed = true
	if c.active {
		c.mu.Unlock()
		return enforceAfterResponse
	}
	tc := c.tc
	c.mu.Unlock()
	// Close sends close_notify under a write deadline of its own (5 s): a client that does not read
	// must not hold up the policy change, nor the other connections' closes.
	go tc.Close()
	return enforceClosed
}

// httpState follows the server's view of the connection; a connection Enforce doomed while it served
// a request closes as soon as the response is written (the server turns it idle).
func (c *conn) httpState(st http.ConnState) {
	c.mu.Lock()
	c.active = st == http.StateActive
	closeNow := c.doomed && st == http.StateIdle
	tc := c.tc
	c.mu.Unlock()
	if closeNow && tc != nil {
		tc.Close()
	}
}

// stillAllowed checks a connection whose handshake just finished against the policy in force now: a
// handshake that began before an Update finishes under the old policy, after Enforce looked.
func (l *Listener) stillAllowed(c *conn) bool {
	if l.cfg.Policy == nil {
		return true
	}
	c.mu.Lock()
	v, s := c.version, c.suite
	c.mu.Unlock()
	return Forbids(l.cfg.Policy.Policy(), v, s) == ""
}
