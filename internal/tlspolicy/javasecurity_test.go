package tlspolicy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The page's own line, including its missing space after "RC4_40,".
const pageLine = "jdk.tls.disabledAlgorithms=SSLv3, RC4, MD5withRSA, DH keySize < 1024, EC keySize < 224, DES40_CBC, RC4_40,TLSv1, TLSv1.1"

func entryTexts(js *JavaSecurity) []string {
	var out []string
	for _, e := range js.Disabled {
		out = append(out, e.Text)
	}
	return out
}

func TestParseJavaSecurity(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // entry texts
		check   func(t *testing.T, js *JavaSecurity)
		wantErr string
	}{
		{name: "page line", in: pageLine + "\n",
			want: []string{"SSLv3", "RC4", "MD5withRSA", "DH keySize < 1024", "EC keySize < 224", "DES40_CBC", "RC4_40", "TLSv1", "TLSv1.1"},
			check: func(t *testing.T, js *JavaSecurity) {
				dh := js.Disabled[3]
				if dh.Algorithm != "DH" || len(dh.KeySize) != 1 || dh.KeySize[0] != (KeySizeConstraint{"<", 1024}) {
					t.Errorf("DH entry parsed as %+v", dh)
				}
			}},
		{name: "JDK 17 default with continuations", in: DefaultJavaSecurityContent,
			want: []string{"SSLv3", "TLSv1", "TLSv1.1", "DTLSv1.0", "RC4", "DES", "MD5withRSA", "DH keySize < 1024", "EC keySize < 224", "3DES_EDE_CBC", "anon", "NULL", "ECDH"}},
		{name: "JDK 25 wildcard and usage", in: "jdk.tls.disabledAlgorithms=TLS_RSA_*, rsa_pkcs1_sha1 usage HandshakeSignature, RSA keySize < 2048 & denyAfter 2030-01-01\n",
			want: []string{"TLS_RSA_*", "rsa_pkcs1_sha1 usage HandshakeSignature", "RSA keySize < 2048 & denyAfter 2030-01-01"}},
		{name: "quoted value and unspaced operator", in: "jdk.tls.disabledAlgorithms=\"EC keySize<224, RSA keySize <=1023\"\n",
			want: []string{"EC keySize<224", "RSA keySize <=1023"},
			check: func(t *testing.T, js *JavaSecurity) {
				if len(js.Warnings) != 2 || !strings.Contains(js.Warnings[0], `a JDK refuses "keySize<224" (it needs spaces, as in "keySize < 224")`) {
					t.Errorf("warnings = %q, want one per unspaced keySize", js.Warnings)
				}
			}},
		{name: "JDK 17 curve list with multi-word names", in: "jdk.disabled.namedCurves = secp112r1, X9.62 c2tnb191v1, X9.62 prime239v3\njdk.tls.disabledAlgorithms=TLSv1, include jdk.disabled.namedCurves\n",
			want: []string{"TLSv1", "secp112r1", "X9.62 c2tnb191v1", "X9.62 prime239v3"}},
		{name: "jdkCA and usage in any case", in: "jdk.tls.disabledAlgorithms=SHA1 JDKCA & usage tlsserver\n",
			want: []string{"SHA1 JDKCA & usage tlsserver"},
			check: func(t *testing.T, js *JavaSecurity) {
				if e := js.Disabled[0]; !e.JDKCA || len(e.Usage) != 1 || e.Usage[0] != "TLSServer" {
					t.Errorf("entry parsed as %+v", e)
				}
			}},
		{name: "jdkCA twice", in: "jdk.tls.disabledAlgorithms=SHA1 jdkCA & jdkCA\n", wantErr: "jdkCA may appear once per entry"},
		{name: "denyAfter twice", in: "jdk.tls.disabledAlgorithms=SHA1 denyAfter 2020-01-01 & denyAfter 2021-01-01\n", wantErr: "denyAfter may appear once per entry"},
		{name: "include property", in: "jdk.disabled.namedCurves=secp112r1, x25519\njdk.tls.disabledAlgorithms=TLSv1, include jdk.disabled.namedCurves\n",
			want: []string{"TLSv1", "secp112r1", "x25519"}},
		{name: "include of undefined property warns", in: "jdk.tls.disabledAlgorithms=TLSv1, include jdk.nothing\n",
			want: []string{"TLSv1"},
			check: func(t *testing.T, js *JavaSecurity) {
				if len(js.Warnings) != 2 || !strings.Contains(js.Warnings[0], "the JDK accepts include only for jdk.disabled.namedCurves") || !strings.Contains(js.Warnings[1], "jdk.nothing is not defined") {
					t.Errorf("warnings = %q", js.Warnings)
				}
			}},
		{name: "empty entries are skipped", in: "jdk.tls.disabledAlgorithms=TLSv1,, TLSv1.1,\n", want: []string{"TLSv1", "TLSv1.1"}},
		{name: "no property", in: "other=1\n", want: nil,
			check: func(t *testing.T, js *JavaSecurity) {
				if js.Defined || len(js.Warnings) != 1 {
					t.Errorf("Defined=%v warnings=%q", js.Defined, js.Warnings)
				}
			}},
		{name: "later definition wins", in: "jdk.tls.disabledAlgorithms=TLSv1\njdk.tls.disabledAlgorithms=SSLv3\n", want: []string{"SSLv3"}},
		{name: "keySize without number", in: "jdk.tls.disabledAlgorithms=DH keySize < big\n", wantErr: `java.security:1: jdk.tls.disabledAlgorithms entry "DH keySize < big": constraint "keySize < big" is not one of: keySize <op> <bits>`},
		{name: "unknown constraint", in: "jdk.tls.disabledAlgorithms=RSA keylength < 2048\n", wantErr: `entry "RSA keylength < 2048": constraint "keylength < 2048" is not one of`},
		{name: "operator glued to name", in: "jdk.tls.disabledAlgorithms=DH<1024\n", wantErr: `entry "DH<1024": expected an algorithm name followed by a space and a constraint`},
		{name: "bad operator", in: "jdk.tls.disabledAlgorithms=DH keySize =< 1024\n", wantErr: `constraint "keySize =< 1024" is not one of`},
		{name: "a wildcard parses (JDK 17 reads it as a name nothing has)", in: "jdk.tls.disabledAlgorithms=RC*\n", want: []string{"RC*"}},
		{name: "unknown usage", in: "jdk.tls.disabledAlgorithms=SHA1 usage Everything\n", wantErr: `unknown usage "Everything"`},
		{name: "include without property", in: "jdk.tls.disabledAlgorithms=include\n", wantErr: "expected include <security property>"},
		{name: "include loop", in: "a=include b\nb=include a\njdk.tls.disabledAlgorithms=include a\n", wantErr: "includes itself"},
		{name: "translated page line with ideographic commas", in: "jdk.tls.disabledAlgorithms = SSLv3、RC4、MD5withRSA、DHキーサイズ<1024、TLSv1、TLSv1.1\n",
			wantErr: "full-width comma"},
		{name: "translated keySize", in: "jdk.tls.disabledAlgorithms=DH キーサイズ < 1024\n", wantErr: "non-ASCII characters"},
		{name: "starts on line 3", in: "# c\n\njdk.tls.disabledAlgorithms=RC4 keySize\n", wantErr: "java.security:3:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, err := ParseJavaSecurity("java.security", []byte(tt.in))
			if wantError(t, err, tt.wantErr) {
				return
			}
			if got := entryTexts(js); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("entries = %q\nwant      %q", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, js)
			}
		})
	}
}

