package tlspolicy

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func mustJava(t *testing.T, content string) *JavaSecurity {
	t.Helper()
	js, err := ParseJavaSecurity("java.security", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func mustConf(t *testing.T, content string) *ConfigProperties {
	t.Helper()
	cp, err := ParseConfigProperties("configuration.properties", []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func names(p *Policy) (versions, suites string) {
	var v, s []string
	for _, x := range p.Versions {
		v = append(v, x.String())
	}
	for _, id := range p.Suites {
		s = append(s, SuiteName(id))
	}
	return strings.Join(v, ","), strings.Join(s, ",")
}

func hasRemoval(p *Policy, item, layer, entry string) bool {
	return slices.ContainsFunc(p.Removed, func(r Removal) bool {
		return r.Item == item && r.Layer == layer && (entry == "" || r.Entry == entry)
	})
}

var rsaCertInfo = CertInfo{KeyAlgorithm: "RSA", KeyBits: 2048, SignatureAlgorithm: "SHA256-RSA"}

func TestEffective(t *testing.T) {
	pageUndo := "jdk.tls.disabledAlgorithms=SSLv3, RC4, MD5withRSA, DH keySize < 1024, EC keySize < 224, DES40_CBC, RC4_40\n"
	strong := "ciphers=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
	tests := []struct {
		name        string
		listener    Listener
		layers      func(t *testing.T) Layers
		versions    string
		suites      string // "" = do not check
		removed     [][3]string
		notEnforced []string
		warning     string
		certErr     bool
		check       func(t *testing.T, p *Policy)
	}{
		{
			name: "new install, files missing: TLS 1.2+ with Go's secure suites", listener: Listener{4119, RoleConsole},
			layers:   func(t *testing.T) Layers { return Layers{} },
			versions: "TLSv1.2,TLSv1.3",
			suites:   "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
			removed:  [][3]string{{"TLSv1", LayerJava, "TLSv1"}, {"TLSv1.1", LayerJava, "TLSv1.1"}, {"SSLv3", LayerGo, ""}},
			warning:  "java.security is missing",
		},
		{
			name: "page line on the agent channel, RSA certificate", listener: Listener{4120, RoleAgentChannel},
			layers:   func(t *testing.T) Layers { return Layers{JavaSecurity: mustJava(t, pageLine), Cert: rsaCertInfo} },
			versions: "TLSv1.2,TLSv1.3",
			suites:   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
			removed:  [][3]string{{"TLSv1", LayerJava, "TLSv1"}, {"TLSv1.1", LayerJava, "TLSv1.1"}, {"TLS_RSA_WITH_AES_128_CBC_SHA", LayerDefaults, ""}, {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", LayerCert, ""}},
			warning:  `"RC4_40" has no effect here`,
		},
		{
			name: "page undo: early TLS and legacy suites on the agent channel", listener: Listener{4120, RoleAgentChannel},
			layers:   func(t *testing.T) Layers { return Layers{JavaSecurity: mustJava(t, pageUndo), Cert: rsaCertInfo} },
			versions: "TLSv1,TLSv1.1,TLSv1.2,TLSv1.3",
			suites: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA," +
				"TLS_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_128_CBC_SHA,TLS_RSA_WITH_AES_256_CBC_SHA,TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,TLS_RSA_WITH_3DES_EDE_CBC_SHA",
			removed: [][3]string{{"TLS_RSA_WITH_RC4_128_SHA", LayerJava, "RC4"}, {"TLS_RSA_WITH_AES_128_CBC_SHA256", LayerDefaults, ""}},
		},
		{
			name: "GUI port only: protocols=TLSv1.2 with early TLS in java.security", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, pageUndo), Config: mustConf(t, "protocols=TLSv1.2\n"), Cert: rsaCertInfo}
			},
			versions: "TLSv1.2",
			removed:  [][3]string{{"TLSv1", LayerConfig, "protocols=TLSv1.2"}, {"TLSv1.3", LayerConfig, "protocols=TLSv1.2"}, {"TLS_RSA_WITH_AES_128_CBC_SHA", LayerDefaults, ""}},
			warning:  "protocols= lists TLSv1.2 but not TLSv1.3",
		},
		{
			name: "configuration.properties does not reach the agent channel", listener: Listener{4120, RoleAgentChannel},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, pageUndo), Config: mustConf(t, "protocols=TLSv1.2\n"), Cert: rsaCertInfo}
			},
			versions: "TLSv1,TLSv1.1,TLSv1.2,TLSv1.3",
		},
		{
			name: "strong cipher list on the console", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, pageLine), Config: mustConf(t, strong), Cert: rsaCertInfo}
			},
			versions:    "TLSv1.2,TLSv1.3",
			suites:      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
			removed:     [][3]string{{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", LayerConfig, "ciphers="}},
			notEnforced: []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
			warning:     "ciphers= names no TLS 1.3 suite",
		},
		{
			name: "java.security cannot take a single TLS 1.3 suite away", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, ChaCha20-Poly1305\n")}
			},
			versions:    "TLSv1.2,TLSv1.3",
			suites:      "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
			notEnforced: []string{"TLS_CHACHA20_POLY1305_SHA256"},
		},
		{
			name: "EC keySize and bare EC leave the XDH group x25519", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, EC\n"), Cert: rsaCertInfo}
			},
			versions: "TLSv1.2,TLSv1.3",
			removed:  [][3]string{{"secp256r1", LayerJava, "EC"}, {"SecP256r1MLKEM768", LayerJava, "EC"}},
			check: func(t *testing.T, p *Policy) {
				if !slices.Contains(p.Groups, tls.X25519) || !slices.Contains(p.Groups, tls.X25519MLKEM768) {
					t.Errorf("groups = %v, want x25519 and X25519MLKEM768 kept", p.Groups)
				}
			},
		},
		{
			name: "a partly filled Settings keeps the other defaults", listener: Listener{4122, RoleRelay},
			layers:   func(t *testing.T) Layers { return Layers{Settings: Settings{StrongCiphers: true}, Cert: rsaCertInfo} },
			versions: "TLSv1.2,TLSv1.3",
			removed:  [][3]string{{"TLSv1.1", LayerSettings, SettingRelayMinimum + "=TLSv1.2"}},
		},
		{
			name: "an invalid minimum falls back to the default with a warning", listener: Listener{4118, RoleAgent},
			layers:   func(t *testing.T) Layers { return Layers{Settings: Settings{AgentMinimum: SSLv3}, Cert: rsaCertInfo} },
			versions: "TLSv1.2,TLSv1.3",
			warning:  SettingAgentMinimum + ": SSLv3 is not a version tlsfleet serves",
		},
		{
			name: "relay defaults", listener: Listener{4122, RoleRelay},
			layers:   func(t *testing.T) Layers { return Layers{Cert: rsaCertInfo} },
			versions: "TLSv1.2,TLSv1.3",
			removed:  [][3]string{{"TLSv1", LayerSettings, SettingRelayMinimum + "=TLSv1.2"}},
		},
		{
			name: "relay: the page's undo sets TLSv1", listener: Listener{4122, RoleRelay},
			layers: func(t *testing.T) Layers {
				s := DefaultSettings()
				s.RelayMinimum = TLSv1
				return Layers{Settings: s, Cert: rsaCertInfo, JavaSecurity: mustJava(t, pageLine)} // java.security does not apply to relays
			},
			versions: "TLSv1,TLSv1.1,TLSv1.2,TLSv1.3",
		},
		{
			name: "relay: strong ciphers", listener: Listener{4122, RoleRelay},
			layers: func(t *testing.T) Layers {
				s := DefaultSettings()
				s.StrongCiphers = true
				return Layers{Settings: s, Cert: rsaCertInfo}
			},
			versions: "TLSv1.2,TLSv1.3",
			suites:   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
			removed:  [][3]string{{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", LayerSettings, SettingStrongCiphers + "=true"}},
		},
		{
			name: "strong ciphers do not touch the Manager", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				s := DefaultSettings()
				s.StrongCiphers = true
				return Layers{Settings: s, Cert: rsaCertInfo}
			},
			versions: "TLSv1.2,TLSv1.3",
			suites:   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
		},
		{
			name: "Manager minimum setting", listener: Listener{4120, RoleAgentChannel},
			layers: func(t *testing.T) Layers {
				s := DefaultSettings()
				s.ManagerMinimum = TLSv1_3
				return Layers{Settings: s, JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=SSLv3\n")}
			},
			versions: "TLSv1.3", suites: "",
			removed: [][3]string{{"TLSv1.2", LayerSettings, SettingManagerMinimum + "=TLSv1.3"}, {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", LayerDerived, ""}},
		},
		{
			name: "no group left turns TLS 1.3 off", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, EC keySize < 1024, XDH\n"), Cert: rsaCertInfo}
			},
			versions: "", suites: "",
			removed: [][3]string{{"TLSv1.3", LayerDerived, ""}, {"TLSv1.2", LayerDerived, ""}, {"x25519", LayerJava, "XDH"}, {"secp256r1", LayerJava, "EC keySize < 1024"}, {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", LayerDerived, ""}},
			warning: "TLSv1.2 has no cipher suite left",
		},
		{
			name: "forbidden certificate key", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, RSA keySize < 2048\n"), Cert: CertInfo{KeyAlgorithm: "RSA", KeyBits: 1024}}
			},
			// The JDK's key manager does not check its own certificate: it still serves it (jdk_test.go).
			versions: "TLSv1.1,TLSv1.2,TLSv1.3", warning: `own certificate key (RSA 1024) is below java.security entry "RSA keySize < 2048"`,
		},
		{
			name: "handshake signature schemes", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, RSASSA-PSS, rsa_pkcs1_sha384 usage HandshakeSignature, SHA512withRSA usage CertificateSignature\n"), Cert: rsaCertInfo}
			},
			versions: "TLSv1.2,TLSv1.3",
			removed:  [][3]string{{"rsa_pss_rsae_sha256", LayerJava, "RSASSA-PSS"}, {"rsa_pkcs1_sha384", LayerJava, "rsa_pkcs1_sha384 usage HandshakeSignature"}},
			check: func(t *testing.T, p *Policy) {
				want := []tls.SignatureScheme{tls.PKCS1WithSHA256, tls.PKCS1WithSHA512} // CertificateSignature does not touch handshakes
				if !slices.Equal(p.SignatureSchemes, want) {
					t.Errorf("signature schemes = %v, want %v", p.SignatureSchemes, want)
				}
			},
		},
		{
			name: "everything disabled", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, TLSv1.2, TLSv1.3\n")}
			},
			versions: "", warning: "port 4119 (console) could complete no TLS handshake under this policy: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 removed by java.security (java.security:1)",
		},
		{
			name: "unknown names are reported", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, FOOBAR, TLS1.2\n")}
			},
			versions: "TLSv1.2,TLSv1.3", warning: `"FOOBAR" has no effect here: it matches no protocol`,
		},
		{
			// JDK 17 ignores a protocol it does not spell so (jdk_test.go); so does tlsfleet, loudly.
			name: "a protocol the JDK does not spell so is ignored", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, TLS1.2, tlsv1.3\n")}
			},
			versions: "TLSv1.2", warning: `"TLS1.2" has no effect here: the JDK knows protocols only as SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 (in any case) and ignores "TLS1.2", and so does tlsfleet; write TLSv1.2`,
		},
		{
			name: "a wildcard removes nothing, as in JDK 17", listener: Listener{4119, RoleConsole},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, TLS_ECDHE_ECDSA_WITH_AES_256_*\n")}
			},
			versions: "TLSv1.2,TLSv1.3", suites: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
			warning: "JDK 17 has no wildcards in jdk.tls.disabledAlgorithms (JDK 24 added them)",
		},
		{
			name: "EC keySize < 384 on a P-256 certificate: served, TLS 1.3 off as in JDK 17", listener: Listener{4120, RoleAgentChannel},
			layers: func(t *testing.T) Layers {
				return Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, EC keySize < 384\n")}
			},
			versions: "TLSv1.2", removed: [][3]string{{"TLSv1.3", LayerDerived, ""}, {"secp256r1", LayerJava, "EC keySize < 384"}},
			warning: `own certificate key (EC 256) is below java.security entry "EC keySize < 384"`,
		},
		{
			name: "the JDK's default entries that do nothing here: one line", listener: Listener{4120, RoleAgentChannel},
			layers:   func(t *testing.T) Layers { return Layers{JavaSecurity: mustJava(t, DefaultJavaSecurityContent)} },
			versions: "TLSv1.2,TLSv1.3", warning: "6 entries of the JDK's default list have no effect here, as Go's crypto/tls has nothing they restrict: DTLSv1.0, DES, DH keySize < 1024, anon, NULL, ECDH",
			check: func(t *testing.T, p *Policy) {
				for _, w := range p.Warnings {
					if strings.Contains(w, "java.security entry") {
						t.Errorf("a default entry warned on its own: %s", w)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Effective(tt.listener, tt.layers(t))
			v, s := names(p)
			if v != tt.versions && !(tt.versions == "" && v == "") {
				t.Errorf("versions = %s, want %s", v, tt.versions)
			}
			if tt.suites != "" && s != tt.suites {
				t.Errorf("suites = %s\nwant     %s", s, tt.suites)
			}
			for _, r := range tt.removed {
				if !hasRemoval(p, r[0], r[1], r[2]) {
					t.Errorf("missing removal of %s by %s %q; removed: %+v", r[0], r[1], r[2], p.Removed)
				}
			}
			var ne []string
			for _, r := range p.NotEnforced {
				ne = append(ne, r.Item)
			}
			if strings.Join(ne, ",") != strings.Join(tt.notEnforced, ",") {
				t.Errorf("not enforced = %v, want %v", ne, tt.notEnforced)
			}
			if w := strings.Join(p.Warnings, "\n"); tt.warning != "" && !strings.Contains(w, tt.warning) {
				t.Errorf("warnings = %s\nwant one containing %q", w, tt.warning)
			}
			if (p.CertError != "") != tt.certErr {
				t.Errorf("CertError = %q", p.CertError)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

// Explain must give every registered suite, every version and every group a verdict.
func TestExplainCoversEverything(t *testing.T) {
	ex := Explain(Listener{4119, RoleConsole}, Layers{JavaSecurity: mustJava(t, pageLine)})
	nonSCSV := 0
	for _, s := range Registry() {
		if !s.SCSV {
			nonSCSV++
		}
	}
	if len(ex.Suites) != nonSCSV || len(ex.Versions) != len(AllVersions) || len(ex.Groups) != len(Groups()) {
		t.Fatalf("verdicts: %d suites (want %d), %d versions, %d groups", len(ex.Suites), nonSCSV, len(ex.Versions), len(ex.Groups))
	}
	for _, v := range ex.Suites {
		if !v.Allowed && len(v.By) == 0 {
			t.Errorf("%s removed without a reason", v.Item)
		}
	}
	if len(ex.Entries) != 9 {
		t.Errorf("%d entry effects, want 9 (one per entry of the page's line)", len(ex.Entries))
	}
}

// Effective is a pure function: same layers, same answer.
func TestEffectiveIsDeterministic(t *testing.T) {
	l := Layers{JavaSecurity: mustJava(t, pageLine), Config: mustConf(t, "protocols=TLSv1.2\n")}
	a, b := Effective(Listener{4119, RoleConsole}, l), Effective(Listener{4119, RoleConsole}, l)
	av, as := names(a)
	bv, bs := names(b)
	if av != bv || as != bs || len(a.Removed) != len(b.Removed) {
		t.Fatal("two calls disagree")
	}
}

// Only entries that can reach a TLS client's chain become peer rules on mutual-TLS ports.
func TestPeerRulesFollowUsage(t *testing.T) {
	js := mustJava(t, "jdk.tls.disabledAlgorithms=SHA1withRSA usage TLSServer, MD5withRSA usage TLSClient, rsa_pkcs1_sha1 usage HandshakeSignature, SHA224withRSA usage CertificateSignature, RSA keySize < 2048, DH keySize < 2048\n")
	p := Effective(Listener{4120, RoleAgentChannel}, Layers{JavaSecurity: js})
	var got []string
	for _, e := range p.PeerRules {
		got = append(got, e.Text)
	}
	want := "MD5withRSA usage TLSClient|SHA224withRSA usage CertificateSignature|RSA keySize < 2048"
	if strings.Join(got, "|") != want {
		t.Errorf("peer rules = %q\nwant %q", strings.Join(got, "|"), want)
	}
}
