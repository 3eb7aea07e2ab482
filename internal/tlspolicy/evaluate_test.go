package tlspolicy

import (
	"crypto/tls"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
	"tlsfleet/internal/testtarget"
)

var (
	allSigs = []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256, tls.PKCS1WithSHA256, tls.ECDSAWithP384AndSHA384}
	v12down = []uint16{tls.VersionTLS12, tls.VersionTLS11, tls.VersionTLS10}
)

func TestEvaluate(t *testing.T) {
	pageUndo := "jdk.tls.disabledAlgorithms=SSLv3, RC4, MD5withRSA, DH keySize < 1024, EC keySize < 224, DES40_CBC, RC4_40\n"
	legacyRSA := func(t *testing.T) *Policy {
		return Effective(Listener{4120, RoleAgentChannel}, Layers{JavaSecurity: mustJava(t, pageUndo), Cert: rsaCertInfo})
	}
	enforcedEC := func(t *testing.T) *Policy { return Effective(Listener{4119, RoleConsole}, Layers{}) }
	tests := []struct {
		name    string
		policy  func(t *testing.T) *Policy
		hello   tls.ClientHelloInfo
		want    string // "accepted: TLSv1 TLS_..." or a substring of the rejection
		wantOut bool
	}{
		{name: "Windows XP style TLS 1.0 3DES client under early TLS", policy: legacyRSA,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS10}, CipherSuites: []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_RC4_128_SHA}},
			want:  "accepted: TLSv1 TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
		{name: "RC4-only client", policy: legacyRSA,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS10}, CipherSuites: []uint16{tls.TLS_RSA_WITH_RC4_128_SHA}},
			want:  "no cipher suite in common for TLSv1"},
		{name: "early TLS refused after enforcement", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS11, tls.VersionTLS10}, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
			want:  "client offered TLSv1.1, TLSv1; port 4119 accepts TLSv1.2, TLSv1.3"},
		{name: "server picks its own order", policy: legacyRSA,
			hello: tls.ClientHelloInfo{SupportedVersions: v12down, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256},
				SupportedCurves: []tls.CurveID{tls.X25519}, SignatureSchemes: allSigs},
			want: "accepted: TLSv1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
		{name: "no common curve falls back to RSA key exchange", policy: legacyRSA,
			hello: tls.ClientHelloInfo{SupportedVersions: v12down, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA},
				SupportedCurves: []tls.CurveID{0x0015}, SignatureSchemes: allSigs},
			want: "accepted: TLSv1.2 TLS_RSA_WITH_AES_128_CBC_SHA"},
		{name: "TLS 1.2 ECDHE without signature_algorithms", policy: legacyRSA,
			hello: tls.ClientHelloInfo{SupportedVersions: v12down, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256}},
			want:  "sent no signature_algorithms"},
		{name: "TLS 1.2 RSA key exchange needs no signature", policy: legacyRSA,
			hello: tls.ClientHelloInfo{SupportedVersions: v12down, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_256_GCM_SHA384}},
			want:  "accepted: TLSv1.2 TLS_RSA_WITH_AES_256_GCM_SHA384"},
		{name: "SHA-1 signatures only", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: v12down, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256}, SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithSHA1}},
			want:  "no signature scheme usable"},
		{name: "compressed points only", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: v12down, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256}, SupportedPoints: []uint8{1}, SignatureSchemes: allSigs},
			want:  "compressed elliptic-curve point formats"},
		{name: "post-quantum group only, TLS 1.2", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: v12down, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.X25519MLKEM768}, SignatureSchemes: allSigs},
			want:  "it offered no elliptic-curve group this port accepts"},
		{name: "post-quantum group preferred in TLS 1.3", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}, CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.X25519, tls.X25519MLKEM768}, SignatureSchemes: allSigs},
			want:  "accepted: TLSv1.3 TLS_AES_128_GCM_SHA256"},
		{name: "TLS 1.3 with finite-field groups only", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13}, CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{256}, SignatureSchemes: allSigs},
			want:  "no key-exchange group in common: client offered ffdhe2048"},
		{name: "TLS 1.3 without signature_algorithms", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13}, CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.X25519}},
			want:  "TLS 1.3 requires"},
		{name: "TLS 1.3 with a suite Go lacks", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13}, CipherSuites: []uint16{0x1304}, SupportedCurves: []tls.CurveID{tls.X25519}, SignatureSchemes: allSigs},
			want:  "no TLS 1.3 cipher suite in common; client offered TLS_AES_128_CCM_SHA256"},
		{name: "fallback signal refused", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS12}, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0x5600}, SupportedCurves: []tls.CurveID{tls.CurveP256}, SignatureSchemes: allSigs},
			want:  "TLS_FALLBACK_SCSV"},
		{name: "ECDSA suite for an RSA certificate", policy: legacyRSA,
			hello: tls.ClientHelloInfo{SupportedVersions: v12down, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256}, SignatureSchemes: allSigs},
			want:  "no cipher suite in common"},
		{name: "forbidden certificate", policy: func(t *testing.T) *Policy {
			return Effective(Listener{4119, RoleConsole}, Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=RSA\n"), Cert: rsaCertInfo})
		},
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13}, CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256}},
			want:  "certificate key (RSA 2048) is forbidden"},
		{name: "empty hello", policy: enforcedEC, hello: tls.ClientHelloInfo{}, want: "client offered no version"},
		{name: "legacy version 1.3 without supported_versions gets TLS 1.2", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}, Extensions: []uint16{10, 11, 13},
				CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256}, SignatureSchemes: allSigs},
			want: "accepted: TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
		{name: "fallback signal with a GREASE version is still a fallback", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{0x7a7a, tls.VersionTLS12}, Extensions: []uint16{10, 13, 43},
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0x5600}, SupportedCurves: []tls.CurveID{tls.CurveP256}, SignatureSchemes: allSigs},
			want: "TLS_FALLBACK_SCSV"},
		{name: "fallback signal without a common suite fails on the suite first", policy: enforcedEC,
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS12}, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, 0x5600}},
			want:  "no cipher suite in common"},
		{name: "Ed25519 certificate cannot sign TLS 1.0", policy: func(t *testing.T) *Policy {
			return Effective(Listener{4119, RoleConsole}, Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=SSLv3\n"), Cert: CertInfo{KeyAlgorithm: "Ed25519", KeyBits: 255, SignatureAlgorithm: "Ed25519"}})
		},
			hello: tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS10}, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, SupportedCurves: []tls.CurveID{tls.X25519}},
			want:  "an Ed25519 certificate cannot sign in TLSv1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Evaluate(tt.policy(t), &tt.hello)
			if got := d.String(); !strings.Contains(got, tt.want) {
				t.Errorf("Evaluate = %s\nwant       %s", got, tt.want)
			}
			if !d.Accepted && d.Alert == "" {
				t.Errorf("a rejection must name its alert")
			}
		})
	}
}

