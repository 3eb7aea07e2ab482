package manager

import (
	"testing"
	"testing/synctest"
	"time"

	"tlsfleet/internal/fleetapi"
)

// Offline detection on the fake clock: online through three missed 60 s heartbeats, offline after.
func TestOfflineDetection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &compState{policy: &fleetapi.Policy{HeartbeatSeconds: 60}}
		if got := st.status(); got != "never seen" {
			t.Errorf("before any heartbeat: %s", got)
		}
		st.lastSeen = time.Now()
		time.Sleep(179 * time.Second)
		if got := st.status(); got != "online" {
			t.Errorf("after 179 s: %s", got)
		}
		time.Sleep(2 * time.Second)
		if got := st.status(); got != "offline" {
			t.Errorf("after 181 s: %s", got)
		}
		st.lastSeen = time.Now() // a heartbeat
		if got := st.status(); got != "online" {
			t.Errorf("after a new heartbeat: %s", got)
		}
		st.c.Deactivated = true
		if got := st.status(); got != "deactivated" {
			t.Errorf("deactivated: %s", got)
		}
	})
}
