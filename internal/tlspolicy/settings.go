package tlspolicy

import (
	"fmt"
	"strings"
)

// Setting names of the fleet-wide settings layer, as dsm_c changesetting spells them.
const (
	SettingRelayMinimum   = "settings.configuration.restrictRelayMinimumTLSProtocol"
	SettingAgentMinimum   = "settings.configuration.MinimumTLSProtocolNewNode"
	SettingManagerMinimum = "settings.configuration.restrictManagerMinimumTLSProtocol"
	SettingStrongCiphers  = "settings.configuration.enableStrongCiphers"
)

// SettingScope says where a TLS setting takes effect, in the words `tlsfleet policy`, dsm_c changesetting
// and the REST API use; "" for a setting that is not part of the TLS policy.
func SettingScope(name string) string {
	switch name {
	case SettingStrongCiphers:
		return "relays' port 4122 and agents' port 4118, through their policy; not the Manager's ports 4119 and 4120 (restrict those with java.security, or with ciphers= in configuration.properties for 4119)"
	case SettingRelayMinimum:
		return "relays' port 4122, through their policy"
	case SettingAgentMinimum:
		return "agents' port 4118, through their policy: the policy a newly activated agent or relay starts with, and the one agents already activated get with their next policy"
	case SettingManagerMinimum:
		return "the Manager's ports 4119 and 4120, at once (no policy is sent), on top of java.security"
	}
	return ""
}

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
	for _, m := range s.minimums() {
		if !m.v.Served() {
			return fmt.Errorf("%s: %s is not a version tlsfleet serves; use one of %s", m.name, *m.v, strings.Join(ServedVersionNames(), ", "))
		}
	}
	return nil
}

type minimumField struct {
	name string
	v    *Version
	def  Version
}

// minimums lists the per-role minimums of s (pointers into s) with their setting names and defaults.
func (s *Settings) minimums() []minimumField {
	d := DefaultSettings()
	return []minimumField{
		{SettingManagerMinimum, &s.ManagerMinimum, d.ManagerMinimum},
		{SettingRelayMinimum, &s.RelayMinimum, d.RelayMinimum},
		{SettingAgentMinimum, &s.AgentMinimum, d.AgentMinimum},
	}
}

// withDefaults fills each unset (zero) minimum with its default, and replaces an invalid one by its default
// with a warning, so that a partly filled Settings value never weakens a port by accident.
func (s Settings) withDefaults() (Settings, []string) {
	var warnings []string
	for _, m := range s.minimums() {
		switch {
		case *m.v == 0:
			*m.v = m.def
		case !m.v.Served():
			warnings = append(warnings, fmt.Sprintf("%s: %s is not a version tlsfleet serves; the default %s applies", m.name, *m.v, m.def))
			*m.v = m.def
		}
	}
	return s, warnings
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