// In TLS 1.2 Go takes the client's first allowed group, not its own first.
func TestEvaluateTLS12GroupFollowsTheClient(t *testing.T) {
	p := Effective(Listener{4119, RoleConsole}, Layers{})
	hello := &tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS12}, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SupportedCurves: []tls.CurveID{tls.X25519MLKEM768, tls.CurveP384, tls.X25519}, SignatureSchemes: allSigs}
	if d := Evaluate(p, hello); d.Group != tls.CurveP384 {
		t.Errorf("group = %s, want secp384r1 (the client's first non-hybrid group)", GroupName(d.Group))
	}
}

// TestEvaluateAgreesWithGoClients drives the real listener with many Go client configurations over
// in-memory connections and checks each prediction against the handshake.
func TestEvaluateAgreesWithGoClients(t *testing.T) {
	rsaCert := selfSigned(t, "RSA", 2048)
	ecCert := selfSigned(t, "EC", 256)
	pageUndo := "jdk.tls.disabledAlgorithms=SSLv3, RC4, DES40_CBC\n"
	policies := []struct {
		name   string
		cert   tls.Certificate
		layers Layers
	}{
		{"default EC", ecCert, Layers{}},
		{"page undo RSA", rsaCert, Layers{JavaSecurity: mustJava(t, pageUndo)}},
		{"gap RSA", rsaCert, Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1.1, x25519\n")}},
		{"strong console RSA", rsaCert, Layers{JavaSecurity: mustJava(t, pageLine), Config: mustConf(t, "ciphers=ECDHE-RSA-AES128-GCM-SHA256,ECDHE-RSA-CHACHA20-POLY1305\n")}},
	}
	all := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
	curves := []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, pc := range policies {
		t.Run(pc.name, func(t *testing.T) {
			ci, _ := CertInfoOf(pc.cert)
			pc.layers.Cert = ci
			p := Effective(Listener{4119, RoleConsole}, pc.layers)
			ln := testtarget.Listen(t)
			var pred Decision
			srv, err := NewServer(p, ServerOptions{Certificate: pc.cert, Observer: func(_ *tls.ClientHelloInfo, d Decision) { pred = d }})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 150; i++ {
				cc := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: uint16(tls.VersionTLS10 + rng.IntN(4))}
				for _, cs := range all {
					if rng.IntN(3) == 0 {
						cc.CipherSuites = append(cc.CipherSuites, cs.ID)
					}
				}
				for _, c := range curves {
					if rng.IntN(2) == 0 {
						cc.CurvePreferences = append(cc.CurvePreferences, c)
					}
				}
				pred = Decision{}
				c1, c2 := tcpPair(t, ln)
				sc, cl := tls.Server(c1, srv.TLSConfig()), tls.Client(c2, cc)
				deadline := time.Now().Add(5 * time.Second)
				sc.SetDeadline(deadline)
				cl.SetDeadline(deadline)
				errc := make(chan error, 1)
				go func() { errc <- cl.Handshake(); c2.Close() }()
				serr := sc.Handshake()
				c1.Close()
				cerr := <-errc
				accepted := serr == nil
				if serr != nil && cerr != nil && strings.Contains(serr.Error(), "reset by peer") {
					serr = cerr // the client gave up first; its error says why
				}
				if pred.Accepted != accepted {
					t.Errorf("client max %s suites %s curves %v: Evaluate %v, listener err %v", Version(cc.MaxVersion), suiteList(cc.CipherSuites), cc.CurvePreferences, pred, serr)
					continue
				}
				if accepted {
					st := sc.ConnectionState()
					if Version(st.Version) != pred.Version || st.CipherSuite != pred.Suite {
						t.Errorf("predicted %s %s, negotiated %s %s", pred.Version, SuiteName(pred.Suite), Version(st.Version), SuiteName(st.CipherSuite))
					}
				}
			}
		})
	}
}

// tcpPair returns both ends of a loopback TCP connection (net.Pipe cannot carry a HelloRetryRequest
// exchange: both sides write at once).
func tcpPair(t *testing.T, ln net.Listener) (server, client net.Conn) {
	t.Helper()
	done := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		done <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-done
	if server == nil {
		t.Fatal("accept failed")
	}
	return server, client
}

func BenchmarkEvaluate(b *testing.B) {
	p := Effective(Listener{4119, RoleConsole}, Layers{})
	hello := &tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12}, CipherSuites: []uint16{0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035},
		SupportedCurves: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}, SignatureSchemes: allSigs}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(p, hello)
	}
}

func BenchmarkEffective(b *testing.B) {
	js, err := ParseJavaSecurity("java.security", []byte(DefaultJavaSecurityContent))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Effective(Listener{4119, RoleConsole}, Layers{JavaSecurity: js})
	}
}
