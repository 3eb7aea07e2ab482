package manager

import (
	"net/http"
	"testing"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/settings"
)

// With automaticallySendPolicy=false, a computer that acknowledged its policy is pending again over REST
// once its policy changes and is not sent, and stops being pending once it runs the sent policy.
func TestRESTPendingWhileUnsent(t *testing.T) {
	m := startManager(t, nil)
	agent := activateTestAgent(t, m, "web1")
	key := apiKey(t, m)
	pending := func() ops.ComputerView {
		t.Helper()
		var views []ops.ComputerView
		if code := call(t, m, "GET", "/api/computers", key, nil, &views); code != http.StatusOK || len(views) != 1 {
			t.Fatalf("GET /api/computers: %d %+v", code, views)
		}
		return views[0]
	}
	if code, hr, body := agent.beat(t, m, fleetapi.Heartbeat{}); code != http.StatusOK || hr.Policy == nil {
		t.Fatalf("first heartbeat: %d %s", code, body)
	}
	agent.beat(t, m, fleetapi.Heartbeat{}) // runs it now: acknowledged
	if v := pending(); v.Pending || v.Unsent {
		t.Fatalf("an acknowledged computer is pending: %+v", v)
	}

	for _, set := range [][2]string{{settings.AutoSendPolicy, "false"}, {settings.HeartbeatPeriod, "20"}} {
		if code := call(t, m, "PUT", "/api/settings/"+set[0], key, map[string]string{"value": set[1]}, nil); code != http.StatusOK {
			t.Fatalf("PUT %s: %d", set[0], code)
		}
	}
	if v := pending(); !v.Pending || !v.Unsent || v.PolicySent != v.PolicyAcked {
		t.Errorf("policy changed and not sent: pending %v unsent %v (sent %s, acked %s), want pending", v.Pending, v.Unsent, v.PolicySent, v.PolicyAcked)
	}
	if code := call(t, m, "POST", "/api/sendpolicy", key, map[string][]string{"computers": {"web1"}}, nil); code != http.StatusOK {
		t.Fatalf("sendpolicy: %d", code)
	}
	agent.beat(t, m, fleetapi.Heartbeat{}) // gets the sent policy
	agent.beat(t, m, fleetapi.Heartbeat{}) // and acknowledges it
	if v := pending(); v.Pending || v.Unsent {
		t.Errorf("after send policy and its acknowledgement: %+v", v)
	}
}
