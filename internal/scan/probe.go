package scan

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"time"

	"tlsfleet/internal/tlspolicy"
	"tlsfleet/internal/tlswire"
)

// failKind classifies why a probe got no ServerHello.
type failKind int

const (
	failNone     failKind = iota
	failRefused           // the TCP connection was refused or could not be made
	failTimeout           // nothing (or not enough) came back in time
	failClosed            // the server closed or reset the connection without an alert
	failNotTLS            // the server answered something that is not TLS
	failBroken            // TLS framing or a handshake message did not parse
	failPreamble          // the STARTTLS preamble failed
)

func (k failKind) String() string {
	return [...]string{"ok", "refused", "timeout", "closed", "not TLS", "malformed", "STARTTLS failed"}[k]
}

// certInfo is the server certificate's key as the grading needs it.
type certInfo struct {
	keyType   string // rsa, ec, dsa, ed25519, unknown
	bits      int
	curve     string
	signature string
	exponent  int
}

func (c *certInfo) String() string {
	s := fmt.Sprintf("%s %d", c.keyType, c.bits)
	if c.curve != "" {
		s = fmt.Sprintf("%s %s", c.keyType, c.curve)
	}
	if c.signature != "" {
		s += " (" + c.signature + ")"
	}
	return s
}

// kexSeen is what a ServerKeyExchange (or a TLS 1.3 key_share) revealed.
type kexSeen struct {
	keyType string // ec, dh, rsa
	bits    int
	curve   string // nmap's group name for named groups
	group   uint16
}

// probeResult is what one connection learned.
type probeResult struct {
	hello *tlswire.ServerHello
	cert  *certInfo
	kx    *kexSeen
	alert *tlswire.Alert
	// recordVersion is the record-layer version of the server's first record.
	recordVersion uint16
	kind          failKind
	err           error
}

// version returns the negotiated version of an answered probe, 0 otherwise.
func (r *probeResult) version() uint16 {
	if r.hello == nil {
		return 0
	}
	return r.hello.Version()
}

// probe sends one ClientHello and reads the server's first flight: up to ServerHelloDone in TLS ≤ 1.2
// (when details is set; otherwise up to the ServerHello), up to the ServerHello or HelloRetryRequest in
// TLS 1.3. The connection is closed at once afterwards: servers that handle one connection at a time
// (OpenSSL s_server) move on immediately.
func (t *target) probe(ctx context.Context, ch *tlswire.ClientHello, details bool) probeResult {
	for attempt := 0; ; attempt++ {
		r := t.probeOnce(ctx, ch, details)
		// A refused connection, or one closed without a word, may be a server shedding load: from then
		// on the target's probes go one at a time, and this one is asked again after a backoff (with
		// jitter, so that probes already under way do not collide again).
		if r.kind != failRefused && r.kind != failClosed || attempt >= t.s.Retries || ctx.Err() != nil {
			return r
		}
		t.throttled.Store(true)
		d := time.Duration(50<<(2*attempt)) * time.Millisecond
		d = d/2 + rand.N(d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return r
		}
	}
}

func (t *target) probeOnce(ctx context.Context, ch *tlswire.ClientHello, details bool) probeResult {
	release, err := t.acquire(ctx)
	if err != nil {
		return probeResult{kind: failTimeout, err: err}
	}
	defer release()
	if t.throttled.Load() {
		t.serial.Lock()
		defer t.serial.Unlock()
	}
	t.probes.Add(1)
	ctx, cancel := context.WithTimeout(ctx, t.s.Timeout)
	defer cancel()
	conn, kind, err := t.connect(ctx)
	if err != nil {
		return probeResult{kind: kind, err: err}
	}
	defer conn.Close()
	rec, err := ch.Marshal()
	if err != nil {
		return probeResult{kind: failBroken, err: err}
	}
	if _, err := conn.Write(rec); err != nil {
		return classify(err)
	}
	return readFlight(tlswire.NewReader(conn), ch, details)
}

