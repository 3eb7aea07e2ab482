package testtarget

import (
	"crypto/rand"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"tlsfleet/internal/tlswire"
)

// FakeSSLv3Suites are the suites the FakeSSLv3 responder accepts, in its preference order:
// TLS_RSA_WITH_3DES_EDE_CBC_SHA (0x000a, Java's SSL_RSA_WITH_3DES_EDE_CBC_SHA),
// TLS_RSA_WITH_AES_128_CBC_SHA (0x002f) and TLS_RSA_WITH_RC4_128_SHA (0x0005, SSL_RSA_WITH_RC4_128_SHA).
var FakeSSLv3Suites = []uint16{0x000a, 0x002f, 0x0005}

var fakeSSLv3Names = map[uint16]string{
	0x000a: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
	0x002f: "TLS_RSA_WITH_AES_128_CBC_SHA",
	0x0005: "TLS_RSA_WITH_RC4_128_SHA",
}

// SSLv3 alert descriptions the responder sends.
const (
	alertHandshakeFailure = 40
	alertIllegalParameter = 47
)

// FakeSSLv3 starts a responder that speaks only SSLv3 as far as a scanner looks: it reads a ClientHello
// (reassembled across records), and when the hello's version is at least SSLv3 (0x0300), it offers null
// compression and one of FakeSSLv3Suites, answers — in records of version 0x0300 — with a ServerHello of
// version 0x0300 that picks the first suite of ITS list the client offered, an RSA-2048 Certificate and
// ServerHelloDone, then waits up to 3 s for the peer to close. A hello for a higher version gets the same
// SSLv3 answer (a real SSLv3-only server's), which a correct scanner reads as "that version is not
// supported". No common suite: a fatal handshake_failure alert; a malformed hello: illegal_parameter;
// bytes that are not TLS: the connection is closed. It completes no handshake.
func FakeSSLv3(t testing.TB) *Target {
	t.Helper()
	cert := NewCert(t, RSA2048)
	ln := Listen(t)
	tg := &Target{
		Name:        "fakesslv3",
		Addr:        ln.Addr().String(),
		Versions:    []string{SSLv3},
		Suites:      map[string][]string{},
		ServerOrder: true,
		CertKey:     cert.Key,
		CertSig:     cert.Sig,
		Cert:        cert,
		conns:       new(atomic.Int64),
	}
	for _, id := range FakeSSLv3Suites {
		tg.Suites[SSLv3] = append(tg.Suites[SSLv3], fakeSSLv3Names[id])
	}
	serve(t, ln, tg.conns, func(c net.Conn) { answerSSLv3(c, cert.DER) })
	return tg
}

// answerSSLv3 serves one FakeSSLv3 connection.
func answerSSLv3(c net.Conn, certDER []byte) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	m, err := tlswire.NewReader(c).Next()
	if err != nil || m.Alert != nil || m.ChangeCipherSpec || m.Type != tlswire.TypeClientHello {
		return
	}
	reply := sslv3Reply(m.Body, certDER)
	if reply == nil {
		return
	}
	if _, err := c.Write(reply); err != nil {
		return
	}
	// Wait for the peer to go away (a scanner closes after ServerHelloDone; anything it sends is ignored).
	c.SetDeadline(time.Now().Add(3 * time.Second))
	io.Copy(io.Discard, c)
}

// sslv3Reply returns the records FakeSSLv3 answers a ClientHello body with: ServerHello, Certificate and
// ServerHelloDone, or a fatal alert.
func sslv3Reply(hello, certDER []byte) []byte {
	s := cryptobyte.String(hello)
	var version uint16
	var random, sid, suites, compression cryptobyte.String
	if !s.ReadUint16(&version) || !s.ReadBytes((*[]byte)(&random), 32) ||
		!s.ReadUint8LengthPrefixed(&sid) || len(sid) > 32 ||
		!s.ReadUint16LengthPrefixed(&suites) || len(suites)%2 != 0 ||
		!s.ReadUint8LengthPrefixed(&compression) {
		return sslv3Alert(alertIllegalParameter)
	}
	// Extensions, if any, are ignored, as an SSLv3 server does.
	if version < 0x0300 || !slices.Contains(compression, 0) {
		return sslv3Alert(alertHandshakeFailure)
	}
	var offered []uint16
	for !suites.Empty() {
		var id uint16
		suites.ReadUint16(&id)
		offered = append(offered, id)
	}
	chosen := -1
	for i, id := range FakeSSLv3Suites {
		if slices.Contains(offered, id) {
			chosen = i
			break
		}
	}
	if chosen < 0 {
		return sslv3Alert(alertHandshakeFailure)
	}
	serverRandom := make([]byte, 32)
	sessionID := make([]byte, 32)
	rand.Read(serverRandom)
	rand.Read(sessionID)
	var b cryptobyte.Builder
	b.AddUint8(2) // ServerHello
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(0x0300)
		b.AddBytes(serverRandom)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sessionID) })
		b.AddUint16(FakeSSLv3Suites[chosen])
		b.AddUint8(0) // null compression
	})
	b.AddUint8(tlswire.TypeCertificate)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(certDER) })
		})
	})
	b.AddUint8(tlswire.TypeServerHelloDone)
	b.AddUint24(0)
	return tlswire.Records(tlswire.RecordHandshake, 0x0300, b.BytesOrPanic())
}

// sslv3Alert returns a fatal alert record of version 0x0300.
func sslv3Alert(desc uint8) []byte {
	return tlswire.Records(tlswire.RecordAlert, 0x0300, []byte{2, desc})
}
