package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/tlspolicy"
)

// handshakeBudget bounds the bytes of handshake counts in one heartbeat, well inside fleetapi.MaxBody;
// what does not fit waits for the next heartbeat.
const handshakeBudget = fleetapi.MaxBody / 2

// portLimits resolves the connection limits of the agent port and the relay port: Options' MaxConns and
// MaxConnsPerAddress (--max-conns, --max-conns-per-address) apply to each port, over its defaults.
func portLimits(o Options) (map[tlspolicy.Role]listener.Limits, error) {
	total := listener.Override{Value: o.MaxConns, Name: "--max-conns"}
	perAddress := listener.Override{Value: o.MaxConnsPerAddress, Name: "--max-conns-per-address"}
	out := map[tlspolicy.Role]listener.Limits{}
	for _, p := range []struct {
		role tlspolicy.Role
		what string
	}{{tlspolicy.RoleAgent, "the agent port"}, {tlspolicy.RoleRelay, "the relay port"}} {
		l, err := listener.DefaultLimits(p.role).Apply(p.what, total, perAddress)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUsage, err)
		}
		out[p.role] = l
	}
	return out, nil
}

// hsKey is a class of handshakes one of the agent's ports saw.
type hsKey struct {
	port                                                          int
	clientIP, sni, agentGUID, offeredMax, version, suite, outcome string
}

type hsCount struct {
	count       int64
	first, last time.Time
	reason      string
}

// handshakeLog counts what the agent's ports observe until a heartbeat the Manager accepted carried it.
// It holds at most fleetapi.MaxHandshakeCounts classes; handshakes of further classes are only counted
// (dropped).
type handshakeLog struct {
	mu      sync.Mutex
	counts  map[hsKey]*hsCount
	dropped int64
	hook    func(listener.Observation) // tests: told of every observation, after it is counted
}

// hsSent is what one heartbeat carried, to be forgotten once the Manager accepted it.
type hsSent struct {
	counts  map[hsKey]hsCount
	dropped int64
}

func newHandshakeLog(hook func(listener.Observation)) *handshakeLog {
	return &handshakeLog{counts: map[hsKey]*hsCount{}, hook: hook}
}

// Record counts one observation (listener.Recorder).
func (h *handshakeLog) Record(o listener.Observation) {
	k := hsKey{port: o.Port, clientIP: o.ClientIP, sni: clean(o.SNI), agentGUID: clean(o.AgentGUID), offeredMax: o.OfferedMax,
		version: o.Version, suite: clean(o.Suite), outcome: o.Outcome}
	now := time.Now()
	h.mu.Lock()
	c := h.counts[k]
	switch {
	case c != nil:
	case len(h.counts) >= fleetapi.MaxHandshakeCounts:
		h.dropped++
	default:
		c = &hsCount{first: now}
		h.counts[k] = c
	}
	if c != nil {
		c.count++
		c.last = now
		c.reason = clean(o.Reason)
	}
	h.mu.Unlock()
	if h.hook != nil {
		h.hook(o)
	}
}

// report lists the counts for a heartbeat, oldest classes first, as many as handshakeBudget allows (the
// others wait for the next heartbeat).
func (h *handshakeLog) report() ([]fleetapi.HandshakeCount, int64, hsSent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sent := hsSent{counts: make(map[hsKey]hsCount, len(h.counts)), dropped: h.dropped}
	keys := make([]hsKey, 0, len(h.counts))
	for k := range h.counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b hsKey) int { return h.counts[a].first.Compare(h.counts[b].first) })
	var out []fleetapi.HandshakeCount
	size := 0
	for _, k := range keys {
		c := h.counts[k]
		hc := fleetapi.HandshakeCount{Port: k.port, ClientIP: k.clientIP, SNI: k.sni, AgentGUID: k.agentGUID, OfferedMax: k.offeredMax,
			Version: k.version, Suite: k.suite, Outcome: k.outcome, Reason: c.reason, Count: c.count,
			FirstSeen: c.first.UTC().Format(time.RFC3339Nano), LastSeen: c.last.UTC().Format(time.RFC3339Nano)}
		b, _ := json.Marshal(hc)
		n := len(b) + 1
		if size+n > handshakeBudget {
			continue
		}
		size += n
		out = append(out, hc)
		sent.counts[k] = *c
	}
	return out, h.dropped, sent
}

// delivered forgets what an accepted heartbeat carried; counts added since stay for the next one.
func (h *handshakeLog) delivered(sent hsSent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, s := range sent.counts {
		c := h.counts[k]
		if c == nil {
			continue
		}
		if c.count -= s.count; c.count <= 0 {
			delete(h.counts, k)
		} else {
			c.first = s.last // the rest was seen after what was sent
		}
	}
	h.dropped = max(0, h.dropped-sent.dropped)
}

// pending counts the handshakes not yet delivered (tests).
func (h *handshakeLog) pending() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.dropped
	for _, c := range h.counts {
		n += c.count
	}
	return n
}

// clean makes a string from the network fit a report: control characters become spaces, and it is cut
// to fleetapi.MaxHandshakeField bytes on a character boundary.
func clean(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) && len(s) <= fleetapi.MaxHandshakeField && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	for len(s) > fleetapi.MaxHandshakeField {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// attachHandshakes puts the handshake counts into a heartbeat and remembers what it carried. It runs in
// the heartbeat loop only, as does handshakesDelivered.
func (s *session) attachHandshakes(hb *fleetapi.Heartbeat) {
	hb.Handshakes, hb.HandshakesDropped, s.hsSent = s.hs.report()
}

// handshakesDelivered forgets the counts a heartbeat the Manager accepted carried.
func (s *session) handshakesDelivered() {
	s.hs.delivered(s.hsSent)
	s.hsSent = hsSent{}
}
