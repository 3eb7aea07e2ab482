package telemetry

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/tlspolicy"
)

// reportedClockSkew is how far in the future a reported time may lie (the reporter's clock runs ahead);
// later times, and times before reportedMaxAge, are replaced by the time of the report.
const (
	reportedClockSkew = 5 * time.Minute
	reportedMaxAge    = 7 * 24 * time.Hour
	maxReportedCount  = 1 << 40 // more handshakes than any port sees between two heartbeats
)

// AddReported counts the handshakes a fleet member's heartbeat reported for its own ports, with node
// (its GUID) as the reporting node. The report comes from the network: entries past
// fleetapi.MaxHandshakeCounts and entries that do not validate (an invalid IP address, an unknown
// version or outcome, an overlong or unprintable string, a count out of range) are skipped, not fatal;
// skipped counts them and why names the first.
func (r *Recorder) AddReported(node string, hs []fleetapi.HandshakeCount, now time.Time) (added, skipped int, why error) {
	for i, h := range hs {
		if i >= fleetapi.MaxHandshakeCounts {
			skipped += len(hs) - i
			if why == nil {
				why = fmt.Errorf("more than %d handshake counts in one heartbeat", fleetapi.MaxHandshakeCounts)
			}
			break
		}
		k, err := reportedKey(node, h)
		if err != nil {
			skipped++
			if why == nil {
				why = fmt.Errorf("handshake count %d: %w", i, err)
			}
			continue
		}
		first, last := reportedTimes(h, now)
		r.add(k, h.Reason, h.Count, first, last)
		added++
	}
	return added, skipped, why
}

// reportedKey validates one reported count.
func reportedKey(node string, h fleetapi.HandshakeCount) (Key, error) {
	if h.Port < 1 || h.Port > 65535 {
		return Key{}, fmt.Errorf("port %d is not a port number", h.Port)
	}
	if h.Count < 1 || h.Count > maxReportedCount {
		return Key{}, fmt.Errorf("count %d is out of range (1 to %d)", h.Count, int64(maxReportedCount))
	}
	for _, f := range []struct{ name, v string }{{"sni", h.SNI}, {"agent_guid", h.AgentGUID}, {"cipher_suite", h.Suite}, {"reason", h.Reason}, {"node", node}} {
		if err := printable(f.name, f.v); err != nil {
			return Key{}, err
		}
	}
	ip := net.ParseIP(h.ClientIP)
	if ip == nil {
		return Key{}, fmt.Errorf("client_ip %.64q is not an IP address", h.ClientIP)
	}
	for _, v := range []struct {
		name string
		v    *string
	}{{"offered_max", &h.OfferedMax}, {"version", &h.Version}} {
		if *v.v == "" {
			continue
		}
		p, err := tlspolicy.ParseVersion(*v.v)
		if err != nil {
			return Key{}, fmt.Errorf("%s %.32q is not a TLS version name", v.name, *v.v)
		}
		*v.v = p.String()
	}
	switch h.Outcome {
	case Accepted, Rejected, Failed:
	default:
		return Key{}, fmt.Errorf("outcome %.32q: use %s, %s or %s", h.Outcome, Accepted, Rejected, Failed)
	}
	return Key{Port: h.Port, ClientIP: ip.String(), SNI: h.SNI, AgentGUID: h.AgentGUID, OfferedMax: h.OfferedMax, Version: h.Version,
		Suite: h.Suite, Outcome: h.Outcome, Node: node}, nil
}

var errUnprintable = errors.New("holds a control character")

// printable bounds a reported string's length and refuses control characters (the reports end up in
// operators' terminals).
func printable(name, s string) error {
	if len(s) > fleetapi.MaxHandshakeField {
		return fmt.Errorf("%s is %d bytes long, more than %d", name, len(s), fleetapi.MaxHandshakeField)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%s %w", name, errUnprintable)
	}
	return nil
}

// reportedTimes takes a report's first and last seen when they are plausible, else the report's time.
func reportedTimes(h fleetapi.HandshakeCount, now time.Time) (time.Time, time.Time) {
	ok := func(s string) (time.Time, bool) {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil && !t.After(now.Add(reportedClockSkew)) && !t.Before(now.Add(-reportedMaxAge))
	}
	last, lok := ok(h.LastSeen)
	if !lok || last.After(now) {
		last = now
	}
	first, fok := ok(h.FirstSeen)
	if !fok || first.After(last) {
		first = last
	}
	return first, last
}
