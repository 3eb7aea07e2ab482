package fleetapi

import (
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
