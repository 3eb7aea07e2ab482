package scan

import (
	"slices"
	"strings"
	"testing"

	"tlsfleet/internal/tlspolicy"
)

// Grades and warnings as nmap 7.93's ssl-enum-ciphers gives them (cases checked against its output or
// worked through its rules by hand).
func TestSuiteGrade(t *testing.T) {
	rsa2048 := &certInfo{keyType: "rsa", bits: 2048, signature: "SHA256-RSA", exponent: 65537}
	rsa2048sha1 := &certInfo{keyType: "rsa", bits: 2048, signature: "SHA1-RSA", exponent: 65537}
	ecP256 := &certInfo{keyType: "ec", bits: 256, curve: "secp256r1", signature: "ECDSA-SHA256"}
	tests := []struct {
		proto, suite string
		cert         *certInfo
		kx           *kexSeen
		kex, grade   string
		warnings     []string
	}{
		{"TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", rsa2048, groupKex(23), "secp256r1", "A", nil},
		{"TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", rsa2048, groupKex(29), "ecdh_x25519", "A", nil},
		{"TLSv1.2", "TLS_RSA_WITH_AES_128_CBC_SHA", rsa2048, nil, "rsa 2048", "A", nil},
		{"TLSv1.2", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", rsa2048, nil, "rsa 2048", "C", []string{"64-bit block cipher 3DES vulnerable to SWEET32 attack"}},
		{"TLSv1.0", "TLS_RSA_WITH_RC4_128_MD5", rsa2048, nil, "rsa 2048", "C", []string{"Broken cipher RC4 is deprecated by RFC 7465", "Ciphersuite uses MD5 for message integrity"}},
		{"TLSv1.2", "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", rsa2048, &kexSeen{keyType: "dh", bits: 1024}, "dh 1024", "A", []string{"Key exchange (dh 1024) of lower strength than certificate key"}},
		{"TLSv1.2", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", rsa2048, &kexSeen{keyType: "dh", bits: 512}, "dh 512", "C", []string{"Key exchange (dh 512) of lower strength than certificate key"}},
		{"TLSv1.2", "TLS_ECDH_anon_WITH_AES_128_CBC_SHA", nil, groupKex(23), "secp256r1", "F", []string{"Anonymous key exchange, score capped at F"}},
		{"TLSv1.0", "TLS_RSA_EXPORT_WITH_RC4_40_MD5", rsa2048, nil, "rsa 2048", "E", []string{"Broken cipher RC4 is deprecated by RFC 7465", "Ciphersuite uses MD5 for message integrity", "Export key exchange"}},
		{"TLSv1.2", "TLS_RSA_WITH_NULL_SHA256", rsa2048, nil, "rsa 2048", "F", nil},
		{"TLSv1.2", "TLS_RSA_WITH_AES_128_GCM_SHA256", rsa2048sha1, nil, "rsa 2048", "F", []string{"Insecure certificate signature (SHA1), score capped at F"}},
		{"TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", ecP256, groupKex(23), "secp256r1", "A", nil},
		{"TLSv1.3", "TLS_AES_128_GCM_SHA256", rsa2048, groupKex(29), "ecdh_x25519", "A", nil},
		{"TLSv1.3", "TLS_AES_256_GCM_SHA384", nil, groupKex(256), "ffdhe2048", "A", nil},
		{"SSLv3", "TLS_RSA_WITH_AES_128_CBC_SHA", rsa2048, nil, "rsa 2048", "A", []string{"CBC-mode cipher in SSLv3 (CVE-2014-3566)"}},
		{"TLSv1.2", "TLS_RSA_WITH_IDEA_CBC_SHA", &certInfo{keyType: "rsa", bits: 1024, signature: "SHA256-RSA"}, nil, "rsa 1024", "A", []string{"64-bit block cipher IDEA vulnerable to SWEET32 attack"}},
		{"TLSv1.2", "TLS_RSA_WITH_DES_CBC_SHA", &certInfo{keyType: "rsa", bits: 512, signature: "MD5-RSA"}, nil, "rsa 512", "F", []string{"64-bit block cipher DES vulnerable to SWEET32 attack", "Insecure certificate signature (MD5), score capped at F"}},
		{"TLSv1.2", "TLS_RSA_WITH_AES_128_CBC_SHA", &certInfo{keyType: "rsa", bits: 2048, signature: "SHA256-RSA", exponent: 1}, nil, "rsa 2048", "F", []string{"Certificate RSA exponent is 1, score capped at F"}},
	}
	for _, tt := range tests {
		t.Run(tt.proto+" "+tt.suite, func(t *testing.T) {
			s, ok := tlspolicy.LookupSuite(tt.suite)
			if !ok {
				t.Fatalf("unknown suite %s", tt.suite)
			}
			w := map[string]bool{}
			kex, grade, _ := suiteGrade(tt.proto, s, tt.cert, tt.kx, w)
			var warnings []string
			for k := range w {
				warnings = append(warnings, k)
			}
			slices.Sort(warnings)
			if kex != tt.kex || grade != tt.grade || strings.Join(warnings, "|") != strings.Join(tt.warnings, "|") {
				t.Errorf("got (%s) - %s %q\nwant (%s) - %s %q", kex, grade, warnings, tt.kex, tt.grade, tt.warnings)
			}
		})
	}
}

func TestParseCipherInfo(t *testing.T) {
	tests := []struct {
		name                    string
		kex, cipher, mode, hash string
		size, block             int
	}{
		{"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "RSA", "3DES", "CBC", "SHA", 112, 64},
		{"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE_RSA", "CHACHA20-POLY1305", "stream", "SHA256", 256, 128},
		{"TLS_RSA_WITH_RC4_128_SHA", "RSA", "RC4", "stream", "SHA", 80, 0},
		{"TLS_AKE_WITH_AES_128_CCM_8_SHA256", "AKE", "AES", "CCM_8", "SHA256", 128, 128},
		{"TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", "RSA_EXPORT", "DES40", "CBC", "SHA", 40, 64},
		{"TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256", "DHE_RSA", "CAMELLIA", "CBC", "SHA256", 256, 128},
		{"TLS_RSA_WITH_NULL_MD5", "RSA", "NULL", "", "MD5", 0, 0},
	}
	for _, tt := range tests {
		ci := parseCipherInfo(tt.name)
		if ci.kex != tt.kex || ci.cipher != tt.cipher || ci.mode != tt.mode || ci.hash != tt.hash || ci.size != tt.size || ci.blockBits != tt.block {
			t.Errorf("%s: got %+v", tt.name, ci)
		}
	}
}
