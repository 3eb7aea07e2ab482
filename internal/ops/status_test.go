package ops

import (
	"testing"
	"testing/synctest"
	"time"

	"tlsfleet/internal/store"
)

// Offline detection on the fake clock: online through three missed 60 s heartbeats, offline after.
func TestStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const iv = 60 * time.Second
		var c store.Computer
		if got := Status(c, iv, time.Now()); got != StatusNeverSeen {
			t.Errorf("before any heartbeat: %s", got)
		}
		c.LastSeen = time.Now().UTC().Format(time.RFC3339Nano)
		time.Sleep(179 * time.Second)
		if got := Status(c, iv, time.Now()); got != StatusOnline {
			t.Errorf("after 179 s: %s", got)
		}
		time.Sleep(2 * time.Second)
		if got := Status(c, iv, time.Now()); got != StatusOffline {
			t.Errorf("after 181 s: %s", got)
		}
		c.LastSeen = time.Now().UTC().Format(time.RFC3339Nano) // a heartbeat
		if got := Status(c, iv, time.Now()); got != StatusOnline {
			t.Errorf("after a new heartbeat: %s", got)
		}
		c.Deactivated = true
		if got := Status(c, iv, time.Now()); got != StatusDeactivated {
			t.Errorf("deactivated: %s", got)
		}
	})
}
