package fleetapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestPolicyValidateMinimum(t *testing.T) {
	tests := []struct {
		agent, relay string // relay "" means no relay role
		wantErr      string
	}{
		{agent: "TLSv1.2"},
		{agent: "TLSv1", relay: "TLSv1.3"},
		{agent: "TLSv1.1", relay: "TLSv1.2"},
		{agent: "TLSv1.0", wantErr: `policy agent minimum "TLSv1.0": use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3`},
		{agent: "tlsv1.2", wantErr: `policy agent minimum "tlsv1.2": use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3`},
		{agent: "", wantErr: `policy agent minimum "": use`},
		{agent: "TLSv1.2", relay: "SSLv3", wantErr: `policy relay minimum "SSLv3": use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3`},
	}
	for _, tt := range tests {
		t.Run(tt.agent+"/"+tt.relay, func(t *testing.T) {
			p := &Policy{Direction: Bidirectional, HeartbeatSeconds: DefaultHeartbeatS, Agent: TLSSettings{MinVersion: tt.agent}}
			if tt.relay != "" {
				p.Relay = &RelayPolicy{Port: 4122, TLS: TLSSettings{MinVersion: tt.relay}}
			}
			err := p.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// Handshake counts are optional in a heartbeat: absent, the body is what older Managers know; present,
// they round-trip with their wire names.
func TestHeartbeatHandshakes(t *testing.T) {
	hc := HandshakeCount{Port: 4122, ClientIP: "10.0.0.1", SNI: "other", AgentGUID: "g", OfferedMax: "TLSv1.3", Version: "TLSv1.3",
		Suite: "TLS_AES_128_GCM_SHA256", Outcome: "accepted", Count: 3, FirstSeen: "2026-12-01T00:00:00Z", LastSeen: "2026-12-01T00:01:00Z"}
	tests := []struct {
		name   string
		hb     Heartbeat
		has    []string
		hasNot []string
	}{
		{name: "none", hb: Heartbeat{Seq: 1}, hasNot: []string{"handshakes"}},
		{name: "counts", hb: Heartbeat{Seq: 2, Handshakes: []HandshakeCount{hc}, HandshakesDropped: 7},
			has: []string{`"handshakes":[{"port":4122,"client_ip":"10.0.0.1"`, `"cipher_suite":"TLS_AES_128_GCM_SHA256"`, `"handshakes_dropped":7`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.hb)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.has {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s lacks %s", b, w)
				}
			}
			for _, w := range tt.hasNot {
				if strings.Contains(string(b), w) {
					t.Errorf("%s has %s", b, w)
				}
			}
			var back Heartbeat
			if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, tt.hb) {
				t.Errorf("round trip: %+v, %v; want %+v", back, err, tt.hb)
			}
		})
	}
}