// readFlight reads the server's answer to a hello.
func readFlight(rd *tlswire.Reader, ch *tlswire.ClientHello, details bool) probeResult {
	var r probeResult
	for {
		m, err := rd.Next()
		if err != nil {
			if r.hello != nil {
				return r // what came before the error is still good (a server that closes after its hello)
			}
			return classify(err)
		}
		if r.recordVersion == 0 {
			r.recordVersion = m.RecordVersion
		}
		switch {
		case m.Alert != nil:
			if r.hello == nil {
				r.alert = m.Alert
			}
			return r
		case m.ChangeCipherSpec:
			continue
		}
		switch m.Type {
		case tlswire.TypeServerHello:
			if r.hello != nil {
				return probeResult{kind: failBroken, err: errors.New("server sent two ServerHellos")}
			}
			sh, err := tlswire.ParseServerHello(m.Body)
			if err != nil {
				return probeResult{kind: failBroken, err: err}
			}
			r.hello = sh
			if sh.HelloRetry || sh.Version() >= tls.VersionTLS13 {
				if sh.Group != 0 {
					r.kx = groupKex(sh.Group)
				}
				return r
			}
			if !details {
				return r
			}
		case tlswire.TypeCertificate:
			if r.hello == nil {
				return probeResult{kind: failBroken, err: errors.New("Certificate before ServerHello")}
			}
			certs, err := tlswire.ParseCertificates(m.Body)
			if err == nil && len(certs) > 0 {
				if k, err := tlswire.ParseCertKey(certs[0]); err == nil {
					r.cert = &certInfo{keyType: k.Type, bits: k.Bits, curve: k.Curve, signature: k.Signature, exponent: k.Exponent}
				}
			}
		case tlswire.TypeServerKeyExchange:
			if r.hello == nil {
				return probeResult{kind: failBroken, err: errors.New("ServerKeyExchange before ServerHello")}
			}
			r.kx = skxKex(r.hello.CipherSuite, m.Body)
		case tlswire.TypeServerHelloDone:
			if r.hello == nil {
				return probeResult{kind: failBroken, err: errors.New("ServerHelloDone before ServerHello")}
			}
			return r
		default:
			if r.hello == nil {
				return probeResult{kind: failBroken, err: fmt.Errorf("handshake message type %d before ServerHello", m.Type)}
			}
		}
	}
}

// groupKex describes a named group the way nmap's kex column does.
func groupKex(id uint16) *kexSeen {
	name := nmapGroupName(id)
	typ, bits := groupStrength(name)
	return &kexSeen{keyType: typ, bits: bits, curve: name, group: id}
}

// skxKex reads the ServerKeyExchange of the chosen suite.
func skxKex(suite uint16, body []byte) *kexSeen {
	s, ok := tlspolicy.SuiteByID(suite)
	if !ok {
		return nil
	}
	family := map[string]string{"ec": "ECDHE", "dh": "DHE", "rsa": "RSA"}[kexTable[parseCipherInfo(nmapName(s)).kex].skx]
	if family == "" {
		return nil
	}
	kx, err := tlswire.ParseServerKeyExchange(body, family)
	if err != nil {
		return nil
	}
	switch kx.Kind {
	case "ecdh":
		if kx.Custom {
			return &kexSeen{keyType: "ec", curve: "explicit curve"}
		}
		return groupKex(kx.Group)
	case "dh":
		return &kexSeen{keyType: "dh", bits: len(kx.Prime) * 8}
	case "rsa":
		return &kexSeen{keyType: "rsa", bits: (kx.Bits + 7) / 8} // nmap counts the export modulus in bytes
	}
	return nil
}

func classify(err error) probeResult {
	var ne net.Error
	switch {
	case errors.Is(err, tlswire.ErrNotTLS):
		return probeResult{kind: failNotTLS, err: err}
	case errors.Is(err, tlswire.ErrMalformed):
		return probeResult{kind: failBroken, err: err}
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return probeResult{kind: failTimeout, err: errors.New("timed out waiting for the server")}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return probeResult{kind: failBroken, err: fmt.Errorf("server closed the connection in the middle of a TLS message (%v)", err)}
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return probeResult{kind: failClosed, err: errors.New("server closed the connection without an alert")}
	}
	return probeResult{kind: failClosed, err: err}
}

// connect dials the target within ctx (whose deadline, and cancellation, also bound the connection) and
// speaks the STARTTLS preamble.
func (t *target) connect(ctx context.Context) (net.Conn, failKind, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, failRefused, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	if err := t.s.preamble(conn, t); err != nil {
		conn.Close()
		return nil, failPreamble, err
	}
	return conn, failNone, nil
}
