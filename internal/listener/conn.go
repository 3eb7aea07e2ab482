package listener

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tlsfleet/internal/tlspolicy"
)

// conn is an accepted connection under its TLS handshake: it holds a slot until it closes, and carries
// what the policy observer learned from its ClientHello and, once the handshake finished, its
// observation until that is recorded.
type conn struct {
	net.Conn
	l      *Listener
	ip     string
	hello  atomic.Pointer[helloSeen]
	served atomic.Bool // handed to Accept (or on the way): Listener.Close leaves it alone

	mu      sync.Mutex
	obs     *Observation // a finished handshake not yet recorded
	counted bool
	closed  bool
	// Once the handshake finished (enforce.go): the TLS connection, what it negotiated, whether its
	// HTTP server is serving a request on it, and whether Enforce closed it or asked it to close after
	// that request.
	tc             *tls.Conn
	version, suite uint16
	active, doomed bool
}

// helloSeen is what the policy observer learned from a connection's ClientHello.
type helloSeen struct {
	sni        string
	offeredMax string
	decision   tlspolicy.Decision
}

// finished keeps a finished handshake's observation, or records it at once.
func (c *conn) finished(obs Observation, now bool) {
	c.mu.Lock()
	c.obs = &obs
	c.mu.Unlock()
	if now {
		c.count("")
	}
}

// count records the finished handshake once, with the first request's User-Agent (or none).
func (c *conn) count(userAgent string) {
	c.mu.Lock()
	if c.obs == nil || c.counted {
		c.mu.Unlock()
		return
	}
	c.counted = true
	obs := *c.obs
	c.mu.Unlock()
	obs.UserAgent = userAgent
	c.l.record(obs)
}

// Close closes the connection, gives its slot back and records its handshake if no request did.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	c.mu.Unlock()
	if first {
		c.l.release(c)
		c.count("")
	}
	return err
}

// Observe is the policy engine's observer (tlspolicy.ServerOptions.Observer) for servers whose
// connections a Listener accepts: it leaves the ClientHello's facts on the connection. Connections of
// other listeners are ignored.
func Observe(hello *tls.ClientHelloInfo, d tlspolicy.Decision) {
	c, ok := hello.Conn.(*conn)
	if !ok {
		return
	}
	var newest uint16
	for _, v := range hello.SupportedVersions {
		if tlspolicy.Version(v).Known() && v > newest {
			newest = v
		}
	}
	c.hello.Store(&helloSeen{sni: hello.ServerName, offeredMax: versionName(newest), decision: d})
}

var _ tlspolicy.Observer = Observe

func versionName(v uint16) string {
	if v == 0 {
		return ""
	}
	return tlspolicy.Version(v).String()
}

// sniLabel keeps a client's server_name when it is one of the port's certificate names, and records any
// other as "other".
func (l *Listener) sniLabel(sni string) string {
	if sni == "" || len(l.cfg.ServerNames) == 0 || slices.Contains(l.cfg.ServerNames, strings.ToLower(sni)) {
		return sni
	}
	return "other"
}

// CertNames are the DNS names and IP addresses of a certificate's leaf, in lower case (for
// Config.ServerNames).
func CertNames(cert tls.Certificate) []string {
	leaf := cert.Leaf
	if leaf == nil && len(cert.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	if leaf == nil {
		return nil
	}
	names := lowerAll(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

func lowerAll(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.ToLower(n))
	}
	return out
}

// refusalLog remembers when each client address's refusal was last logged.
type refusalLog struct {
	mu     sync.Mutex
	logged map[string]time.Time
}

// allow reports whether a refusal of ip at now may be logged: one line per address and refusalLogEvery.
func (r *refusalLog) allow(ip string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok := r.logged[ip]; ok && now.Sub(last) < refusalLogEvery {
		return false
	}
	if r.logged == nil || len(r.logged) >= refusalLogAddresses {
		r.logged = map[string]time.Time{} // a flood of addresses: start over rather than grow
	}
	r.logged[ip] = now
	return true
}

type ctxKey struct{}

// Instrument makes hs record each accepted handshake with its first request's User-Agent (or, for a
// connection that closes without a request, with none) instead of at the end of the handshake. Call it
// before hs serves this listener. It wraps hs.Handler and hs.ConnContext, and calls TrackHTTP.
func (l *Listener) Instrument(hs *http.Server) {
	l.deferCount.Store(true)
	l.TrackHTTP(hs)
	inner, base := hs.Handler, hs.ConnContext
	if inner == nil {
		inner = http.DefaultServeMux
	}
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(ctxKey{}).(*conn); ok {
			ua := r.UserAgent()
			if len(ua) > maxUserAgent {
				ua = ua[:maxUserAgent]
			}
			c.count(ua)
		}
		inner.ServeHTTP(w, r)
	})
	hs.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if base != nil {
			ctx = base(ctx, nc)
		}
		if c := l.connOf(nc); c != nil {
			return context.WithValue(ctx, ctxKey{}, c)
		}
		return ctx
	}
}
