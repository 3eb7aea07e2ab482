package fleetapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

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
