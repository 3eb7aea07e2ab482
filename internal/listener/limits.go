package listener

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"tlsfleet/internal/tlspolicy"
)

// Limits bound the connections a port holds open at once: accepted and in their handshake, waiting for
// the server, or being served. A connection over either limit is closed as it arrives.
type Limits struct {
	// Total is the most connections the port holds.
	Total int
	// PerAddress is the most of them one client address may hold, so that one address cannot take every
	// slot. Many agents can share one address (a NAT gateway), so it is not small.
	PerAddress int
}

// The defaults, in one place. A port's limits come from its role (tlspolicy.Role):
//
//	port                      role              total    per address
//	4119 console and REST API RoleConsole        4,096     512   operators, scripts and dsm_c
//	4120 agent channel        RoleAgentChannel 120,000   8,192   a 2-core Manager node holds 100,000 agents
//	                                                             on kept-alive connections, with headroom;
//	                                                             thousands of them may sit behind one NAT
//	4118 agent port           RoleAgent            256      64   only the Manager calls it
//	4122 relay port           RoleRelay         16,384   4,096   the agents of a relay group download
//	                                                             bundles, often from behind one NAT
//
// A slot costs a file descriptor and, while it is open, a goroutine and a TLS connection's buffers (some
// 10 to 40 KiB): 120,000 slots need a file-descriptor limit (ulimit -n) above that.
var defaults = map[tlspolicy.Role]Limits{
	tlspolicy.RoleConsole:      {Total: 4_096, PerAddress: 512},
	tlspolicy.RoleAgentChannel: {Total: 120_000, PerAddress: 8_192},
	tlspolicy.RoleAgent:        {Total: 256, PerAddress: 64},
	tlspolicy.RoleRelay:        {Total: 16_384, PerAddress: 4_096},
}

// fallback are the limits of a role without defaults of its own (none today).
var fallback = Limits{Total: 1_024, PerAddress: 128}

// MaxLimit is the largest limit an operator may set.
const MaxLimit = 1_000_000

// DefaultHandshakeTimeout bounds a TLS handshake from the TCP accept on: a slow or silent client is
// closed after it.
const DefaultHandshakeTimeout = 10 * time.Second

// refusalLogEvery is how often, at most, one client address's refusals are logged.
const refusalLogEvery = time.Minute

// refusalLogAddresses bounds the addresses the refusal log remembers (it forgets all of them past it).
const refusalLogAddresses = 10_000

// maxUserAgent bounds the User-Agent kept with a handshake.
const maxUserAgent = 200

// DefaultLimits are a role's limits when the operator sets none.
func DefaultLimits(r tlspolicy.Role) Limits {
	if l, ok := defaults[r]; ok {
		return l
	}
	return fallback
}

// Override is a limit an operator gave: Value 0 means not given. Name is the flag ("--max-conns") or
// configuration key ("maxConnections"), At the key's file and line ("/opt/tlsfleet/configuration.properties:12"),
// for errors that point at the setting to fix.
type Override struct {
	Value int
	Name  string
	At    string
}

// String shows the setting as the operator wrote it: "--max-conns 10" or "FILE:LINE: maxConnections=10".
func (o Override) String() string {
	if strings.HasPrefix(o.Name, "-") {
		return fmt.Sprintf("%s %d", o.Name, o.Value)
	}
	s := fmt.Sprintf("%s=%d", o.Name, o.Value)
	if o.At != "" {
		s = o.At + ": " + s
	}
	return s
}

// Apply returns the limits in force when the operator gave total and perAddress (either may be unset)
// over the defaults d. When only the total is given, one address may hold an eighth of it (at least 4, at
// most d's per-address limit), as before per-address limits could be set.
func (d Limits) Apply(what string, total, perAddress Override) (Limits, error) {
	for _, o := range []Override{total, perAddress} {
		if o.Value != 0 && (o.Value < 1 || o.Value > MaxLimit) {
			return d, fmt.Errorf("%s is out of range: use a whole number from 1 to %d", o, MaxLimit)
		}
	}
	l := d
	if total.Value != 0 {
		l.Total = total.Value
		l.PerAddress = min(d.PerAddress, max(4, total.Value/8), total.Value)
	}
	if perAddress.Value != 0 {
		l.PerAddress = perAddress.Value
	}
	if l.PerAddress > l.Total {
		totalSrc := "its default"
		if total.Value != 0 {
			totalSrc = total.String()
		}
		return d, fmt.Errorf("%s exceeds the %d connections %s may hold in all (%s): set it to at most %d, or raise the total",
			perAddress, l.Total, what, totalSrc, l.Total)
	}
	return l, nil
}

// Validate checks limits given in code (Config.Limits).
func (l Limits) Validate() error {
	if err := checkRange("Limits.Total", l.Total); err != nil {
		return err
	}
	if err := checkRange("Limits.PerAddress", l.PerAddress); err != nil {
		return err
	}
	if l.PerAddress > l.Total {
		return fmt.Errorf("Limits.PerAddress %d exceeds Limits.Total %d: one address cannot hold more than the port", l.PerAddress, l.Total)
	}
	return nil
}

func checkRange(source string, n int) error {
	if n < 1 || n > MaxLimit {
		return fmt.Errorf("%s %d is out of range: use a whole number from 1 to %d", source, n, MaxLimit)
	}
	return nil
}

// ParseLimit reads an operator's limit (a flag's or a configuration key's value); source names it in
// the error.
func ParseLimit(source, s string) (int, error) {
	n, err := parseLimit(s)
	if err != nil {
		return 0, fmt.Errorf("%s=%s: %w", source, s, err)
	}
	return n, nil
}

func parseLimit(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("not a whole number: use one from 1 to %d", MaxLimit)
	}
	if n < 1 || n > MaxLimit {
		return 0, fmt.Errorf("out of range: use a whole number from 1 to %d", MaxLimit)
	}
	return n, nil
}

// LimitFlag is a flag.Value that stores a limit into *dst, refusing 0, negative and non-numeric values
// with the allowed range (the flag package names the flag in the error).
func LimitFlag(dst *int) flag.Value { return &limitFlag{dst: dst} }

type limitFlag struct{ dst *int }

func (f *limitFlag) String() string {
	if f == nil || f.dst == nil || *f.dst == 0 {
		return ""
	}
	return strconv.Itoa(*f.dst)
}

func (f *limitFlag) Set(s string) error {
	n, err := parseLimit(s)
	if err != nil {
		return err
	}
	*f.dst = n
	return nil
}
