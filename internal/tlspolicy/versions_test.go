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
