package tlspolicy

import (
	"strings"
	"testing"
)

func TestParseConfigProperties(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		protocols string // comma-joined; "-" for absent
		ciphers   string // comma-joined IANA names; "-" for absent
		warn      string
		wantErr   string
	}{
		{name: "page enforce", in: "serviceName=tlsfleet Manager\nprotocols=TLSv1.2\n", protocols: "TLSv1.2", ciphers: "-"},
		{name: "page undo", in: "serviceName=x\nprotocols=TLSv1,TLSv1.1,TLSv1.2\n", protocols: "TLSv1,TLSv1.1,TLSv1.2", ciphers: "-"},
		{name: "spaces around =", in: "protocols = TLSv1.2, TLSv1.3\n", protocols: "TLSv1.2,TLSv1.3", ciphers: "-"},
		{name: "strong ciphers IANA", in: "ciphers=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
			protocols: "-", ciphers: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
		{name: "OpenSSL names with colons", in: "ciphers=ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256\n",
			protocols: "-", ciphers: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
		{name: "suite Go lacks warns", in: "ciphers=TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
			protocols: "-", ciphers: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", warn: "does not implement"},
		{name: "other keys kept", in: "port=4119\ndatabase.type=sqlite\n", protocols: "-", ciphers: "-"},
		{name: "SSLv3 warns", in: "protocols=SSLv3,TLSv1.2\n", protocols: "SSLv3,TLSv1.2", ciphers: "-", warn: "never accepts"},
		{name: "bad protocol", in: "a=1\nprotocols=TLSv1.2,TLSv1.4\n", wantErr: `configuration.properties:2: protocols=TLSv1.2,TLSv1.4: "TLSv1.4" is not a protocol version; use one of`},
		{name: "empty protocols", in: "protocols=\n", wantErr: "protocols= is empty"},
		{name: "bad cipher", in: "ciphers=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,RC5\n", wantErr: `configuration.properties:1: ciphers=: "RC5" is not a cipher suite; use IANA names`},
		{name: "SCSV is no suite", in: "ciphers=TLS_FALLBACK_SCSV\n", wantErr: "signalling value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cp, err := ParseConfigProperties("configuration.properties", []byte(tt.in))
			if wantError(t, err, tt.wantErr) {
				return
			}
			gotP := "-"
			if cp.Protocols != nil {
				var names []string
				for _, v := range cp.Protocols {
					names = append(names, v.String())
				}
				gotP = strings.Join(names, ",")
			}
			gotC := "-"
			if cp.Ciphers != nil {
				var names []string
				for _, s := range cp.Ciphers {
					names = append(names, s.Name)
				}
				gotC = strings.Join(names, ",")
			}
			if gotP != tt.protocols || gotC != tt.ciphers {
				t.Errorf("protocols=%s ciphers=%s; want %s and %s", gotP, gotC, tt.protocols, tt.ciphers)
			}
			if w := strings.Join(cp.Warnings, "\n"); tt.warn == "" && w != "" || !strings.Contains(w, tt.warn) {
				t.Errorf("warnings = %q, want %q", w, tt.warn)
			}
		})
	}
	cp, _ := ParseConfigProperties("c", []byte("port=4119\n"))
	if p, ok := cp.Props.Get("port"); !ok || p.Value != "4119" {
		t.Error("other keys must be kept for the Manager")
	}
}
