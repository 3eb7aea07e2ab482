package tlspolicy

import (
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr string
	}{
		{in: "TLSv1", want: TLSv1},
		{in: "TLSv1.0", want: TLSv1},
		{in: "tls1", want: TLSv1},
		{in: "TLS 1.0", want: TLSv1},
		{in: "TLSv1.1", want: TLSv1_1},
		{in: "tls1_1", want: TLSv1_1},
		{in: "TLSv1.2", want: TLSv1_2},
		{in: " tlsv1.2 ", want: TLSv1_2},
		{in: "TLS 1.2", want: TLSv1_2},
		{in: "VersionTLS12", want: TLSv1_2},
		{in: "TLSv1.3", want: TLSv1_3},
		{in: "tls1_3", want: TLSv1_3},
		{in: "SSLv3", want: SSLv3},
		{in: "TLSv1.5", wantErr: `"TLSv1.5" is not a protocol version; use one of SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3`},
		{in: "", wantErr: "is not a protocol version"},
		{in: "DTLSv1.0", wantErr: "is not a protocol version"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVersion(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseVersion(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseVersion(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if back, err := ParseVersion(got.String()); err != nil || back != got {
				t.Fatalf("round trip of %s failed: %v %v", got, back, err)
			}
		})
	}
	if s := Version(0x7f1c).String(); s != "0x7f1c" {
		t.Errorf("unknown version prints %q", s)
	}
}

// Every version has its canonical, nmap and prose spellings, and each of them parses back to it.
func TestVersionSpellings(t *testing.T) {
	tests := []struct {
		v                    Version
		canonical, scan, pro string
		served               bool
	}{
		{SSLv3, "SSLv3", "SSLv3", "SSLv3", false},
		{TLSv1, "TLSv1", "TLSv1.0", "TLS 1.0", true},
		{TLSv1_1, "TLSv1.1", "TLSv1.1", "TLS 1.1", true},
		{TLSv1_2, "TLSv1.2", "TLSv1.2", "TLS 1.2", true},
		{TLSv1_3, "TLSv1.3", "TLSv1.3", "TLS 1.3", true},
		{Version(0x7f1c), "0x7f1c", "0x7f1c", "0x7f1c", false},
	}
	for _, tt := range tests {
		t.Run(tt.canonical, func(t *testing.T) {
			if got := tt.v.String(); got != tt.canonical {
				t.Errorf("String() = %q, want %q", got, tt.canonical)
			}
			if got := tt.v.ScanName(); got != tt.scan {
				t.Errorf("ScanName() = %q, want %q", got, tt.scan)
			}
			if got := tt.v.Prose(); got != tt.pro {
				t.Errorf("Prose() = %q, want %q", got, tt.pro)
			}
			if got := tt.v.Served(); got != tt.served {
				t.Errorf("Served() = %v, want %v", got, tt.served)
			}
			if !tt.v.Known() {
				return
			}
			for _, s := range []string{tt.canonical, tt.scan, tt.pro} {
				if back, err := ParseVersion(s); err != nil || back != tt.v {
					t.Errorf("ParseVersion(%q) = %v, %v; want %v", s, back, err, tt.v)
				}
			}
		})
	}
	if got, want := strings.Join(ServedVersionNames(), ","), "TLSv1,TLSv1.1,TLSv1.2,TLSv1.3"; got != want {
		t.Errorf("ServedVersionNames() = %s, want %s", got, want)
	}
	if got, want := strings.Join(VersionNames(), ","), "SSLv3,TLSv1,TLSv1.1,TLSv1.2,TLSv1.3"; got != want {
		t.Errorf("VersionNames() = %s, want %s", got, want)
	}
}

func TestListenerForPort(t *testing.T) {
	install := []Listener{{24119, RoleConsole}, {24120, RoleAgentChannel}}
	tests := []struct {
		port    int
		manager []Listener
		want    Role
		wantErr string
	}{
		{PortConsole, nil, RoleConsole, ""},
		{PortAgentChannel, nil, RoleAgentChannel, ""},
		{PortRelay, nil, RoleRelay, ""},
		{PortAgent, nil, RoleAgent, ""},
		{24119, install, RoleConsole, ""},
		{24120, install, RoleAgentChannel, ""},
		{PortRelay, install, RoleRelay, ""},
		{443, nil, "", "port 443 is not a port of this install; use 4119 (console), 4120 (agent-channel), 4122 (relay), 4118 (agent)"},
		{4119, install, "", "port 4119 is not a port of this install; use 24119 (console), 24120 (agent-channel), 4122 (relay), 4118 (agent)"},
	}
	for _, tt := range tests {
		l, err := ListenerForPort(tt.port, tt.manager)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ListenerForPort(%d) error = %v, want %q", tt.port, err, tt.wantErr)
			}
			continue
		}
		if err != nil || l != (Listener{tt.port, tt.want}) {
			t.Errorf("ListenerForPort(%d) = %+v, %v; want role %s", tt.port, l, err, tt.want)
		}
	}
}
