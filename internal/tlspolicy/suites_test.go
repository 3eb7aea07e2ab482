package tlspolicy

import (
	"crypto/tls"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegistryIntegrity(t *testing.T) {
	reg := Registry()
	if len(reg) < 340 {
		t.Fatalf("registry has %d suites; the IANA registry has more than 340", len(reg))
	}
	seen := map[string]bool{}
	for i, s := range reg {
		if i > 0 && reg[i-1].ID >= s.ID {
			t.Errorf("registry not sorted at %s", s.Name)
		}
		if seen[s.Name] {
			t.Errorf("duplicate name %s", s.Name)
		}
		seen[s.Name] = true
		if s.SCSV {
			continue
		}
		if s.Cipher == "" || s.CipherFamily == "" || s.MAC == "" || s.Mode == "" {
			t.Errorf("%s (0x%04X) did not decompose: %+v", s.Name, s.ID, s)
		}
		if !s.TLS13 && (s.KeyExchange == "" || s.Auth == "") {
			t.Errorf("%s has no key exchange or authentication: %+v", s.Name, s)
		}
		if s.MinVersion > s.MaxVersion {
			t.Errorf("%s: min version %s > max %s", s.Name, s.MinVersion, s.MaxVersion)
		}
	}
}

// Every suite Go implements must be in the registry under the name Go gives it.
func TestRegistryCoversGo(t *testing.T) {
	all := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
	for _, cs := range all {
		s, ok := SuiteByID(cs.ID)
		if !ok {
			t.Errorf("Go suite %s (0x%04X) missing from the registry", cs.Name, cs.ID)
			continue
		}
		if s.Name != cs.Name {
			t.Errorf("0x%04X: registry says %s, Go says %s", cs.ID, s.Name, cs.Name)
		}
		if !s.GoImplemented() {
			t.Errorf("%s not marked as implemented by Go", s.Name)
		}
		for _, v := range cs.SupportedVersions {
			if !s.SupportsVersion(Version(v)) && Version(v) != SSLv3 {
				t.Errorf("%s: Go negotiates it in %s, registry says %s–%s", s.Name, Version(v), s.MinVersion, s.MaxVersion)
			}
		}
	}
}

func TestDecompose(t *testing.T) {
	tests := []struct {
		name string
		want Suite
	}{
		{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Suite{ID: 0xC02F, OpenSSL: "ECDHE-RSA-AES128-GCM-SHA256", KeyExchange: "ECDHE", Auth: "RSA", KexAuth: "ECDHE_RSA", Cipher: "AES_128_GCM", CipherFamily: "AES", KeyBits: 128, BlockBits: 128, Mode: "GCM", MAC: "AEAD", PRF: "SHA256", MinVersion: TLSv1_2, MaxVersion: TLSv1_2}},
		{"TLS_RSA_WITH_3DES_EDE_CBC_SHA", Suite{ID: 0x000A, OpenSSL: "DES-CBC3-SHA", KeyExchange: "RSA", Auth: "RSA", KexAuth: "RSA", Cipher: "3DES_EDE_CBC", CipherFamily: "3DES", KeyBits: 168, BlockBits: 64, Mode: "CBC", MAC: "SHA1", PRF: "SHA256", MinVersion: SSLv3, MaxVersion: TLSv1_2}},
		{"TLS_RSA_EXPORT_WITH_RC4_40_MD5", Suite{ID: 0x0003, OpenSSL: "EXP-RC4-MD5", KeyExchange: "RSA", Auth: "RSA", KexAuth: "RSA_EXPORT", Cipher: "RC4_40", CipherFamily: "RC4", KeyBits: 40, Mode: "STREAM", MAC: "MD5", Export: true, MinVersion: SSLv3, MaxVersion: TLSv1}},
		{"TLS_DH_anon_WITH_AES_256_CBC_SHA256", Suite{ID: 0x006D, OpenSSL: "ADH-AES256-SHA256", KeyExchange: "DH", Auth: "anon", KexAuth: "DH_anon", Cipher: "AES_256_CBC", CipherFamily: "AES", KeyBits: 256, BlockBits: 128, Mode: "CBC", MAC: "SHA256", PRF: "SHA256", MinVersion: TLSv1_2, MaxVersion: TLSv1_2}},
		{"TLS_AES_256_GCM_SHA384", Suite{ID: 0x1302, OpenSSL: "TLS_AES_256_GCM_SHA384", Cipher: "AES_256_GCM", CipherFamily: "AES", KeyBits: 256, BlockBits: 128, Mode: "GCM", MAC: "AEAD", PRF: "SHA384", TLS13: true, MinVersion: TLSv1_3, MaxVersion: TLSv1_3}},
		{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", Suite{ID: 0xCCA9, OpenSSL: "ECDHE-ECDSA-CHACHA20-POLY1305", KeyExchange: "ECDHE", Auth: "ECDSA", KexAuth: "ECDHE_ECDSA", Cipher: "CHACHA20_POLY1305", CipherFamily: "CHACHA20", KeyBits: 256, Mode: "AEAD", MAC: "AEAD", PRF: "SHA256", MinVersion: TLSv1_2, MaxVersion: TLSv1_2}},
		{"TLS_PSK_WITH_AES_128_CCM_8", Suite{ID: 0xC0A8, OpenSSL: "PSK-AES128-CCM8", KeyExchange: "PSK", Auth: "PSK", KexAuth: "PSK", Cipher: "AES_128_CCM_8", CipherFamily: "AES", KeyBits: 128, BlockBits: 128, Mode: "CCM_8", MAC: "AEAD", PRF: "SHA256", MinVersion: TLSv1_2, MaxVersion: TLSv1_2}},
		{"TLS_RSA_WITH_DES_CBC_SHA", Suite{ID: 0x0009, OpenSSL: "DES-CBC-SHA", KeyExchange: "RSA", Auth: "RSA", KexAuth: "RSA", Cipher: "DES_CBC", CipherFamily: "DES", KeyBits: 56, BlockBits: 64, Mode: "CBC", MAC: "SHA1", PRF: "SHA256", MinVersion: SSLv3, MaxVersion: TLSv1_1}},
		{"TLS_SHA256_SHA256", Suite{ID: 0xC0B4, OpenSSL: "TLS_SHA256_SHA256", Cipher: "NULL", CipherFamily: "NULL", Mode: "NULL", MAC: "SHA256", PRF: "SHA256", TLS13: true, MinVersion: TLSv1_3, MaxVersion: TLSv1_3}},
		{"TLS_NULL_WITH_NULL_NULL", Suite{ID: 0x0000, KeyExchange: "NULL", Auth: "NULL", KexAuth: "NULL", Cipher: "NULL", CipherFamily: "NULL", Mode: "NULL", MAC: "NULL", MinVersion: SSLv3, MaxVersion: TLSv1_2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := LookupSuite(tt.name)
			if !ok {
				t.Fatalf("%s not found", tt.name)
			}
			tt.want.Name = tt.name
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decomposition (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLookupSuite(t *testing.T) {
	tests := []struct {
		in   string
		want uint16
		ok   bool
	}{
		{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xC030, true},
		{"tls_ecdhe_rsa_with_aes_256_gcm_sha384", 0xC030, true},
		{"ECDHE-RSA-AES256-GCM-SHA384", 0xC030, true},
		{"SSL_RSA_WITH_3DES_EDE_CBC_SHA", 0x000A, true},
		{"DES-CBC3-SHA", 0x000A, true},
		{"0xC02F", 0xC02F, true},
		{"0xc02f", 0xC02F, true},
		{"TLS_AES_128_GCM_SHA256", 0x1301, true},
		{"TLS_ECDHE_RSA_WITH_AES_512_GCM_SHA384", 0, false},
		{"0x0A0A", 0, false}, // GREASE is not a suite
		{"", 0, false},
	}
	for _, tt := range tests {
		s, ok := LookupSuite(tt.in)
		if ok != tt.ok || s.ID != tt.want {
			t.Errorf("LookupSuite(%q) = 0x%04X, %v; want 0x%04X, %v", tt.in, s.ID, ok, tt.want, tt.ok)
		}
	}
	if n := SuiteName(0x0A0A); n != "0x0A0A" {
		t.Errorf("SuiteName of an unassigned value = %q", n)
	}
}

func TestSuiteProperties(t *testing.T) {
	tests := []struct {
		name                  string
		strong, fs, aead, def bool
	}{
		{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", true, true, true, true},
		{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", false, true, false, true},
		{"TLS_RSA_WITH_AES_128_GCM_SHA256", false, false, true, false},
		{"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", false, true, true, false},
		{"TLS_AES_128_GCM_SHA256", true, true, true, true},
		{"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", false, true, false, false},
	}
	for _, tt := range tests {
		s, _ := LookupSuite(tt.name)
		if s.Strong() != tt.strong || s.ForwardSecret() != tt.fs || s.AEAD() != tt.aead || defaultSuite(s) != tt.def {
			t.Errorf("%s: strong=%v fs=%v aead=%v default=%v; want %v %v %v %v", tt.name, s.Strong(), s.ForwardSecret(), s.AEAD(), defaultSuite(s), tt.strong, tt.fs, tt.aead, tt.def)
		}
	}
}
