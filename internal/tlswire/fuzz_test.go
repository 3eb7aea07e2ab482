package tlswire

import (
	"bytes"
	"testing"
)

// FuzzReader feeds arbitrary bytes as a server's answer and parses every message the way the scanner does.
func FuzzReader(f *testing.F) {
	sh := append([]byte{2, 0, 0, 42, 3, 3}, make([]byte, 32)...)
	sh = append(sh, 0, 0xC0, 0x2F, 0, 0, 2, 0xff, 1)
	f.Add(Records(RecordHandshake, 0x0303, sh))
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40})
	f.Add([]byte("HTTP/1.1 200 OK\r\n"))
	f.Add([]byte{22, 3, 1, 0, 4, 11, 0, 0, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(bytes.NewReader(data))
		for i := 0; i < 16; i++ {
			m, err := rd.Next()
			if err != nil {
				return
			}
			switch m.Type {
			case TypeServerHello:
				ParseServerHello(m.Body)
			case TypeCertificate:
				if certs, err := ParseCertificates(m.Body); err == nil {
					for _, c := range certs {
						ParseCertKey(c)
					}
				}
			case TypeServerKeyExchange:
				for _, fam := range []string{"ECDHE", "DHE", "RSA"} {
					ParseServerKeyExchange(m.Body, fam)
				}
			}
		}
	})
}

// FuzzParseServerHello checks the parser's invariants on arbitrary bodies.
func FuzzParseServerHello(f *testing.F) {
	good := append([]byte{3, 3}, make([]byte, 32)...)
	good = append(good, 0, 0xC0, 0x2F, 0, 0, 6, 0, 43, 0, 2, 3, 4)
	f.Add(good)
	hrr := append([]byte{3, 3}, helloRetryRandom...)
	f.Add(append(hrr, 0, 0x13, 0x01, 0, 0, 12, 0, 43, 0, 2, 3, 4, 0, 51, 0, 2, 0, 23))
	f.Fuzz(func(t *testing.T, body []byte) {
		sh, err := ParseServerHello(body)
		if err != nil {
			return
		}
		if len(sh.Random) != 32 {
			t.Fatalf("random of %d bytes", len(sh.Random))
		}
	})
}

// FuzzClientHello builds hellos from fuzzed fields and reads them back.
func FuzzClientHello(f *testing.F) {
	f.Add(uint16(0x0303), []byte{0x13, 0x01, 0xc0, 0x2f}, "host", []byte{0, 23, 0, 29})
	f.Fuzz(func(t *testing.T, vers uint16, suites []byte, sni string, groups []byte) {
		h := &ClientHello{Version: vers, ServerName: sni}
		for i := 0; i+1 < len(suites); i += 2 {
			h.CipherSuites = append(h.CipherSuites, uint16(suites[i])<<8|uint16(suites[i+1]))
		}
		for i := 0; i+1 < len(groups); i += 2 {
			h.Groups = append(h.Groups, uint16(groups[i])<<8|uint16(groups[i+1]))
		}
		b, err := h.Marshal()
		if err != nil {
			return
		}
		m, err := NewReader(bytes.NewReader(b)).Next()
		if err != nil || m.Type != TypeClientHello {
			t.Fatalf("our own hello does not read back: %v", err)
		}
	})
}

// FuzzParseCertificates parses arbitrary Certificate bodies and the keys of what it finds.
func FuzzParseCertificates(f *testing.F) {
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0, 0, 4, 0, 0, 1, 0x30})
	f.Fuzz(func(t *testing.T, body []byte) {
		certs, err := ParseCertificates(body)
		if err != nil {
			return
		}
		total := 3
		for _, c := range certs {
			if len(c) == 0 {
				t.Fatal("empty certificate accepted")
			}
			total += 3 + len(c)
			if k, err := ParseCertKey(c); err == nil && k.Type == "" {
				t.Fatal("parsed key without a type")
			}
		}
		if total != len(body) {
			t.Fatalf("certificates cover %d of %d bytes", total, len(body))
		}
	})
}

// FuzzParseServerKeyExchange parses arbitrary ServerKeyExchange bodies for each family.
func FuzzParseServerKeyExchange(f *testing.F) {
	f.Add([]byte{3, 0, 23, 1, 4}, "ECDHE")
	f.Add([]byte{0, 1, 0xff, 0, 1, 2, 0, 1, 5}, "DHE")
	f.Add([]byte{0, 1, 0xff, 0, 1, 3}, "RSA")
	f.Fuzz(func(t *testing.T, body []byte, family string) {
		kx, err := ParseServerKeyExchange(body, family)
		if err != nil {
			return
		}
		if kx.Kind == "dh" && (len(kx.Prime) == 0 || kx.Bits <= 0) {
			t.Fatalf("DH parameters without a prime: %+v", kx)
		}
	})
}

// FuzzParseAlert parses arbitrary alert records.
func FuzzParseAlert(f *testing.F) {
	f.Add([]byte{2, 40})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAlert(b)
		if err == nil && len(b) < 2 {
			t.Fatalf("alert of %d bytes accepted: %v", len(b), a)
		}
		_ = a.String()
	})
}
