// Package listener is the hardened TLS listener behind every tlsfleet port — the Manager's console
// (4119) and agent channel (4120), the agent's port (4118) and the relay's port (4122). It accepts TCP
// connections and runs each TLS handshake in its own goroutine under a deadline (a slow or silent client
// holds one goroutine, never the accept loop); it bounds the connections open at once, in all and per
// client address; it survives accept errors (out of file descriptors) by backing off and retrying; it
// logs who the TLS policy refused, at most one line per client address and minute; and it reports every
// handshake — accepted, refused by the policy, failed, or turned away by a limit — to a Recorder.
//
// The package depends on the standard library and internal/tlspolicy only: the agent links it without
// the Manager's telemetry or database.
package listener

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"tlsfleet/internal/tlspolicy"
)

// Outcomes of a handshake.
const (
	Accepted = "accepted" // the handshake finished
	Rejected = "rejected" // the TLS policy refused the ClientHello
	Failed   = "failed"   // the handshake failed otherwise (client gave up, bad certificate, garbage, timeout), or a limit turned the connection away
)

// Reasons recorded for connections a limit turned away.
const (
	ReasonPerAddress = "too many connections from this address"
	ReasonTotal      = "connection limit reached"
)

// Observation is one handshake as a listener saw it.
type Observation struct {
	Port       int
	ClientIP   string
	SNI        string // the client's server_name when it is one of ServerNames, "other" when not
	UserAgent  string // the first request's (Listener.Instrument only)
	AgentGUID  string // the CommonName of the client's certificate
	OfferedMax string // the newest version the client offered ("" when no ClientHello was read)
	Version    string // negotiated ("" unless accepted)
	Suite      string // negotiated
	Outcome    string // Accepted, Rejected or Failed
	Reason     string // why it was not accepted
}

// Recorder receives the listener's observations. Record runs on the handshake path: it must be cheap
// and never block.
type Recorder interface {
	Record(Observation)
}

// PolicySource is the policy a port enforces now.
type PolicySource interface {
	Policy() *tlspolicy.Policy
}

// Config configures a Listener. Zero values take the defaults.
type Config struct {
	// TLS is the server configuration (required). Set its policy server's Observer to Observe, or
	// handshakes are recorded without their ClientHello (SNI, offered version) and refusals as failures.
	TLS *tls.Config
	// Policy is the live policy behind TLS (a *tlspolicy.Server, or anything that swaps one). When
	// set, Enforce closes the open connections it forbids, and a handshake that finishes after a policy
	// change is checked against the new policy.
	Policy PolicySource
	// Port is the port named in observations and logs (default: the bound port).
	Port int
	// Role picks the default Limits.
	Role tlspolicy.Role
	// Limits bound the open connections (default: DefaultLimits(Role)).
	Limits Limits
	// HandshakeTimeout bounds a handshake from the accept on (default DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// Recorder receives every observation (nil: none are kept).
	Recorder Recorder
	// Log receives accept errors and the refusal lines (nil: no log).
	Log *slog.Logger
	// ServerNames are the names of the port's certificate (CertNames): a client's server_name is kept
	// when it is one of them and recorded as "other" when not, so that clients cannot grow the telemetry
	// at will. Empty keeps every name.
	ServerNames []string
}

// Listener is a hardened TLS listener. Accept returns *tls.Conn whose handshake finished.
type Listener struct {
	inner   net.Listener
	cfg     Config
	ready   chan *tls.Conn
	done    chan struct{}
	once    sync.Once
	stopped chan struct{} // closed when the accept loop returned
	refused refusalLog

	// deferCount is set by Instrument before serving: an accepted handshake is then recorded at the
	// connection's first request (with its User-Agent) or close, not at once.
	deferCount atomic.Bool

	mu      sync.Mutex
	limits  Limits
	open    map[*conn]struct{} // every connection accepted and not closed
	perAddr map[string]int
}

// New starts accepting on ln. Close stops it (and closes ln).
func New(ln net.Listener, cfg Config) (*Listener, error) {
	if cfg.TLS == nil {
		return nil, errors.New("listener: Config.TLS is nil: a TLS listener needs a server configuration")
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits(cfg.Role)
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.Port == 0 {
		if ta, ok := ln.Addr().(*net.TCPAddr); ok {
			cfg.Port = ta.Port
		}
	}
	cfg.ServerNames = lowerAll(cfg.ServerNames)
	l := &Listener{inner: ln, cfg: cfg, limits: cfg.Limits, ready: make(chan *tls.Conn), done: make(chan struct{}),
		stopped: make(chan struct{}), open: map[*conn]struct{}{}, perAddr: map[string]int{}}
	go l.acceptLoop()
	return l, nil
}

// Accept returns the next connection whose handshake finished.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Addr is the bound address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Port is the port named in observations.
func (l *Listener) Port() int { return l.cfg.Port }

// Limits are the limits in force.
func (l *Listener) Limits() Limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limits
}

