package tlswire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func fixedHello() *ClientHello {
	return &ClientHello{
		Version:              0x0303,
		Random:               bytes.Repeat([]byte{0xAB}, 32),
		CipherSuites:         []uint16{0x1301, 0xC02F, 0x002F, 0x000A},
		ServerName:           "manager.example",
		Groups:               []uint16{23, 24, 25, 29, 256},
		PointFormats:         []byte{0},
		SignatureAlgorithms:  []uint16{0x0403, 0x0804, 0x0401},
		SupportedVersions:    []uint16{0x0304, 0x0303},
		SendKeyShare:         true,
		KeyShares:            nil,
		ALPN:                 []string{"http/1.1"},
		RenegotiationInfo:    true,
		ExtendedMasterSecret: true,
	}
}

func TestClientHelloGolden(t *testing.T) {
	b, err := fixedHello().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "clienthello.hex")
	got := hex.EncodeToString(b) + "\n"
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("ClientHello bytes changed:\n got %s\nwant %s", got, want)
	}
}

func TestRecordsFragment(t *testing.T) {
	h := &ClientHello{Version: 0x0303, Random: make([]byte, 32)}
	for i := 0; i < 9000; i++ { // 18000 bytes of suites: more than one record
		h.CipherSuites = append(h.CipherSuites, uint16(i))
	}
	b, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rd := NewReader(bytes.NewReader(b))
	m, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeClientHello || len(m.Body) < 18000 {
		t.Fatalf("reassembled type %d, %d bytes", m.Type, len(m.Body))
	}
	if b[3] != 0x40 || b[4] != 0x00 {
		t.Errorf("first record length %02x%02x, want 4000", b[3], b[4])
	}
}

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Our hand-built hellos must be understood by a real TLS stack: Go's server parses them and answers, and
// our reader parses the answer.
func TestAgainstGoServer(t *testing.T) {
	cert := testCert(t)
	tests := []struct {
		name      string
		hello     *ClientHello
		wantVer   uint16
		wantHRR   bool
		wantAlert string
	}{
		{name: "TLS 1.3 with empty key_share gets a HelloRetryRequest", hello: fixedHello(), wantVer: 0x0304, wantHRR: true},
		{name: "TLS 1.2 only", hello: &ClientHello{Version: 0x0303, CipherSuites: []uint16{0xC02B}, Groups: []uint16{23}, PointFormats: []byte{0}, SignatureAlgorithms: []uint16{0x0403}}, wantVer: 0x0303},
		{name: "TLS 1.0 refused", hello: &ClientHello{Version: 0x0301, CipherSuites: []uint16{0xC009}, Groups: []uint16{23}}, wantAlert: "protocol_version"},
		{name: "no common suite", hello: &ClientHello{Version: 0x0303, CipherSuites: []uint16{0x0004}, SignatureAlgorithms: []uint16{0x0403}}, wantAlert: "handshake_failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var seen *tls.ClientHelloInfo
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) { seen = h; return nil, nil }})
				s.SetDeadline(time.Now().Add(3 * time.Second))
				s.Handshake()
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			b, _ := tt.hello.Marshal()
			c.Write(b)
			m, err := NewReader(c).Next()
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantAlert != "" {
				if m.Alert == nil || m.Alert.String() != tt.wantAlert {
					t.Fatalf("got %+v, want alert %s", m, tt.wantAlert)
				}
				return
			}
			if m.Type != TypeServerHello {
				t.Fatalf("message type %d", m.Type)
			}
			sh, err := ParseServerHello(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			if sh.Version() != tt.wantVer || sh.HelloRetry != tt.wantHRR || !slices.Contains(tt.hello.CipherSuites, sh.CipherSuite) {
				t.Errorf("ServerHello version %04x HRR %v suite %04x", sh.Version(), sh.HelloRetry, sh.CipherSuite)
			}
			if tt.wantHRR && sh.Group == 0 {
				t.Error("HelloRetryRequest names no group")
			}
			if seen == nil {
				t.Fatal("server saw no hello")
			}
			if tt.hello.ServerName != "" && seen.ServerName != tt.hello.ServerName {
				t.Errorf("SNI %q", seen.ServerName)
			}
			if !slices.Equal(seen.CipherSuites, tt.hello.CipherSuites) {
				t.Errorf("suites %x", seen.CipherSuites)
			}
			if tt.hello.SupportedVersions != nil && !slices.Equal(seen.SupportedVersions, tt.hello.SupportedVersions) {
				t.Errorf("versions %x", seen.SupportedVersions)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	hs := func(typ uint8, body []byte) []byte {
		return Records(RecordHandshake, 0x0303, append([]byte{typ, 0, byte(len(body) >> 8), byte(len(body))}, body...))
	}
	tests := []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"HTTP answer", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), ErrNotTLS, "HTTP/"},
		{"SSH banner", []byte("SSH-2.0-OpenSSH_9.2\r\n"), ErrNotTLS, "SSH-2"},
		{"silent close", nil, io.EOF, ""},
		{"three bytes then close", []byte{22, 3, 3}, ErrNotTLS, ""},
		{"record cut short", []byte{22, 3, 3, 0, 50, 2, 0}, io.ErrUnexpectedEOF, ""},
		{"oversized record", []byte{22, 3, 3, 0xff, 0xff}, ErrMalformed, "65535"},
		{"empty handshake record", []byte{22, 3, 3, 0, 0}, ErrMalformed, "empty"},
		{"short alert", []byte{21, 3, 3, 0, 1, 2}, ErrMalformed, "alert"},
		{"application data", []byte{23, 3, 3, 0, 1, 0}, ErrMalformed, "application data"},
		{"giant handshake claim", []byte{22, 3, 3, 0, 4, 2, 0xff, 0xff, 0xff}, ErrMalformed, "claims"},
		{"truncated ServerHello then close", hs(2, []byte{3, 3})[:8], io.ErrUnexpectedEOF, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tt.in)).Next()
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error = %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

