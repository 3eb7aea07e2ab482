package tlspolicy

import (
	"testing"
)

// FuzzParseJavaSecurity feeds arbitrary files to the java.security parser and, when they parse, to the
// whole layering: nothing may panic, and every entry must round-trip its text.
func FuzzParseJavaSecurity(f *testing.F) {
	f.Add([]byte(pageLine))
	f.Add([]byte(DefaultJavaSecurityContent))
	f.Add([]byte("jdk.tls.disabledAlgorithms=TLS_RSA_*, rsa_pkcs1_sha1 usage HandshakeSignature, RSA keySize < 2048 & denyAfter 2030-01-01\n"))
	f.Add([]byte("a=include b\njdk.tls.disabledAlgorithms=include a, \\\n  x25519\n"))
	f.Add([]byte("jdk.tls.disabledAlgorithms = SSLv3、RC4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		js, err := ParseJavaSecurity("java.security", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for _, e := range js.Disabled {
			if e.Text == "" || e.Algorithm == "" {
				t.Fatalf("empty entry from %q", data)
			}
		}
		for _, l := range ManagerListeners {
			p := Effective(l, Layers{JavaSecurity: js})
			for _, v := range p.Versions {
				if v < TLSv1 || v > TLSv1_3 {
					t.Fatalf("impossible version %s", v)
				}
			}
		}
	})
}

// FuzzParseConfigProperties does the same for configuration.properties.
func FuzzParseConfigProperties(f *testing.F) {
	f.Add([]byte("serviceName=x\nprotocols=TLSv1.2\n"))
	f.Add([]byte("protocols=TLSv1,TLSv1.1,TLSv1.2\nciphers=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"))
	f.Add([]byte("ciphers=ECDHE-RSA-AES128-GCM-SHA256:0xC02F\nport\\u003d=4119\n"))
	f.Add([]byte("k\\\n  v=\\u00e9\r\n! comment\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cp, err := ParseConfigProperties("configuration.properties", data)
		if err != nil {
			return
		}
		if cp.Protocols != nil && len(cp.Protocols) == 0 || cp.Ciphers != nil && len(cp.Ciphers) == 0 {
			t.Fatalf("empty list accepted from %q", data)
		}
		p := Effective(Listener{4119, RoleConsole}, Layers{Config: cp})
		for _, id := range p.Suites {
			if s, ok := SuiteByID(id); !ok || !s.GoImplemented() {
				t.Fatalf("policy lists suite 0x%04X that Go cannot negotiate", id)
			}
		}
	})
}
