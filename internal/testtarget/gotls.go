package testtarget

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// GoLegacySuites are the suites of GoLegacy in the order Go's server prefers them (Go ignores the
// configured order and the client's: crypto/tls cipherSuitesPreferenceOrder puts AES before 3DES
// before RC4, and ECDHE before plain RSA within each).
var GoLegacySuites = []uint16{
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
	tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA,
	tls.TLS_RSA_WITH_RC4_128_SHA,
}

// GoLegacy starts a Go crypto/tls server for TLS 1.0 to 1.2 with RC4 and 3DES suites (GoLegacySuites)
// and an RSA-2048 certificate. Go 1.26 negotiates all of them without any GODEBUG setting because they
// are listed explicitly in Config.CipherSuites and MinVersion is set (tls10server, tls3des, tlsrsakex
// only change the defaults).
func GoLegacy(t testing.TB) *Target {
	t.Helper()
	cert := NewCert(t, RSA2048)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert.TLS},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS12,
		CipherSuites: GoLegacySuites,
	}
	tg := GoServer(t, "golegacy", cfg)
	tg.Versions = []string{TLSv10, TLSv11, TLSv12}
	tg.Suites = map[string][]string{}
	for _, v := range tg.Versions {
		for _, id := range GoLegacySuites {
			tg.Suites[v] = append(tg.Suites[v], tls.CipherSuiteName(id))
		}
	}
	tg.ServerOrder = true
	tg.CertKey, tg.CertSig, tg.Cert = cert.Key, cert.Sig, cert
	return tg
}

// GoServer serves cfg on a free loopback port until the test ends: each connection completes the
// handshake (10 s deadline) and is then drained until the peer closes it. It returns a Target with Name,
// Addr and a connection counter; the caller fills in the truth. Cleanup closes the listener and every
// open connection and waits for their goroutines.
func GoServer(t testing.TB, name string, cfg *tls.Config) *Target {
	t.Helper()
	ln := Listen(t)
	tg := &Target{Name: name, Addr: ln.Addr().String(), conns: new(atomic.Int64)}
	serve(t, ln, tg.conns, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, cfg)
		if tc.Handshake() == nil {
			io.Copy(io.Discard, tc)
		}
	})
	return tg
}

// serve accepts connections on ln and runs handle on each in its own goroutine, closing the connection
// after handle returns. Cleanup closes ln and the open connections and waits for every goroutine.
func serve(t testing.TB, ln net.Listener, count *atomic.Int64, handle func(net.Conn)) {
	var (
		mu     sync.Mutex
		open   = map[net.Conn]bool{}
		closed bool
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			count.Add(1)
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			open[c] = true
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				defer func() {
					c.Close()
					mu.Lock()
					delete(open, c)
					mu.Unlock()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}
