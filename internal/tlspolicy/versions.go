package tlspolicy

import (
	"fmt"
	"slices"
	"strings"
)

// Version is a TLS (or SSL 3.0) protocol version as it appears on the wire.
type Version uint16

// The protocol versions tlsfleet knows. SSLv3 is named so that it can be parsed, listed and scanned; no
// listener of ours ever accepts it.
const (
	SSLv3   Version = 0x0300
	TLSv1   Version = 0x0301
	TLSv1_1 Version = 0x0302
	TLSv1_2 Version = 0x0303
	TLSv1_3 Version = 0x0304
)

// AllVersions lists every known version, oldest first.
var AllVersions = []Version{SSLv3, TLSv1, TLSv1_1, TLSv1_2, TLSv1_3}

// ServedVersions lists the versions a tlsfleet listener can accept, oldest first: the values a minimum
// setting, or a policy's minimum, may take.
var ServedVersions = []Version{TLSv1, TLSv1_1, TLSv1_2, TLSv1_3}

// versionName is one row of versionNames.
type versionName struct {
	v           Version
	scan, prose string
	names       []string
}

// versionNames is the one table of version names in tlsfleet; settings, fleetapi, the scanner and the
// agent derive theirs from it. names[0] is the canonical (JDK) spelling used in java.security,
// configuration.properties, settings, policies and every report; the others are what operators paste
// from OpenSSL (`-tls1_2`, `TLSv1.2`), IANA and nmap ("TLS 1.2"), and Go ("VersionTLS12"). scan is
// nmap's and OpenSSL's report spelling ("TLSv1.0"), which the scanner prints; prose is the spelling of
// running text, IANA's and Go's tls.VersionName ("TLS 1.0"). Both are among names.
var versionNames = []versionName{
	{SSLv3, "SSLv3", "SSLv3", []string{"SSLv3", "SSL3", "SSLv3.0", "SSL 3.0", "ssl3", "VersionSSL30"}},
	{TLSv1, "TLSv1.0", "TLS 1.0", []string{"TLSv1", "TLSv1.0", "TLS1", "TLS1.0", "TLS 1.0", "TLS 1", "tls1", "tls1_0", "TLSv1_0", "VersionTLS10"}},
	{TLSv1_1, "TLSv1.1", "TLS 1.1", []string{"TLSv1.1", "TLS1.1", "TLS 1.1", "tls1_1", "TLSv1_1", "VersionTLS11"}},
	{TLSv1_2, "TLSv1.2", "TLS 1.2", []string{"TLSv1.2", "TLS1.2", "TLS 1.2", "tls1_2", "TLSv1_2", "VersionTLS12"}},
	{TLSv1_3, "TLSv1.3", "TLS 1.3", []string{"TLSv1.3", "TLS1.3", "TLS 1.3", "tls1_3", "TLSv1_3", "VersionTLS13"}},
}

// String returns the JDK spelling ("TLSv1.2"), or a hex form for unknown values.
func (v Version) String() string { return v.name(func(n versionName) string { return n.names[0] }) }

// ScanName returns nmap's and OpenSSL's spelling ("TLSv1.0", "TLSv1.2"), which scan reports use, or a
// hex form for unknown values.
func (v Version) ScanName() string { return v.name(func(n versionName) string { return n.scan }) }

// Prose returns the spelling of running text, IANA's and Go's tls.VersionName ("TLS 1.0"; SSLv3 stays
// "SSLv3"), or a hex form for unknown values.
func (v Version) Prose() string { return v.name(func(n versionName) string { return n.prose }) }

// Served reports whether v is one of ServedVersions.
func (v Version) Served() bool { return slices.Contains(ServedVersions, v) }

// name returns the spelling pick chooses from v's row, or a hex form for unknown values.
func (v Version) name(pick func(versionName) string) string {
	for _, e := range versionNames {
		if e.v == v {
			return pick(e)
		}
	}
	return fmt.Sprintf("0x%04x", uint16(v))
}

// Known reports whether v is one of AllVersions.
func (v Version) Known() bool {
	for _, e := range versionNames {
		if e.v == v {
			return true
		}
	}
	return false
}

// ParseVersion accepts the JDK, OpenSSL, IANA and Go spellings of a protocol version, case-insensitively.
func ParseVersion(s string) (Version, error) {
	t := strings.TrimSpace(s)
	for _, e := range versionNames {
		for _, n := range e.names {
			if strings.EqualFold(t, n) {
				return e.v, nil
			}
		}
	}
	return 0, fmt.Errorf("%q is not a protocol version; use one of %s", s, strings.Join(VersionNames(), ", "))
}

// VersionNames returns the canonical names of AllVersions, oldest first.
func VersionNames() []string { return versionStrings(AllVersions) }

// ServedVersionNames returns the canonical names of ServedVersions, oldest first.
func ServedVersionNames() []string { return versionStrings(ServedVersions) }

// versionStrings returns the canonical names of vs.
func versionStrings(vs []Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}
