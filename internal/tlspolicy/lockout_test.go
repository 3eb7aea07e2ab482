package tlspolicy

import (
	"strings"
	"testing"
)

func TestLockOut(t *testing.T) {
	strong := "ciphers=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
	tests := []struct {
		name     string
		java     string // "" = the default java.security
		conf     string
		cert     CertInfo
		listener Listener
		want     []string // substrings of the error; nil = no lock-out
	}{
		{name: "the page's strong ciphers on an EC install, TLS 1.3 off", conf: "protocols=TLSv1.2\n" + strong, listener: Listener{24119, RoleConsole},
			want: []string{
				"port 24119 (console) could complete no TLS handshake",
				"TLSv1.2 has no cipher suite left (TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: need an RSA certificate and this listener's is EC 256)",
				"TLSv1.3 removed by configuration.properties \"protocols=TLSv1.2\" (configuration.properties:1)",
				"write ciphers=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (the ECDSA twins",
				SettingStrongCiphers,
				"allow TLS 1.3 in configuration.properties:1: protocols=TLSv1.2,TLSv1.3",
			}},
		{name: "the page's strong ciphers on an RSA install", conf: "protocols=TLSv1.2\n" + strong, cert: rsaCertInfo, listener: Listener{4119, RoleConsole}},
		{name: "strong ciphers with TLS 1.3 on: TLS 1.3 clients still connect", conf: strong, listener: Listener{4119, RoleConsole}},
		{name: "ciphers= does not reach the agent channel", conf: "protocols=TLSv1.2\n" + strong, listener: Listener{4120, RoleAgentChannel}},
		{name: "every version disabled", java: "jdk.tls.disabledAlgorithms=TLSv1, TLSv1.1, TLSv1.2, TLSv1.3\n", listener: Listener{4120, RoleAgentChannel},
			want: []string{"TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 removed by java.security (java.security:1)", "allow at least TLSv1.2"}},
		{name: "a bare RSA entry forbids the RSA certificate", java: "jdk.tls.disabledAlgorithms=RSA\n", cert: rsaCertInfo, listener: Listener{4120, RoleAgentChannel},
			want: []string{`certificate key (RSA 2048) is forbidden by java.security entry "RSA"`}},
		{name: "SHA1 and SHA256 leave TLS 1.2's SHA384 suites", java: "jdk.tls.disabledAlgorithms=SHA1, SHA256\n", listener: Listener{4120, RoleAgentChannel}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers := Layers{Cert: tt.cert}
			if tt.java != "" {
				layers.JavaSecurity = mustJava(t, tt.java)
			}
			if tt.conf != "" {
				layers.Config = mustConf(t, tt.conf)
			}
			ex := Explain(tt.listener, layers)
			err := ex.LockOut()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("LockOut = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("LockOut = nil, want an error (versions %v)", ex.Policy.Versions)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LockOut =\n%v\nwant it to contain %q", err, w)
				}
			}
			if !strings.Contains(strings.Join(ex.Policy.Warnings, "\n"), err.Error()) {
				t.Errorf("the policy's warnings do not carry the lock-out text:\n%s", strings.Join(ex.Policy.Warnings, "\n"))
			}
		})
	}
}

// The warning once said "only TLS 1.3 clients can connect" on a port where TLS 1.3 was off.
func TestNoTLS13WarningWhenTLS13IsOff(t *testing.T) {
	p := Effective(Listener{4119, RoleConsole}, Layers{Config: mustConf(t, "protocols=TLSv1.2\nciphers=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n")})
	for _, w := range p.Warnings {
		if strings.Contains(w, "only TLS 1.3 clients") {
			t.Errorf("warning %q on a port without TLS 1.3", w)
		}
	}
}

func TestVersionWithoutSuitesIsNotAccepted(t *testing.T) {
	p := Effective(Listener{4120, RoleAgentChannel}, Layers{JavaSecurity: mustJava(t, "jdk.tls.disabledAlgorithms=SHA1, SHA256\n"), Cert: rsaCertInfo})
	if v, _ := names(p); v != "TLSv1.2,TLSv1.3" {
		t.Errorf("versions = %s, want TLSv1.2,TLSv1.3 (TLS 1.0 and 1.1 have only SHA-1 suites)", v)
	}
	if !hasRemoval(p, "TLSv1", LayerDerived, "") || !strings.Contains(strings.Join(p.Warnings, "\n"), "TLSv1 and TLSv1.1 not accepted on port 4120: no cipher suite they can negotiate is left") {
		t.Errorf("no removal or warning for TLSv1: %v", p.Warnings)
	}
}