// JDK 17 has no file-level include (JDK 24 added it): the line is a property nobody reads. tlsfleet
// does not follow it either, and says so (jdk_test.go checks it against a real JDK 17).
func TestJavaSecurityIncludeIsIgnored(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("java.security", "jdk.tls.disabledAlgorithms=SSLv3\ninclude extra.security\n")
	write("extra.security", "jdk.tls.disabledAlgorithms=SSLv3, TLSv1, TLSv1.1\n")
	js, err := LoadJavaSecurity(filepath.Join(dir, "java.security"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(entryTexts(js), ","); got != "SSLv3" {
		t.Errorf("entries = %s, want SSLv3 (the included file is not read)", got)
	}
	if len(js.Warnings) != 1 || !strings.Contains(js.Warnings[0], `java.security:2: "include extra.security" is ignored: JDK 17 has no include lines`) {
		t.Errorf("warnings = %q", js.Warnings)
	}
	// A missing or looping include is no error: nothing is read.
	write("loop.security", "include loop.security\njdk.tls.disabledAlgorithms=TLSv1\n")
	if js, err := LoadJavaSecurity(filepath.Join(dir, "loop.security")); err != nil || strings.Join(entryTexts(js), ",") != "TLSv1" {
		t.Errorf("include loop: %v", err)
	}
	big := strings.Repeat("#", MaxFileSize+1)
	write("big.security", big)
	if _, err := LoadJavaSecurity(filepath.Join(dir, "big.security")); err == nil || !strings.Contains(err.Error(), "configuration files are limited to") {
		t.Errorf("oversized file: %v", err)
	}
	_, err = LoadJavaSecurity(filepath.Join(dir, "missing.security"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestConstraintOperators(t *testing.T) {
	tests := []struct {
		op   string
		bits int
		key  int
		want bool
	}{
		{"<", 1024, 1023, true}, {"<", 1024, 1024, false},
		{"<=", 1024, 1024, true}, {"<=", 1024, 1025, false},
		{"==", 2048, 2048, true}, {"==", 2048, 4096, false},
		{"!=", 2048, 4096, true}, {"!=", 2048, 2048, false},
		{">=", 4096, 4096, true}, {">", 4096, 4096, false}, {">", 4096, 8192, true},
		{"??", 1, 1, false},
	}
	for _, tt := range tests {
		if got := (KeySizeConstraint{tt.op, tt.bits}).Disallows(tt.key); got != tt.want {
			t.Errorf("keySize %s %d on %d = %v, want %v", tt.op, tt.bits, tt.key, got, tt.want)
		}
	}
}

func TestMatchesSuite(t *testing.T) {
	tests := []struct {
		entry string
		suite string
		want  bool
	}{
		{"RC4", "TLS_ECDHE_RSA_WITH_RC4_128_SHA", true},
		{"rc4", "TLS_RSA_WITH_RC4_128_SHA", true},
		{"RC4_40", "TLS_RSA_EXPORT_WITH_RC4_40_MD5", true},
		{"RC4_40", "TLS_RSA_WITH_RC4_128_SHA", false},
		{"DES", "TLS_RSA_WITH_DES_CBC_SHA", true},
		{"DES", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", false}, // 3DES is DESede to the JDK
		{"3DES_EDE_CBC", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", true},
		{"DESede", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", true},
		{"DES40_CBC", "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA", true},
		{"DES40_CBC", "TLS_RSA_WITH_DES_CBC_SHA", false},
		{"anon", "TLS_DH_anon_WITH_AES_128_CBC_SHA", true},
		{"anon", "TLS_ECDH_anon_WITH_AES_128_CBC_SHA", true},
		{"NULL", "TLS_RSA_WITH_NULL_SHA256", true},
		{"NULL", "TLS_RSA_WITH_AES_128_CBC_SHA", false},
		{"ECDH", "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA", true},
		{"ECDH", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", false},
		{"ECDHE", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true},
		{"DHE", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", true},
		{"DHE", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", false},
		{"DH", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", true},
		{"RSA", "TLS_RSA_WITH_AES_128_CBC_SHA", true},
		{"RSA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true},
		{"RSA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", false},
		{"RSA keySize < 2048", "TLS_RSA_WITH_AES_128_CBC_SHA", false}, // constrained entries restrict keys only
		{"SHA1", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true},
		{"HmacSHA1", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true},
		{"SHA384", "TLS_AES_256_GCM_SHA384", true},
		{"AES_128_GCM", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", true},
		{"GCM", "TLS_AES_128_GCM_SHA256", true},
		{"CBC", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true},
		// JDK 17 names ChaCha20 by its transformation only, and has no wildcards (jdk_test.go).
		{"CHACHA20_POLY1305", "TLS_CHACHA20_POLY1305_SHA256", false},
		{"CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", false},
		{"ChaCha20-Poly1305", "TLS_CHACHA20_POLY1305_SHA256", true},
		{"chacha20-poly1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", true},
		{"TLS_RSA_*", "TLS_RSA_WITH_AES_256_GCM_SHA384", false},
		{"TLS_RSA_*", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", false},
		{"tls_ecdhe_*_cbc_*", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", false},
		{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", true},
		{"SSL_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", true},
		{"CAMELLIA", "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", true},
		{"PSK", "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256", true},
		{"AES", "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", false},
	}
	for _, tt := range tests {
		js, err := ParseJavaSecurity("j", []byte(DisabledAlgorithmsKey+"="+tt.entry))
		if err != nil {
			t.Fatalf("%s: %v", tt.entry, err)
		}
		s, ok := LookupSuite(tt.suite)
		if !ok {
			t.Fatalf("no suite %s", tt.suite)
		}
		if got := js.Disabled[0].matchesSuite(s); got != tt.want {
			t.Errorf("%q matches %s = %v, want %v", tt.entry, tt.suite, got, tt.want)
		}
	}
}
