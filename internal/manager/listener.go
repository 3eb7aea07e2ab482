package manager

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tlsfleet/internal/telemetry"
	"tlsfleet/internal/tlspolicy"
)

// helloSeen is what the policy observer learned from a connection's ClientHello.
type helloSeen struct {
	sni        string
	offeredMax string
	decision   tlspolicy.Decision
}

// obsConn is the raw connection under a TLS handshake; the policy observer leaves the ClientHello's
// facts on it.
type obsConn struct {
	net.Conn
	hello atomic.Pointer[helloSeen]
}

// connRecord follows an accepted connection until its first request, when its handshake is counted
// with the request's User-Agent (or until it closes without one).
type connRecord struct {
	key  telemetry.Key
	once sync.Once
}

func (rec *connRecord) count(tel *telemetry.Recorder, userAgent string) {
	rec.once.Do(func() {
		rec.key.UserAgent = userAgent
		tel.Record(rec.key, "")
	})
}

// tlsListener accepts TCP connections, runs each TLS handshake in its own goroutine under a deadline
// (a slow or silent client holds one goroutine, never the accept loop), counts every handshake, and hands
// finished *tls.Conn to the HTTP server. At most maxConns connections are open at once; more are closed
// on arrival.
type tlsListener struct {
	net.Listener
	port     int
	config   *tls.Config
	tel      *telemetry.Recorder
	timeout  time.Duration
	slots    chan struct{}
	ready    chan net.Conn
	done     chan struct{}
	closeErr sync.Once
	records  sync.Map // *tls.Conn -> *connRecord
	log      *slog.Logger
	names    []string // the DNS names of the Manager's certificate (lower case)
	maxPerIP int      // connections one address may hold (0: no limit)
	ipMu     sync.Mutex
	perIP    map[string]int
	logMu    sync.Mutex
	logged   map[string]time.Time // client IP -> last refusal logged
}

// logRefusal writes one line per client and minute about a handshake the policy refused, so that an
// operator sees who is cut off (and a flood cannot fill the log).
func (l *tlsListener) logRefusal(ip, offered, reason string) {
	if l.log == nil {
		return
	}
	l.logMu.Lock()
	if l.logged == nil {
		l.logged = map[string]time.Time{}
	}
	last := l.logged[ip]
	now := time.Now()
	if now.Sub(last) < time.Minute {
		l.logMu.Unlock()
		return
	}
	if len(l.logged) > 10000 {
		clear(l.logged)
	}
	l.logged[ip] = now
	l.logMu.Unlock()
	l.log.Warn("TLS handshake refused by the policy", "port", l.port, "client", ip, "offered_max", offered, "reason", reason)
}

func newTLSListener(ln net.Listener, port int, cfg *tls.Config, tel *telemetry.Recorder, timeout time.Duration, maxConns int, log *slog.Logger, names []string) *tlsListener {
	l := &tlsListener{Listener: ln, port: port, config: cfg, tel: tel, timeout: timeout, log: log, names: names, maxPerIP: max(4, maxConns/8),
		slots: make(chan struct{}, maxConns), ready: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	backoff := time.Duration(0)
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			// Out of file descriptors and the like: log, wait and go on (as net/http does); never let
			// one error close the port for good.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if l.log != nil {
				l.log.Error("accept failed; retrying", "port", l.port, "err", err, "in", backoff)
			}
			select {
			case <-time.After(backoff):
			case <-l.done:
				return
			}
			continue
		}
		backoff = 0
		ip := hostOf(raw.RemoteAddr())
		if !l.takeIP(ip) {
			raw.Close() // one address may not hold every slot
			l.tel.Record(telemetry.Key{Port: l.port, ClientIP: ip, Outcome: telemetry.Failed}, "too many connections from this address")
			continue
		}
		select {
		case l.slots <- struct{}{}:
			go l.handshake(raw)
		default:
			l.releaseIP(ip)
			raw.Close() // over the connection limit
			l.tel.Record(telemetry.Key{Port: l.port, ClientIP: ip, Outcome: telemetry.Failed}, "connection limit reached")
		}
	}
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

