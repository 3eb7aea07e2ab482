package ops

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"tlsfleet/internal/fleetapi"
)

// What agents send: each rule names the field and the rule; what real agents send passes.
func TestCheckAgentInput(t *testing.T) {
	act := func(f func(*fleetapi.ActivateRequest)) fleetapi.ActivateRequest {
		r := fleetapi.ActivateRequest{Token: "act_x", CSR: "-----BEGIN CERTIFICATE REQUEST-----", Hostname: "web-01.example.com",
			Platform: "linux/amd64", AgentVersion: "1.0.0", TLSVersions: []string{"TLSv1.2", "TLSv1.3"}}
		f(&r)
		return r
	}
	hb := func(f func(*fleetapi.Heartbeat)) fleetapi.Heartbeat {
		h := fleetapi.Heartbeat{Seq: 1, Platform: "windows/amd64", AgentVersion: "20.0.1", TLSVersions: []string{"TLSv1", "TLSv1.1"},
			PolicyFingerprint: "0123456789abcdef0123456789abcdef", Listen: "[::]:4118", Relay: &fleetapi.RelayStatus{Listen: ":4122", Bundles: []string{strings.Repeat("a", 64)}}}
		f(&h)
		return h
	}
	for _, tt := range []struct {
		name  string
		check func() error
		field string // "" when valid
		want  string
	}{
		{"a real activation", func() error { return CheckActivation(act(func(*fleetapi.ActivateRequest) {})) }, "", ""},
		{"a non-ASCII host name", func() error {
			return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = "büro-pc" }))
		}, "", ""},
		{"no hostname", func() error { return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = "" })) }, "hostname", "needs hostname"},
		{"hostname with ESC", func() error {
			return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = "a\x1b]0;x\a" }))
		}, "hostname", "U+001B is not allowed"},
		{"hostname with NUL", func() error { return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = "a\x00" })) }, "hostname", "U+0000 is not allowed"},
		{"hostname with U+202E", func() error {
			return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = "a\u202eb" }))
		}, "hostname", "U+202E is not allowed"},
		{"hostname with a C1 control", func() error {
			return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = "a\u009bb" }))
		}, "hostname", "U+009B is not allowed"},
		{"hostname not UTF-8", func() error { return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = "a\xc3" })) }, "hostname", `"a\xc3" is not UTF-8 text`},
		{"hostname with U+FFFD", func() error {
			return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = "a\ufffd" }))
		}, "hostname", "is not UTF-8 text"},
		{"hostname with a slash", func() error { return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = "a/b" })) }, "hostname", `'/' is not allowed`},
		{"hostname over 253 bytes", func() error {
			return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.Hostname = strings.Repeat("é", 127) }))
		}, "hostname", "is 254 bytes long"},
		{"relay_group with a tab", func() error { return CheckActivation(act(func(r *fleetapi.ActivateRequest) { r.RelayGroup = "a\tb" })) }, "relay_group", "U+0009 is not allowed"},
		{"a real heartbeat", func() error { return CheckHeartbeat(hb(func(*fleetapi.Heartbeat) {})) }, "", ""},
		{"an empty heartbeat", func() error { return CheckHeartbeat(fleetapi.Heartbeat{}) }, "", ""},
		{"a 1 MB platform", func() error {
			return CheckHeartbeat(hb(func(h *fleetapi.Heartbeat) { h.Platform = strings.Repeat("p", 1<<20) }))
		}, "platform",
			"is 1048576 characters long; use printable characters, up to 64"},
		{"agent_version with ESC", func() error { return CheckHeartbeat(hb(func(h *fleetapi.Heartbeat) { h.AgentVersion = "\x1b[2J" })) }, "agent_version", "U+001B"},
		{"tls_versions not versions", func() error {
			return CheckHeartbeat(hb(func(h *fleetapi.Heartbeat) { h.TLSVersions = []string{"TLSv1.2", "x"} }))
		}, "tls_versions", `tls_versions[1] "x"`},
		{"policy_fingerprint with capitals", func() error { return CheckHeartbeat(hb(func(h *fleetapi.Heartbeat) { h.PolicyFingerprint = "ABC" })) }, "policy_fingerprint", "lowercase hex"},
		{"listen with a newline", func() error { return CheckHeartbeat(hb(func(h *fleetapi.Heartbeat) { h.Listen = ":4118\n" })) }, "listen", "U+000A"},
		{"relay listen too long", func() error {
			return CheckHeartbeat(hb(func(h *fleetapi.Heartbeat) { h.Relay.Listen = strings.Repeat("h", MaxListen+1) }))
		}, "relay.listen", "bytes long"},
		{"relay bundle not hex", func() error {
			return CheckHeartbeat(hb(func(h *fleetapi.Heartbeat) { h.Relay.Bundles = []string{"x"} }))
		}, "relay.bundles", "is not a SHA-256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check()
			if tt.field == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			ie, ok := AsInput(err)
			if !ok || ie.Field != tt.field || !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v (field %v), want an input error naming %s with %q", err, ie, tt.field, tt.want)
			}
			if len(err.Error()) > 400 {
				t.Errorf("the error repeats too much of the value: %d bytes", len(err.Error()))
			}
		})
	}
}

// Whatever JSON an agent sends, a heartbeat or activation that passes holds only bounded, printable
// text in the fields the Manager stores.
func FuzzCheckAgentInput(f *testing.F) {
	f.Add([]byte(`{"seq":1,"platform":"linux/amd64","agent_version":"1.0.0","tls_versions":["TLSv1.2"],"hostname":"web1","token":"t","csr":"c"}`))
	f.Add([]byte(`{"platform":"a\u202eb","hostname":"a\u001b","tls_versions":["x"]}`))
	f.Add([]byte("{\"hostname\":\"a\xff\",\"token\":\"t\",\"csr\":\"c\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		printable := func(field, v string, max int) {
			if len(v) > max || strings.ContainsFunc(v, func(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }) {
				t.Fatalf("%s %q passed", field, v)
			}
		}
		var hb fleetapi.Heartbeat
		if json.Unmarshal(b, &hb) == nil && CheckHeartbeat(hb) == nil {
			printable("platform", hb.Platform, 4*MaxAgentField)
			printable("agent_version", hb.AgentVersion, 4*MaxAgentField)
			printable("listen", hb.Listen, MaxListen)
			if len(hb.TLSVersions) > MaxTLSVersions {
				t.Fatalf("%d tls_versions passed", len(hb.TLSVersions))
			}
		}
		var ar fleetapi.ActivateRequest
		if json.Unmarshal(b, &ar) == nil && CheckActivation(ar) == nil {
			printable("hostname", ar.Hostname, MaxHostname)
			if strings.ContainsAny(ar.Hostname, " /") || ar.Hostname == "" {
				t.Fatalf("hostname %q passed", ar.Hostname)
			}
			printable("platform", ar.Platform, 4*MaxAgentField)
		}
	})
}