// Open counts the connections open now (in their handshake, waiting for Accept, or accepted and not
// closed).
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

// Close stops accepting and closes the connections still in their handshake or waiting for Accept;
// connections Accept returned belong to their server.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.inner.Close()
		<-l.stopped
		l.mu.Lock()
		var pending []*conn
		for c := range l.open {
			if !c.served.Load() {
				pending = append(pending, c)
			}
		}
		l.mu.Unlock()
		for _, c := range pending {
			c.Close()
		}
	})
	return err
}

func (l *Listener) closing() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// acceptLoop accepts until Close. An accept error (out of file descriptors and the like) is logged and
// retried after a backoff that doubles from 5 ms to 1 s, as net/http does: one error never closes the
// port for good.
func (l *Listener) acceptLoop() {
	defer close(l.stopped)
	var backoff time.Duration
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			if l.closing() {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				go l.Close() // the socket was closed under us: nothing left to retry
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.logError("accept failed; retrying", "port", l.cfg.Port, "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		l.admit(raw)
	}
}

// admit takes a slot for a new connection and starts its handshake, or closes it when a limit says no.
func (l *Listener) admit(raw net.Conn) {
	ip := hostOf(raw.RemoteAddr())
	c, reason := l.take(raw, ip)
	if c == nil {
		raw.Close()
		l.record(Observation{Port: l.cfg.Port, ClientIP: ip, Outcome: Failed, Reason: reason})
		l.logRefusal(ip, "connection refused: "+reason, "limits", l.Limits())
		return
	}
	go l.handshake(c)
}

// take counts a connection from ip against the limits: the per-address limit first (one address must not
// hold every slot), then the total.
func (l *Listener) take(raw net.Conn, ip string) (*conn, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.perAddr[ip] >= l.limits.PerAddress:
		return nil, ReasonPerAddress
	case len(l.open) >= l.limits.Total:
		return nil, ReasonTotal
	}
	c := &conn{Conn: raw, l: l, ip: ip}
	l.open[c] = struct{}{}
	l.perAddr[ip]++
	return c, ""
}

// release gives a closed connection's slot back.
func (l *Listener) release(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.open[c]; !ok {
		return
	}
	delete(l.open, c)
	if l.perAddr[c.ip]--; l.perAddr[c.ip] <= 0 {
		delete(l.perAddr, c.ip)
	}
}

// handshake runs one TLS handshake under the deadline, records it, and hands a finished connection to
// Accept.
func (l *Listener) handshake(c *conn) {
	tc := tls.Server(c, l.cfg.TLS)
	c.SetDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	err := tc.Handshake()
	obs := l.observation(c, tc, err)
	if err != nil {
		tc.Close() // the slot is free before the handshake is recorded
		if obs.Outcome == Rejected {
			l.logRefusal(obs.ClientIP, "TLS handshake refused by the policy", "offered_max", obs.OfferedMax, "reason", obs.Reason)
		}
		l.record(obs)
		return
	}
	c.SetDeadline(time.Time{})
	c.established(tc)
	c.finished(obs, !l.deferCount.Load())
	if !l.stillAllowed(c) {
		tc.Close() // negotiated under a policy replaced during the handshake
		return
	}
	c.served.Store(true) // from here on Close leaves it to this goroutine or to the server
	select {
	case l.ready <- tc:
	case <-l.done:
		tc.Close()
	}
}

// observation describes a handshake's result.
func (l *Listener) observation(c *conn, tc *tls.Conn, err error) Observation {
	obs := Observation{Port: l.cfg.Port, ClientIP: c.ip}
	seen := c.hello.Load()
	if seen != nil {
		obs.SNI, obs.OfferedMax = l.sniLabel(seen.sni), seen.offeredMax
	}
	if err != nil {
		obs.Outcome, obs.Reason = Failed, err.Error()
		if seen != nil && !seen.decision.Accepted {
			obs.Outcome, obs.Reason = Rejected, seen.decision.Alert+": "+seen.decision.Reason
		}
		return obs
	}
	cs := tc.ConnectionState()
	obs.Version, obs.Suite, obs.Outcome = versionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), Accepted
	if len(cs.PeerCertificates) > 0 {
		obs.AgentGUID = cs.PeerCertificates[0].Subject.CommonName
	}
	return obs
}

func (l *Listener) record(o Observation) {
	if l.cfg.Recorder != nil {
		l.cfg.Recorder.Record(o)
	}
}

func (l *Listener) logError(msg string, args ...any) {
	if l.cfg.Log != nil {
		l.cfg.Log.Error(msg, args...)
	}
}

// logRefusal writes one line per client address and minute about a connection the listener refused, so
// that an operator sees who is cut off (and a flood cannot fill the log).
func (l *Listener) logRefusal(ip, msg string, args ...any) {
	if l.cfg.Log == nil || !l.refused.allow(ip, time.Now()) {
		return
	}
	l.cfg.Log.Warn(msg, append([]any{"port", l.cfg.Port, "client", ip}, args...)...)
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}
