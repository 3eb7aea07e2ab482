package telemetry

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// 500 handshakes with distinct User-Agents from one unauthenticated client make at most
// MaxUserAgentsPerPortDay+1 rows a day and port; a computer with a fleet certificate keeps its own; the
// next UTC day starts a new set.
func TestUserAgentsBounded(t *testing.T) {
	var rows []Observation
	r := New(func(_ context.Context, b []Observation) error { rows = append(rows, b...); return nil }, nil)
	now := time.Date(2026, 3, 4, 23, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	flush := func() map[Key]int64 {
		t.Helper()
		rows = nil
		if err := r.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		out := map[Key]int64{}
		for _, o := range rows {
			out[o.Key] += o.Count
		}
		return out
	}
	anon := func(port int, ua string) Key {
		return Key{Port: port, ClientIP: "192.0.2.7", UserAgent: ua, OfferedMax: "TLSv1.3", Version: "TLSv1.3", Suite: "TLS_AES_128_GCM_SHA256", Outcome: Accepted}
	}
	for _, tt := range []struct {
		name      string
		record    func()
		wantRows  int
		wantOther int64
	}{
		{"500 distinct User-Agents on one port", func() {
			for i := range 500 {
				r.Record(anon(4119, "probe/"+strconv.Itoa(i)), "")
			}
		}, MaxUserAgentsPerPortDay + 1, 500 - MaxUserAgentsPerPortDay},
		{"the same day: the kept ones stay, new ones are other", func() {
			r.Record(anon(4119, "probe/0"), "")
			r.Record(anon(4119, "probe/new"), "")
		}, 2, 1},
		{"another port has its own bound", func() {
			for i := range 100 {
				r.Record(anon(4120, "probe/"+strconv.Itoa(i)), "")
			}
		}, MaxUserAgentsPerPortDay + 1, 100 - MaxUserAgentsPerPortDay},
		{"computers with a fleet certificate keep theirs", func() {
			for i := range 100 {
				k := anon(4120, "agent/"+strconv.Itoa(i))
				k.AgentGUID = "guid-" + strconv.Itoa(i)
				r.Record(k, "")
			}
		}, 100, 0},
		{"the next day starts a new set", func() {
			now = now.Add(2 * time.Hour)
			for i := range 500 {
				r.Record(anon(4119, "probe/"+strconv.Itoa(1000+i)), "")
			}
		}, MaxUserAgentsPerPortDay + 1, 500 - MaxUserAgentsPerPortDay},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.record()
			got := flush()
			other := int64(0)
			for k, n := range got {
				if k.UserAgent == OtherUserAgent {
					other += n
				}
			}
			if len(got) != tt.wantRows || other != tt.wantOther {
				t.Errorf("%d rows, %d handshakes as %q; want %d rows, %d", len(got), other, OtherUserAgent, tt.wantRows, tt.wantOther)
			}
		})
	}
}
