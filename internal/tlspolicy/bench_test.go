package tlspolicy

import (
	"crypto/tls"
	"net"
	"testing"
)

// BenchmarkServerHandshake measures what serving through the policy Server (GetConfigForClient, Evaluate
// and an observer on every ClientHello) costs next to a static tls.Config, on full TLS 1.3 handshakes over
// loopback with an ECDSA P-256 certificate.
func BenchmarkServerHandshake(b *testing.B) {
	cert := selfSigned(b, "EC", 256)
	ci, _ := CertInfoOf(cert)
	p := Effective(Listener{4119, RoleConsole}, Layers{Cert: ci})
	var seen int
	srv, err := NewServer(p, ServerOptions{Certificate: cert, Observer: func(*tls.ClientHelloInfo, Decision) { seen++ }})
	if err != nil {
		b.Fatal(err)
	}
	static := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	for _, bc := range []struct {
		name string
		cfg  *tls.Config
	}{{"static", static}, {"policy", srv.TLSConfig()}} {
		b.Run(bc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						tc := tls.Server(c, bc.cfg)
						tc.Handshake()
						tc.Close()
					}()
				}
			}()
			cc := &tls.Config{InsecureSkipVerify: true, ClientSessionCache: nil}
			b.ReportAllocs()
			for b.Loop() {
				c, err := tls.Dial("tcp", ln.Addr().String(), cc)
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
