package tlspolicy

import "fmt"

// Setting names of the fleet-wide settings layer, as dsm_c changesetting spells them.
const (
	SettingRelayMinimum   = "settings.configuration.restrictRelayMinimumTLSProtocol"
	SettingAgentMinimum   = "settings.configuration.MinimumTLSProtocolNewNode"
	SettingManagerMinimum = "settings.configuration.restrictManagerMinimumTLSProtocol"
	SettingStrongCiphers  = "settings.configuration.enableStrongCiphers"
)

// Settings is the database layer of the policy: fleet-wide values that dsm_c changesetting writes. A minimum
// below TLSv1.2 is how an operator opts a role into early TLS; it also lets the legacy suites that early-TLS
// clients need (RSA key exchange, 3DES) onto the role's ports.
type Settings struct {
	// ManagerMinimum restricts the Manager's ports (console and agent channel). Its default, TLSv1, restricts
	// nothing: on the Manager, java.security is what enforces TLS 1.2, exactly as on the page.
	ManagerMinimum Version
	// RelayMinimum is restrictRelayMinimumTLSProtocol, applied to relays' port 4122. Default TLSv1.2.
	RelayMinimum Version
	// AgentMinimum is MinimumTLSProtocolNewNode, applied to agents' port 4118. Default TLSv1.2.
	AgentMinimum Version
	// StrongCiphers is enableStrongCiphers: relays and agents keep only ECDHE + AEAD suites.
	StrongCiphers bool
}

// DefaultSettings returns the settings of a new install: TLS 1.2+ on relays and agents, java.security in
// charge of the Manager's ports, Go's secure suites.
func DefaultSettings() Settings {
	return Settings{ManagerMinimum: TLSv1, RelayMinimum: TLSv1_2, AgentMinimum: TLSv1_2}
}

// Validate checks that every minimum is a TLS version tlsfleet can serve.
func (s Settings) Validate() error {
	for _, m := range []struct {
		name string
		v    Version
	}{{SettingManagerMinimum, s.ManagerMinimum}, {SettingRelayMinimum, s.RelayMinimum}, {SettingAgentMinimum, s.AgentMinimum}} {
		if m.v < TLSv1 || m.v > TLSv1_3 {
			return fmt.Errorf("%s: %s is not a version tlsfleet serves; use one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3", m.name, m.v)
		}
	}
	return nil
}

// minimumFor returns the setting that restricts a role, and its name.
func (s Settings) minimumFor(r Role) (Version, string) {
	switch r {
	case RoleConsole, RoleAgentChannel:
		return s.ManagerMinimum, SettingManagerMinimum
	case RoleRelay:
		return s.RelayMinimum, SettingRelayMinimum
	case RoleAgent:
		return s.AgentMinimum, SettingAgentMinimum
	}
	return TLSv1_2, ""
}
