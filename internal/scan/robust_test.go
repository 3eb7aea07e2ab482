package scan

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlswire"
)

// serveRaw starts a loopback listener whose connections are handled by handle.
func serveRaw(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// readHello reads one ClientHello record's worth of bytes.
func readHello(c net.Conn) []byte {
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	io.ReadFull(c, body)
	return body
}

func serverHello(version, suite uint16) []byte {
	body := []byte{2, 0, 0, 0, byte(version >> 8), byte(version)}
	body = append(body, make([]byte, 32)...)
	body = append(body, 0, byte(suite>>8), byte(suite), 0)
	n := len(body) - 4
	body[1], body[2], body[3] = byte(n>>16), byte(n>>8), byte(n)
	return tlswire.Records(tlswire.RecordHandshake, version, body)
}

// Broken servers each give a clear line, no panic, and never spoil the other targets of the scan.
func TestBrokenServers(t *testing.T) {
	good := testtarget.GoServer(t, "go-modern", &tls.Config{Certificates: []tls.Certificate{testtarget.NewCert(t, testtarget.ECDSAP256).TLS}})
	closed := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	tests := []struct {
		name string
		addr string
		want string // in TargetResult.Error or Notes; "" means no error expected
	}{
		{"refused", closed, "connection refused"},
		{"http server", serveRaw(t, func(c net.Conn) { readHello(c); io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n") }), "not TLS"},
		{"garbage", serveRaw(t, func(c net.Conn) { readHello(c); c.Write([]byte{0x16, 0x03, 0x03, 0xff, 0xff, 1, 2, 3}) }), "malformed TLS message: record of 65535 bytes"},
		{"silent close", serveRaw(t, func(c net.Conn) { readHello(c) }), "closed every connection without a TLS answer"},
		{"truncated ServerHello", serveRaw(t, func(c net.Conn) {
			readHello(c)
			sh := serverHello(tls.VersionTLS12, 0xc02f)
			sh = sh[:len(sh)-10]
			sh[3], sh[4] = 0, byte(len(sh)-5)
			c.Write(sh)
		}), "closed the connection in the middle of a TLS message"},
		{"suite not offered", serveRaw(t, func(c net.Conn) {
			readHello(c)
			c.Write(serverHello(tls.VersionTLS12, 0xfefe))
		}), "0xfefe, which was not offered"},
		{"hangs", serveRaw(t, func(c net.Conn) { readHello(c); time.Sleep(3 * time.Second) }), "no answer to any ClientHello before the timeout"},
	}
	addrs := []string{good.Addr, "no-port-here"}
	for _, tt := range tests {
		addrs = append(addrs, tt.addr)
	}
	s := New()
	s.Timeout = 500 * time.Millisecond
	s.Retries = 0
	res := s.Scan(t.Context(), addrs)
	if g := res.Targets[0]; g.Error != "" || !g.Accepts("TLSv1.3") || !g.Accepts("TLSv1.2") {
		t.Errorf("the good target next to broken ones: %+v", g)
	}
	if e := res.Targets[1].Error; !strings.Contains(e, "not HOST:PORT") {
		t.Errorf("bad address: error %q", e)
	}
	for i, tt := range tests {
		tr := res.Targets[i+2]
		if len(tr.Protocols) != 0 {
			t.Errorf("%s: found protocols %v", tt.name, versionsOf(tr))
		}
		all := tr.Error + " " + strings.Join(tr.Notes, " ")
		if tt.want != "" && !strings.Contains(all, tt.want) {
			t.Errorf("%s: error %q, notes %q; want %q", tt.name, tr.Error, tr.Notes, tt.want)
		}
	}
}

// The STARTTLS preambles each reach a real TLS server behind a plaintext greeting.
func TestStartTLSPreambles(t *testing.T) {
	cert := testtarget.NewCert(t, testtarget.ECDSAP256).TLS
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsAfter := func(preamble func(c net.Conn, r *bufio.Reader) bool) string {
		return serveRaw(t, func(c net.Conn) {
			r := bufio.NewReader(c)
			if !preamble(c, r) {
				return
			}
			tls.Server(&bufferedConn{Conn: c, r: r}, cfg).Handshake()
		})
	}
	line := func(r *bufio.Reader) string { l, _ := r.ReadString('\n'); return strings.TrimSpace(l) }
	tests := []struct {
		proto, addr, wantErr string
	}{
		{"smtp", tlsAfter(func(c net.Conn, r *bufio.Reader) bool {
			io.WriteString(c, "220 mail ESMTP\r\n")
			if !strings.HasPrefix(line(r), "EHLO") {
				return false
			}
			io.WriteString(c, "250-mail\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
			if line(r) != "STARTTLS" {
				return false
			}
			io.WriteString(c, "220 go ahead\r\n")
			return true
		}), ""},
		{"imap", tlsAfter(func(c net.Conn, r *bufio.Reader) bool {
			io.WriteString(c, "* OK IMAP4rev1 ready\r\n")
			if line(r) != "a1 STARTTLS" {
				return false
			}
			io.WriteString(c, "a1 OK Begin TLS\r\n")
			return true
		}), ""},
		{"ftp", tlsAfter(func(c net.Conn, r *bufio.Reader) bool {
			io.WriteString(c, "220 ftp ready\r\n")
			if line(r) != "AUTH TLS" {
				return false
			}
			io.WriteString(c, "234 AUTH TLS ok\r\n")
			return true
		}), ""},
		{"ldap", tlsAfter(func(c net.Conn, r *bufio.Reader) bool {
			req := make([]byte, 31)
			if _, err := io.ReadFull(r, req); err != nil || !strings.Contains(string(req), "1.3.6.1.4.1.1466.20037") {
				return false
			}
			// ExtendedResponse: messageID 1, resultCode success, empty matchedDN and diagnosticMessage.
			c.Write([]byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00})
			return true
		}), ""},
		{"smtp", tlsAfter(func(c net.Conn, r *bufio.Reader) bool {
			io.WriteString(c, "220 mail ESMTP\r\n")
			line(r)
			io.WriteString(c, "250 mail\r\n")
			line(r)
			io.WriteString(c, "454 TLS not available\r\n")
			return false
		}), `smtp STARTTLS: unexpected reply "454 TLS not available"`},
		{"postgres", serveRaw(t, func(c net.Conn) {
			var req [8]byte
			io.ReadFull(c, req[:])
			if binary.BigEndian.Uint32(req[4:]) == 80877103 {
				c.Write([]byte{'N'})
			}
		}), "answered N to SSLRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.proto, func(t *testing.T) {
			tr := scanOne(t, tt.addr, tt.proto)
			if tt.wantErr != "" {
				if !strings.Contains(tr.Error, tt.wantErr) {
					t.Errorf("error = %q, want %q", tr.Error, tt.wantErr)
				}
				return
			}
			if tr.Error != "" || !tr.Accepts("TLSv1.3") || !tr.Accepts("TLSv1.2") {
				t.Errorf("scan through %s: %+v", tt.proto, tr)
			}
		})
	}
}

// bufferedConn reads through the bufio.Reader that read the preamble.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// A server that drops long ClientHellos (some old load balancers do) is enumerated in nmap-sized chunks.
func TestLongHelloIntolerance(t *testing.T) {
	backend := testtarget.GoLegacy(t)
	front := serveRaw(t, func(c net.Conn) {
		var hdr [5]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if n > 300 {
			return // hang up without a word
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		up, err := net.Dial("tcp", backend.Addr)
		if err != nil {
			return
		}
		defer up.Close()
		up.Write(append(hdr[:], body...))
		go io.Copy(up, c)
		io.Copy(c, up)
	})
	tr := scanOne(t, front, "")
	if tr.Error != "" {
		t.Fatal(tr.Error)
	}
	for _, v := range backend.Versions {
		i := slices.IndexFunc(tr.Protocols, func(p ProtocolResult) bool { return p.Version == v })
		if i < 0 {
			t.Errorf("%s not found", v)
			continue
		}
		if got := sorted(suitesOf(tr.Protocols[i])); !slices.Equal(got, sorted(backend.Suites[v])) {
			t.Errorf("%s: suites %v, want %v", v, got, sorted(backend.Suites[v]))
		}
	}
	if !slices.ContainsFunc(tr.Notes, func(n string) bool { return strings.Contains(n, "refuses long ClientHellos") }) {
		t.Errorf("notes = %q, want one about long hellos", tr.Notes)
	}
}

// A server that drops every connection beyond one at a time (and every fifth one besides) is scanned
// to the same result as without the throttling: drops are retried, never taken for refusals.
func TestThrottlingServer(t *testing.T) {
	backend := testtarget.GoLegacy(t)
	var mu sync.Mutex
	active, seen := 0, 0
	front := serveRaw(t, func(c net.Conn) {
		mu.Lock()
		seen++
		drop := active > 0 || seen%5 == 0
		if !drop {
			active++
		}
		mu.Unlock()
		if drop {
			return
		}
		defer func() { mu.Lock(); active--; mu.Unlock() }()
		up, err := net.Dial("tcp", backend.Addr)
		if err != nil {
			return
		}
		defer up.Close()
		go func() { io.Copy(up, c); up.Close() }() // the scanner hung up: let the backend go too
		io.Copy(c, up)
	})
	tr := scanOne(t, front, "")
	if tr.Error != "" {
		t.Fatal(tr.Error)
	}
	if v := versionsOf(tr); !slices.Equal(v, backend.Versions) {
		t.Fatalf("versions %v, want %v; notes %q; %d probes", v, backend.Versions, tr.Notes, tr.Probes)
	}
	for _, p := range tr.Protocols {
		if got := suitesOf(p); !slices.Equal(got, backend.Suites[p.Version]) || p.CipherPreference != "server" {
			t.Errorf("%s: %s order %v, want server order %v", p.Version, p.CipherPreference, got, backend.Suites[p.Version])
		}
	}
}

// Two ports of one host share its connection budget. The relays count a connection as open only
// between reading its hello and answering it, when the scanner surely holds it open.
func TestConcurrencyPerHost(t *testing.T) {
	backend := testtarget.GoLegacy(t)
	var mu sync.Mutex
	waiting, peak := 0, 0
	relay := func(c net.Conn) {
		var hdr [5]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		hello := make([]byte, int(hdr[3])<<8|int(hdr[4]))
		if _, err := io.ReadFull(c, hello); err != nil {
			return
		}
		mu.Lock()
		waiting++
		peak = max(peak, waiting)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		waiting--
		mu.Unlock()
		up, err := net.Dial("tcp", backend.Addr)
		if err != nil {
			return
		}
		defer up.Close()
		up.Write(append(hdr[:], hello...))
		go func() { io.Copy(up, c); up.Close() }()
		io.Copy(c, up)
	}
	s := New()
	s.Concurrency = 2
	res := s.Scan(t.Context(), []string{serveRaw(t, relay), serveRaw(t, relay)})
	for _, tr := range res.Targets {
		if tr.Error != "" || len(tr.Protocols) != 3 {
			t.Errorf("%s: %s %v", tr.Target, tr.Error, versionsOf(tr))
		}
	}
	if peak != 2 {
		t.Errorf("%d connections were open at once to one host, want 2 (the limit, reached)", peak)
	}
}

// Hostile answers that would never end: an SMTP greeting without a newline, and a server that picks a
// compression method it was not offered on every hello. Both end with a clear line, quickly.
func TestHostileServersEnd(t *testing.T) {
	endless := serveRaw(t, func(c net.Conn) {
		io.WriteString(c, "220-")
		buf := bytes.Repeat([]byte("A"), 64<<10)
		for i := 0; i < 1024; i++ {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	tr := scanOne(t, endless, "smtp")
	if !strings.Contains(tr.Error, "longer than") {
		t.Errorf("endless SMTP line: %q", tr.Error)
	}
	weird := serveRaw(t, func(c net.Conn) {
		hello := readHello(c)
		if len(hello) < 6 || hello[4] != 3 || hello[5] != 3 { // TLS 1.2 hellos only
			return
		}
		sh := serverHello(tls.VersionTLS12, 0xc02f)
		sh[len(sh)-1] = 7 // compression method 7, never offered
		c.Write(sh)
	})
	s := New()
	s.Timeout = time.Second
	start := time.Now()
	tr = s.Scan(t.Context(), []string{weird}).Targets[0]
	if time.Since(start) > 10*time.Second || tr.Probes > 400 {
		t.Errorf("scan of a server choosing unoffered compression: %s, %d probes", time.Since(start), tr.Probes)
	}
}
