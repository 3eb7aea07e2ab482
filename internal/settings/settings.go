// Package settings is the registry of the Manager's fleet-wide settings: each name that
// `dsm_c -action changesetting` accepts, with its type, allowed values, default and description, and the
// translation of stored values into the TLS policy engine's settings layer.
package settings

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"tlsfleet/internal/tlspolicy"
)

// Kind is a setting's value type.
type Kind string

// Kinds of settings.
const (
	Enum Kind = "enum"
	Bool Kind = "bool"
	Int  Kind = "int"
)

// Setting describes one setting.
type Setting struct {
	Name        string   `json:"name"`
	Kind        Kind     `json:"type"`
	Allowed     []string `json:"allowed,omitempty"` // Enum: the values, in their canonical spelling
	Min, Max    int      `json:"-"`                 // Int: the range
	Unit        string   `json:"unit,omitempty"`
	Default     string   `json:"default"`
	Description string   `json:"description"`
	// Applies says where a TLS setting takes effect (tlspolicy.SettingScope); changesetting prints it.
	Applies string `json:"applies,omitempty"`
}

// tlsVersions are the values of the minimum-TLS settings: the versions a tlsfleet listener can serve, in
// tlspolicy's canonical spelling; defaults are tlspolicy's.
var (
	tlsVersions     = tlspolicy.ServedVersionNames()
	defaultMinimums = tlspolicy.DefaultSettings()
)

// Names of the settings.
const (
	RelayMinimumTLS     = tlspolicy.SettingRelayMinimum
	StrongCiphers       = tlspolicy.SettingStrongCiphers
	NewNodeMinimumTLS   = tlspolicy.SettingAgentMinimum
	ManagerMinimumTLS   = tlspolicy.SettingManagerMinimum
	HeartbeatPeriod     = "settings.configuration.defaultHeartbeatPeriod"
	AutoSendPolicy      = "settings.configuration.automaticallySendPolicy"
	Direction           = "settings.configuration.communicationDirection"
	HeartbeatSeconds    = "settings.configuration.heartbeatPeriodSeconds"
	settingsNamePrefix  = "settings.configuration."
	maxHeartbeatMinutes = 24 * 60
)

// Registry lists every setting, in the order viewsetting prints them.
var Registry = []Setting{
	{Name: RelayMinimumTLS, Kind: Enum, Allowed: tlsVersions, Default: defaultMinimums.RelayMinimum.String(),
		Description: "oldest TLS version relays accept on port 4122 (the page's restrictRelayMinimumTLSProtocol)",
		Applies:     tlspolicy.SettingScope(RelayMinimumTLS)},
	{Name: StrongCiphers, Kind: Bool, Allowed: []string{"true", "false"}, Default: "false",
		Description: "relays and agents keep only ECDHE suites with AEAD ciphers (not the Manager's own ports)",
		Applies:     tlspolicy.SettingScope(StrongCiphers)},
	{Name: NewNodeMinimumTLS, Kind: Enum, Allowed: tlsVersions, Default: defaultMinimums.AgentMinimum.String(),
		Description: "oldest TLS version in the policy of newly activated nodes (the product's strong-cipher script sets TLSv1.2): agents accept it on port 4118",
		Applies:     tlspolicy.SettingScope(NewNodeMinimumTLS)},
	{Name: ManagerMinimumTLS, Kind: Enum, Allowed: tlsVersions, Default: defaultMinimums.ManagerMinimum.String(),
		Description: "oldest TLS version the Manager's ports accept on top of java.security (TLSv1 leaves java.security in charge)",
		Applies:     tlspolicy.SettingScope(ManagerMinimumTLS)},
	{Name: HeartbeatPeriod, Kind: Int, Min: 1, Max: maxHeartbeatMinutes, Unit: "minutes", Default: "10",
		Description: "how often agents check in with the Manager"},
	{Name: AutoSendPolicy, Kind: Bool, Allowed: []string{"true", "false"}, Default: "true",
		Description: "send the changed policy to agents and relays by itself after a settings change"},
	{Name: HeartbeatSeconds, Kind: Int, Min: 0, Max: 86400, Unit: "seconds", Default: "0",
		Description: "agents' heartbeat period in seconds, overriding defaultHeartbeatPeriod when not 0 (tests and demonstrations; `tlsfleet manager --heartbeat-seconds N` sets it)"},
	{Name: Direction, Kind: Enum, Allowed: []string{"bidirectional", "agent-initiated", "manager-initiated"}, Default: "bidirectional",
		Description: "who opens connections: both (agents heartbeat to 4120, the Manager calls 4118), agents only (no 4118 listener), or the Manager only (it polls 4118)"},
}

