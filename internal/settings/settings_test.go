package settings

import (
	"strings"
	"testing"

	"tlsfleet/internal/tlspolicy"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name, value, want, wantErr string
	}{
		{RelayMinimumTLS, "TLSv1.2", "TLSv1.2", ""},
		{RelayMinimumTLS, "tlsv1.1", "TLSv1.1", ""},
		{RelayMinimumTLS, "TLSv1.0", "", `"TLSv1.0" is not allowed; use one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3`},
		{RelayMinimumTLS, "SSLv3", "", "use one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"},
		// The product's strong-cipher script: settings.configuration.MinimumTLSProtocolNewNode=TLSv1.2.
		{"settings.configuration.MinimumTLSProtocolNewNode", "TLSv1.2", "TLSv1.2", ""},
		{"MinimumTLSProtocolNewNode", "TLSv1.2", "", "did you mean settings.configuration.MinimumTLSProtocolNewNode?"},
		{StrongCiphers, "TRUE", "true", ""},
		{StrongCiphers, "yes", "", "use one of true, false"},
		{HeartbeatPeriod, " 15 ", "15", ""},
		{HeartbeatPeriod, "0", "", "use a whole number of minutes from 1 to 1440"},
		{HeartbeatPeriod, "ten", "", "whole number"},
		{"settings.configuration.restrictRelayMinimumTLS", "TLSv1.2", "", `is not a setting; the settings are: settings.configuration.restrictRelayMinimumTLSProtocol`},
		{"restrictRelayMinimumTLSProtocol", "TLSv1.2", "", "did you mean settings.configuration.restrictRelayMinimumTLSProtocol?"},
	}
	for _, tt := range tests {
		got, err := Validate(tt.name, tt.value)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate(%q, %q) error = %v, want %q", tt.name, tt.value, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Validate(%q, %q) = %q, %v; want %q", tt.name, tt.value, got, err, tt.want)
		}
	}
}

func TestDefaultsAreValidAndPolicy(t *testing.T) {
	for _, s := range Registry {
		if v, err := s.Normalize(s.Default); err != nil || v != s.Default {
			t.Errorf("%s: default %q does not validate: %v", s.Name, s.Default, err)
		}
	}
	p := Values{}.Policy()
	if p != tlspolicy.DefaultSettings() {
		t.Errorf("defaults give %+v, want the policy engine's defaults %+v", p, tlspolicy.DefaultSettings())
	}
	p = Values{RelayMinimumTLS: "TLSv1", StrongCiphers: "true"}.Policy()
	if p.RelayMinimum != tlspolicy.TLSv1 || !p.StrongCiphers {
		t.Errorf("stored values give %+v", p)
	}
}

// Every TLS setting says where it takes effect; enableStrongCiphers says it leaves the Manager's ports alone.
func TestTLSSettingsSayWhereTheyApply(t *testing.T) {
	for _, name := range []string{RelayMinimumTLS, StrongCiphers, NewNodeMinimumTLS, ManagerMinimumTLS} {
		if s, _ := Lookup(name); s.Applies == "" {
			t.Errorf("%s does not say where it applies", name)
		}
	}
	if s, _ := Lookup(StrongCiphers); !strings.Contains(s.Applies, "not the Manager's ports 4119 and 4120") {
		t.Errorf("%s applies: %q", StrongCiphers, s.Applies)
	}
	if s, _ := Lookup(NewNodeMinimumTLS); !strings.Contains(s.Applies, "newly activated") {
		t.Errorf("%s applies: %q", NewNodeMinimumTLS, s.Applies)
	}
}
