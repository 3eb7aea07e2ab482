package telemetry

import (
	"context"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/fleetapi"
)

func TestAddReported(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	good := fleetapi.HandshakeCount{Port: 4122, ClientIP: "10.0.0.5", SNI: "other", AgentGUID: "guid-7", OfferedMax: "TLSv1.3", Version: "TLSv1.3",
		Suite: "TLS_AES_128_GCM_SHA256", Outcome: Accepted, Count: 4, FirstSeen: ts(-time.Hour), LastSeen: ts(-time.Minute)}
	with := func(f func(*fleetapi.HandshakeCount)) fleetapi.HandshakeCount { h := good; f(&h); return h }
	tests := []struct {
		name        string
		in          fleetapi.HandshakeCount
		why         string // "" when recorded
		key         func(*Key)
		first, last time.Time
	}{
		{name: "valid", in: good, first: now.Add(-time.Hour), last: now.Add(-time.Minute)},
		{name: "IPv6 in canonical form", in: with(func(h *fleetapi.HandshakeCount) { h.ClientIP = "2001:DB8::0:1" }),
			key: func(k *Key) { k.ClientIP = "2001:db8::1" }, first: now.Add(-time.Hour), last: now.Add(-time.Minute)},
		{name: "version names canonical", in: with(func(h *fleetapi.HandshakeCount) { h.OfferedMax, h.Version = "tlsv1.2", "TLSV1.2" }),
			key: func(k *Key) { k.OfferedMax, k.Version = "TLSv1.2", "TLSv1.2" }, first: now.Add(-time.Hour), last: now.Add(-time.Minute)},
		{name: "rejected without a version", in: with(func(h *fleetapi.HandshakeCount) {
			h.Version, h.Suite, h.Outcome, h.Reason = "", "", Rejected, "protocol_version: old"
		}),
			key: func(k *Key) { k.Version, k.Suite, k.Outcome = "", "", Rejected }, first: now.Add(-time.Hour), last: now.Add(-time.Minute)},
		{name: "times in the future", in: with(func(h *fleetapi.HandshakeCount) { h.FirstSeen, h.LastSeen = ts(time.Hour), ts(2*time.Hour) }), first: now, last: now},
		{name: "times unreadable", in: with(func(h *fleetapi.HandshakeCount) { h.FirstSeen, h.LastSeen = "yesterday", "" }), first: now, last: now},
		{name: "times too old", in: with(func(h *fleetapi.HandshakeCount) { h.FirstSeen, h.LastSeen = ts(-30*24*time.Hour), ts(-29*24*time.Hour) }), first: now, last: now},
		{name: "first after last", in: with(func(h *fleetapi.HandshakeCount) { h.FirstSeen = ts(-time.Second) }), first: now.Add(-time.Minute), last: now.Add(-time.Minute)},
		{name: "bad IP", in: with(func(h *fleetapi.HandshakeCount) { h.ClientIP = "10.0.0.300" }), why: "client_ip"},
		{name: "empty IP", in: with(func(h *fleetapi.HandshakeCount) { h.ClientIP = "" }), why: "is not an IP address"},
		{name: "unknown version", in: with(func(h *fleetapi.HandshakeCount) { h.Version = "TLSv1.4" }), why: "version"},
		{name: "unknown offered version", in: with(func(h *fleetapi.HandshakeCount) { h.OfferedMax = "QUIC" }), why: "offered_max"},
		{name: "unknown outcome", in: with(func(h *fleetapi.HandshakeCount) { h.Outcome = "maybe" }), why: "outcome"},
		{name: "zero count", in: with(func(h *fleetapi.HandshakeCount) { h.Count = 0 }), why: "count 0"},
		{name: "negative count", in: with(func(h *fleetapi.HandshakeCount) { h.Count = -9 }), why: "count -9"},
		{name: "huge count", in: with(func(h *fleetapi.HandshakeCount) { h.Count = 1 << 50 }), why: "out of range"},
		{name: "port 0", in: with(func(h *fleetapi.HandshakeCount) { h.Port = 0 }), why: "port 0"},
		{name: "long SNI", in: with(func(h *fleetapi.HandshakeCount) { h.SNI = strings.Repeat("x", fleetapi.MaxHandshakeField+1) }), why: "sni is 257 bytes long"},
		{name: "long reason", in: with(func(h *fleetapi.HandshakeCount) { h.Reason = strings.Repeat("é", fleetapi.MaxHandshakeField) }), why: "reason"},
		{name: "escape sequence", in: with(func(h *fleetapi.HandshakeCount) { h.Suite = "TLS\x1b[2J" }), why: "cipher_suite holds a control character"},
		{name: "newline in the GUID", in: with(func(h *fleetapi.HandshakeCount) { h.AgentGUID = "a\nb" }), why: "agent_guid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Observation
			r := New(func(_ context.Context, b []Observation) error { got = append(got, b...); return nil }, nil)
			added, skipped, why := r.AddReported("relay-guid", []fleetapi.HandshakeCount{tt.in}, now)
			r.Flush(t.Context())
			if tt.why != "" {
				if added != 0 || skipped != 1 || why == nil || !strings.Contains(why.Error(), tt.why) || len(got) != 0 {
					t.Errorf("added %d, skipped %d, %v, flushed %+v; want it skipped saying %q", added, skipped, why, got, tt.why)
				}
				return
			}
			if added != 1 || skipped != 0 || why != nil || len(got) != 1 {
				t.Fatalf("added %d, skipped %d, %v, flushed %+v", added, skipped, why, got)
			}
			want := Key{Port: 4122, ClientIP: "10.0.0.5", SNI: "other", AgentGUID: "guid-7", OfferedMax: "TLSv1.3", Version: "TLSv1.3",
				Suite: "TLS_AES_128_GCM_SHA256", Outcome: Accepted, Node: "relay-guid"}
			if tt.key != nil {
				tt.key(&want)
			}
			o := got[0]
			if o.Key != want || o.Count != tt.in.Count || o.Reason != tt.in.Reason || !o.FirstSeen.Equal(tt.first) || !o.LastSeen.Equal(tt.last) {
				t.Errorf("flushed %+v\nwant key %+v, count %d, first %s, last %s", o, want, tt.in.Count, tt.first, tt.last)
			}
		})
	}
}

// A report is bounded: entries past fleetapi.MaxHandshakeCounts are skipped, and reported counts stay
// out of the Manager's own handshake metric.
func TestAddReportedBounds(t *testing.T) {
	r := New(func(context.Context, []Observation) error { return nil }, nil)
	hs := make([]fleetapi.HandshakeCount, fleetapi.MaxHandshakeCounts+5)
	for i := range hs {
		hs[i] = fleetapi.HandshakeCount{Port: 4122, ClientIP: "10.0.0.1", Outcome: Failed, Count: 1}
	}
	added, skipped, why := r.AddReported("relay", hs, time.Now())
	if added != fleetapi.MaxHandshakeCounts || skipped != 5 || why == nil || !strings.Contains(why.Error(), "more than 1000") {
		t.Errorf("added %d, skipped %d, %v", added, skipped, why)
	}
	var b strings.Builder
	r.WriteMetrics(&b)
	if strings.Contains(b.String(), `port="4122"`) {
		t.Errorf("reported counts reached the Manager's own metric:\n%s", b.String())
	}
}