// Lookup finds a setting by its exact name.
func Lookup(name string) (Setting, bool) {
	i := slices.IndexFunc(Registry, func(s Setting) bool { return s.Name == name })
	if i < 0 {
		return Setting{}, false
	}
	return Registry[i], true
}

// Names returns every setting name.
func Names() []string {
	out := make([]string, len(Registry))
	for i, s := range Registry {
		out[i] = s.Name
	}
	return out
}

// UnknownNameError says a name is not a setting, and which ones exist.
func UnknownNameError(name string) error {
	hint := ""
	for _, s := range Registry {
		if strings.EqualFold(s.Name, name) || strings.EqualFold(strings.TrimPrefix(s.Name, settingsNamePrefix), name) {
			hint = fmt.Sprintf(" (did you mean %s?)", s.Name)
		}
	}
	return fmt.Errorf("%q is not a setting%s; the settings are: %s", name, hint, strings.Join(Names(), ", "))
}

// Normalize checks a value for the setting and returns its canonical spelling ("tlsv1.2" → "TLSv1.2",
// "TRUE" → "true", " 15 " → "15").
func (s Setting) Normalize(value string) (string, error) {
	v := strings.TrimSpace(value)
	switch s.Kind {
	case Enum, Bool:
		for _, a := range s.Allowed {
			if strings.EqualFold(a, v) {
				return a, nil
			}
		}
		return "", fmt.Errorf("%s: %q is not allowed; use one of %s", s.Name, value, strings.Join(s.Allowed, ", "))
	case Int:
		n, err := strconv.Atoi(v)
		if err != nil || n < s.Min || n > s.Max {
			return "", fmt.Errorf("%s: %q is not allowed; use a whole number of %s from %d to %d", s.Name, value, s.Unit, s.Min, s.Max)
		}
		return strconv.Itoa(n), nil
	}
	return "", fmt.Errorf("%s: unknown type %s", s.Name, s.Kind)
}

// Validate checks a name and a value together: the error names the offending one and what is allowed.
func Validate(name, value string) (string, error) {
	s, ok := Lookup(name)
	if !ok {
		return "", UnknownNameError(name)
	}
	return s.Normalize(value)
}

// Values are stored settings by name; a missing name has its default.
type Values map[string]string

// Get returns a setting's value, or its default.
func (v Values) Get(name string) string {
	if x, ok := v[name]; ok {
		return x
	}
	s, _ := Lookup(name)
	return s.Default
}

// Policy turns the stored values into the policy engine's settings layer.
func (v Values) Policy() tlspolicy.Settings {
	ver := func(name string) tlspolicy.Version {
		x, err := tlspolicy.ParseVersion(v.Get(name))
		if err != nil {
			return 0 // the policy engine puts the default back, with a warning
		}
		return x
	}
	return tlspolicy.Settings{
		ManagerMinimum: ver(ManagerMinimumTLS),
		RelayMinimum:   ver(RelayMinimumTLS),
		AgentMinimum:   ver(NewNodeMinimumTLS),
		StrongCiphers:  v.Get(StrongCiphers) == "true",
	}
}