func (l *tlsListener) handshake(raw net.Conn) {
	oc := &obsConn{Conn: raw}
	tc := tls.Server(oc, l.config)
	raw.SetDeadline(time.Now().Add(l.timeout))
	err := tc.Handshake()
	key := telemetry.Key{Port: l.port, ClientIP: hostOf(raw.RemoteAddr())}
	seen := oc.hello.Load()
	if seen != nil {
		key.SNI, key.OfferedMax = l.sniLabel(seen.sni), seen.offeredMax
	}
	if err != nil {
		reason := err.Error()
		key.Outcome = telemetry.Failed
		if seen != nil && !seen.decision.Accepted {
			key.Outcome, reason = telemetry.Rejected, seen.decision.Alert+": "+seen.decision.Reason
			l.logRefusal(key.ClientIP, key.OfferedMax, reason)
		}
		l.tel.Record(key, reason)
		tc.Close()
		<-l.slots
		l.releaseIP(key.ClientIP)
		return
	}
	raw.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	key.Version, key.Suite, key.Outcome = tlspolicy.Version(cs.Version).String(), tls.CipherSuiteName(cs.CipherSuite), telemetry.Accepted
	if len(cs.PeerCertificates) > 0 {
		key.AgentGUID = cs.PeerCertificates[0].Subject.CommonName
	}
	l.records.Store(tc, &connRecord{key: key})
	select {
	case l.ready <- tc:
	case <-l.done:
		l.finish(tc)
		tc.Close()
	}
}

// takeIP counts a connection from ip, unless ip already holds maxPerIP of them.
func (l *tlsListener) takeIP(ip string) bool {
	l.ipMu.Lock()
	defer l.ipMu.Unlock()
	if l.perIP == nil {
		l.perIP = map[string]int{}
	}
	if l.maxPerIP > 0 && l.perIP[ip] >= l.maxPerIP {
		return false
	}
	l.perIP[ip]++
	return true
}

func (l *tlsListener) releaseIP(ip string) {
	l.ipMu.Lock()
	defer l.ipMu.Unlock()
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// sniLabel keeps a client's server_name when it is one of the names in this Manager's certificate, and
// records any other as "other": the names clients choose must not grow the telemetry without end.
func (l *tlsListener) sniLabel(sni string) string {
	if sni == "" || len(l.names) == 0 || slices.Contains(l.names, strings.ToLower(sni)) {
		return sni
	}
	return "other"
}

// finish counts a connection's handshake once it closes.
func (l *tlsListener) finish(c net.Conn) {
	v, ok := l.records.LoadAndDelete(c)
	if !ok {
		return
	}
	rec := v.(*connRecord)
	rec.count(l.tel, "")
	<-l.slots
	l.releaseIP(rec.key.ClientIP)
}

// Accept returns the next connection whose handshake finished.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) Close() error {
	var err error
	l.closeErr.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// observe is the policy engine's observer: it leaves the ClientHello's facts on the connection.
func observe(hello *tls.ClientHelloInfo, d tlspolicy.Decision) {
	oc, ok := hello.Conn.(*obsConn)
	if !ok {
		return
	}
	var max uint16
	for _, v := range hello.SupportedVersions {
		if tlspolicy.Version(v).Known() && v > max {
			max = v
		}
	}
	offered := ""
	if max != 0 {
		offered = tlspolicy.Version(max).String()
	}
	oc.hello.Store(&helloSeen{sni: hello.ServerName, offeredMax: offered, decision: d})
}

type ctxKey struct{}

// httpServer wraps handler in an http.Server that counts each connection's handshake (with the first
// request's User-Agent) when the connection closes, with timeouts that keep slow clients from holding
// the server.
func (l *tlsListener) httpServer(h http.Handler, headerTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rec, ok := r.Context().Value(ctxKey{}).(*connRecord); ok {
				ua := r.UserAgent()
				if len(ua) > 200 {
					ua = ua[:200]
				}
				rec.count(l.tel, ua)
			}
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       2 * headerTimeout,
		WriteTimeout:      4 * headerTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if v, ok := l.records.Load(c); ok {
				return context.WithValue(ctx, ctxKey{}, v)
			}
			return ctx
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				l.finish(c)
			}
		},
	}
}