func TestParseServerHelloErrors(t *testing.T) {
	good := append([]byte{3, 3}, make([]byte, 32)...)
	good = append(good, 0, 0xC0, 0x2F, 0)
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"minimal", good, true},
		{"truncated", good[:20], false},
		{"bad extensions length", append(slices.Clone(good), 0, 9, 0), false},
		{"duplicate extension", append(slices.Clone(good), 0, 8, 0xff, 1, 0, 0, 0xff, 1, 0, 0), false},
		{"supported_versions", append(slices.Clone(good), 0, 6, 0, 43, 0, 2, 3, 4), true},
		{"bad supported_versions", append(slices.Clone(good), 0, 5, 0, 43, 0, 1, 3), false},
		{"trailing bytes", append(slices.Clone(good), 0, 0, 7), false},
	}
	for _, tt := range tests {
		sh, err := ParseServerHello(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		if err == nil && tt.name == "supported_versions" && sh.Version() != 0x0304 {
			t.Errorf("version %04x", sh.Version())
		}
	}
	hrr := append([]byte{3, 3}, helloRetryRandom...)
	hrr = append(hrr, 0, 0x13, 0x01, 0, 0, 12, 0, 43, 0, 2, 3, 4, 0, 51, 0, 2, 0, 23)
	sh, err := ParseServerHello(hrr)
	if err != nil || !sh.HelloRetry || sh.Group != 23 || sh.Version() != 0x0304 {
		t.Fatalf("HRR parsed as %+v, %v", sh, err)
	}
}

func TestParseServerKeyExchange(t *testing.T) {
	ecdhe := []byte{3, 0, 29, 4, 1, 2, 3, 4, 0xde, 0xad}
	if kx, err := ParseServerKeyExchange(ecdhe, "ECDHE"); err != nil || kx.Group != 29 || kx.Kind != "ecdh" {
		t.Errorf("ECDHE: %+v %v", kx, err)
	}
	p := append([]byte{0x80}, make([]byte, 127)...) // a 1024-bit prime-sized number
	dhe := append([]byte{0, 128}, p...)
	dhe = append(dhe, 0, 1, 2, 0, 1, 5)
	if kx, err := ParseServerKeyExchange(dhe, "DHE"); err != nil || kx.Bits != 1024 {
		t.Errorf("DHE: %+v %v", kx, err)
	}
	if _, err := ParseServerKeyExchange(dhe[:10], "DHE"); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated DHE: %v", err)
	}
	if _, err := ParseServerKeyExchange(ecdhe, "PSK"); err == nil {
		t.Error("unknown family accepted")
	}
}

func TestParseCertificates(t *testing.T) {
	cert := testCert(t)
	der := cert.Certificate[0]
	n := len(der)
	body := []byte{byte((n + 3) >> 16), byte((n + 3) >> 8), byte(n + 3), byte(n >> 16), byte(n >> 8), byte(n)}
	body = append(body, der...)
	certs, err := ParseCertificates(body)
	if err != nil || len(certs) != 1 {
		t.Fatalf("%v %d", err, len(certs))
	}
	k, err := ParseCertKey(certs[0])
	if err != nil || k.Type != "ec" || k.Bits != 256 || k.Curve != "secp256r1" || k.Signature != "ECDSA-SHA256" {
		t.Errorf("key %+v %v", k, err)
	}
	if _, err := ParseCertificates(body[:10]); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated: %v", err)
	}
	if _, err := ParseCertKey([]byte{1, 2, 3}); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage certificate: %v", err)
	}
}
