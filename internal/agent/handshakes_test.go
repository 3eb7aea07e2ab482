package agent

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/listener"
)

// The log holds at most fleetapi.MaxHandshakeCounts classes and counts the rest; a delivered report is
// subtracted, and what arrived after it stays.
func TestHandshakeLogBoundsAndDelivery(t *testing.T) {
	h := newHandshakeLog(nil)
	obs := func(i int) listener.Observation {
		return listener.Observation{Port: 4122, ClientIP: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Outcome: listener.Failed, Reason: "EOF"}
	}
	for i := range fleetapi.MaxHandshakeCounts + 10 {
		h.Record(obs(i))
	}
	h.Record(obs(0))
	counts, dropped, sent := h.report()
	if len(counts) != fleetapi.MaxHandshakeCounts || dropped != 10 {
		t.Fatalf("%d classes, %d dropped; want %d and 10", len(counts), dropped, fleetapi.MaxHandshakeCounts)
	}
	if counts[0].ClientIP != "10.0.0.0" || counts[0].Count != 2 {
		t.Errorf("oldest class %+v, want 10.0.0.0 counted twice", counts[0])
	}
	// Arrives while the heartbeat is under way: kept for the next one.
	h.Record(obs(0))
	h.Record(obs(fleetapi.MaxHandshakeCounts + 20)) // still full: dropped
	h.delivered(sent)
	counts, dropped, _ = h.report()
	if len(counts) != 1 || counts[0].Count != 1 || counts[0].ClientIP != "10.0.0.0" || dropped != 1 {
		t.Errorf("after delivery: %+v, %d dropped; want 10.0.0.0 once and 1 dropped", counts, dropped)
	}
}

// What travels in a heartbeat is bounded and printable, whatever a client sent.
func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"},
		{"line\nbreak\x1b[31m", "line break [31m"},
		{"bad \xff utf-8", "bad ? utf-8"},
		{strings.Repeat("a", 300), strings.Repeat("a", fleetapi.MaxHandshakeField)},
		{strings.Repeat("é", 200), strings.Repeat("é", fleetapi.MaxHandshakeField/2)},
		{"a" + strings.Repeat("é", 200), "a" + strings.Repeat("é", (fleetapi.MaxHandshakeField-1)/2)},
	}
	for _, tt := range tests {
		got := clean(tt.in)
		if got != tt.want || len(got) > fleetapi.MaxHandshakeField || !utf8.ValidString(got) {
			t.Errorf("clean(%.20q...) = %.40q (%d bytes), want %.40q", tt.in, got, len(got), tt.want)
		}
	}
}

// A report fits the heartbeat: classes beyond the byte budget wait for the next one.
func TestHandshakeReportBudget(t *testing.T) {
	h := newHandshakeLog(nil)
	long := strings.Repeat("<", fleetapi.MaxHandshakeField) // JSON writes \u003c: 6 bytes each
	for i := range fleetapi.MaxHandshakeCounts {
		h.Record(listener.Observation{Port: 4122, ClientIP: fmt.Sprintf("10.1.%d.%d", i/256, i%256), SNI: long, AgentGUID: long, Suite: long, Outcome: listener.Failed, Reason: long})
	}
	counts, _, sent := h.report()
	if len(counts) == 0 || len(counts) == fleetapi.MaxHandshakeCounts {
		t.Fatalf("%d of %d classes reported: the budget did not apply", len(counts), fleetapi.MaxHandshakeCounts)
	}
	h.delivered(sent)
	if n := h.pending(); n != int64(fleetapi.MaxHandshakeCounts-len(counts)) {
		t.Errorf("%d handshakes wait, want %d", n, fleetapi.MaxHandshakeCounts-len(counts))
	}
}
