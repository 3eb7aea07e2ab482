package listener

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"

	"tlsfleet/internal/testtarget"
)

// countingRecorder is the cheapest Recorder: the benchmark measures the listener, not a telemetry store.
type countingRecorder struct{ n atomic.Int64 }

func (c *countingRecorder) Record(Observation) { c.n.Add(1) }

// benchClient runs b.N full TLS 1.3 handshakes (no resumption) against addr, each followed by one byte
// the server writes once it holds the finished connection, so that the server's side is measured too.
func benchClient(b *testing.B, addr string) {
	cfg := &tls.Config{InsecureSkipVerify: true}
	buf := make([]byte, 1)
	b.ResetTimer()
	for b.Loop() {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// serveOneByte answers every accepted connection with one byte and closes it.
func serveOneByte(ln net.Listener, handshake bool) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if handshake {
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
			}
			c.Write([]byte{1})
		}()
	}
}

func benchConfig(b *testing.B) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{testtarget.NewCert(b, testtarget.ECDSAP256).TLS}}
}

// BenchmarkListenerHandshake: accept and handshake through this package's Listener (limits, deadline,
// the policy observer's slot, one observation per handshake).
func BenchmarkListenerHandshake(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	rec := &countingRecorder{}
	l, err := New(ln, Config{TLS: benchConfig(b), Limits: Limits{Total: 1024, PerAddress: 1024}, Recorder: rec})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go serveOneByte(l, false)
	benchClient(b, ln.Addr().String())
	b.StopTimer()
	if rec.n.Load() < int64(b.N) {
		b.Fatalf("%d handshakes recorded for %d", rec.n.Load(), b.N)
	}
}

// BenchmarkBareTLSHandshake: the same over crypto/tls's own listener, for comparison.
func BenchmarkBareTLSHandshake(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	tl := tls.NewListener(ln, benchConfig(b))
	defer tl.Close()
	go serveOneByte(tl, true)
	benchClient(b, ln.Addr().String())
}
