package ops

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/tlspolicy"
)

// What agents send — the activation request and every heartbeat — comes from the network and ends up in
// the database, in listcomputers and in operators' terminals. These are its rules, in one place; the
// agent channel refuses a request that breaks one with a 400 that names the field and the rule, and
// stores nothing of it.

// Bounds of the fields agents report.
const (
	MaxHostname      = 253 // bytes, as a DNS name
	MaxAgentField    = 64  // characters: platform, agent_version, policy_id, relay_group
	MaxTLSVersions   = 8   // entries of tls_versions
	MaxListen        = 262 // bytes: HOST:PORT with the longest host name and brackets
	MaxFingerprint   = 64  // hex digits of policy_fingerprint
	MaxRelayBundles  = 10_000
	maxShownReported = 40 // bytes of a refused value an error message repeats
)

// CheckActivation validates an activation request's fields before anything is checked against the
// database or the token is looked at.
func CheckActivation(r fleetapi.ActivateRequest) error {
	for _, f := range []struct{ name, v string }{{"token", r.Token}, {"csr", r.CSR}, {"hostname", r.Hostname}} {
		if f.v == "" {
			return invalid(f.name, "the activation request needs {field} (token, csr and hostname are required)")
		}
	}
	if err := checkHostname(r.Hostname); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"platform", r.Platform}, {"agent_version", r.AgentVersion}, {"policy_id", r.PolicyID}, {"relay_group", r.RelayGroup}} {
		if err := checkReported(f.name, f.v, MaxAgentField); err != nil {
			return err
		}
	}
	return checkTLSVersions(r.TLSVersions)
}

// CheckHeartbeat validates a heartbeat's fields. The handshake counts are validated one by one when they
// are counted (telemetry.AddReported): a bad one, or one past fleetapi.MaxHandshakeCounts, is skipped,
// not fatal.
func CheckHeartbeat(hb fleetapi.Heartbeat) error {
	for _, f := range []struct{ name, v string }{{"platform", hb.Platform}, {"agent_version", hb.AgentVersion}} {
		if err := checkReported(f.name, f.v, MaxAgentField); err != nil {
			return err
		}
	}
	if err := checkTLSVersions(hb.TLSVersions); err != nil {
		return err
	}
	if fp := hb.PolicyFingerprint; len(fp) > MaxFingerprint || strings.Trim(fp, "0123456789abcdef") != "" {
		return invalid("policy_fingerprint", "{field} %s is not a policy fingerprint: up to %d lowercase hex digits", shown(fp), MaxFingerprint)
	}
	if err := checkListen("listen", hb.Listen); err != nil {
		return err
	}
	if hb.HandshakesDropped < 0 {
		return invalid("handshakes_dropped", "{field} %d is negative; it counts handshakes not reported", hb.HandshakesDropped)
	}
	if hb.Relay == nil {
		return nil
	}
	if err := checkListen("relay.listen", hb.Relay.Listen); err != nil {
		return err
	}
	if n := len(hb.Relay.Bundles); n > MaxRelayBundles {
		return invalid("relay.bundles", "{field} has %d entries, more than %d", n, MaxRelayBundles)
	}
	for i, b := range hb.Relay.Bundles {
		if len(b) != 64 || strings.Trim(b, "0123456789abcdef") != "" {
			return invalid("relay.bundles", "{field}[%d] %s is not a SHA-256 (64 lowercase hex digits)", i, shown(b))
		}
	}
	return nil
}

// checkHostname allows what host names are made of on every platform agents run on, and refuses what
// could disguise or break a line: control characters (NUL, ESC, C1), format characters (U+202E, the
// right-to-left override), invalid UTF-8, spaces and "/".
func checkHostname(h string) error {
	rule := fmt.Sprintf("a host name is printable characters without spaces or \"/\", up to %d bytes", MaxHostname)
	if len(h) > MaxHostname {
		return invalid("hostname", "{field} %s is %d bytes long; %s", shown(h), len(h), rule)
	}
	if err := checkText("hostname", h, rule); err != nil {
		return err
	}
	if i := strings.IndexAny(h, " /"); i >= 0 {
		return invalid("hostname", "{field} %s: %q is not allowed; %s", shown(h), h[i], rule)
	}
	return nil
}

// checkReported checks an optional free-text field: printable characters, up to max of them.
func checkReported(field, v string, max int) error {
	rule := fmt.Sprintf("use printable characters, up to %d", max)
	if n := utf8.RuneCountInString(v); n > max {
		return invalid(field, "{field} %s is %d characters long; %s", shown(v), n, rule)
	}
	return checkText(field, v, rule)
}

// checkText refuses invalid UTF-8 and characters that are not printable (unicode.IsPrint: letters,
// marks, numbers, punctuation, symbols and the ASCII space). U+FFFD counts as invalid UTF-8: it is what
// encoding/json makes of invalid bytes in a JSON string.
func checkText(field, v, rule string) error {
	if !utf8.ValidString(v) || strings.ContainsRune(v, utf8.RuneError) {
		return invalid(field, "{field} %s is not UTF-8 text; %s", shown(v), rule)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return invalid(field, "{field} %s: %U is not allowed; %s", shown(v), r, rule)
		}
	}
	return nil
}

func checkTLSVersions(vs []string) error {
	if len(vs) > MaxTLSVersions {
		return invalid("tls_versions", "{field} has %d entries; list at most %d protocol versions", len(vs), MaxTLSVersions)
	}
	for i, v := range vs {
		if _, err := tlspolicy.ParseVersion(v); err != nil || len(v) > 16 {
			return invalid("tls_versions", "{field}[%d] %s is not a protocol version; use %s", i, shown(v), strings.Join(tlspolicy.VersionNames(), ", "))
		}
	}
	return nil
}

// checkListen checks a reported listen address: "" or HOST:PORT of printable characters.
func checkListen(field, v string) error {
	rule := fmt.Sprintf("use HOST:PORT of printable characters, up to %d bytes", MaxListen)
	if len(v) > MaxListen {
		return invalid(field, "{field} %s is %d bytes long; %s", shown(v), len(v), rule)
	}
	return checkText(field, v, rule)
}

// shown quotes a refused value for an error message: escaped, and cut when long (a refused value may be
// a megabyte).
func shown(v string) string {
	if len(v) <= maxShownReported {
		return strconv.QuoteToASCII(v)
	}
	return strconv.QuoteToASCII(v[:maxShownReported]) + "…"
}
