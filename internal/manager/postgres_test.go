package manager

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"tlsfleet/internal/install"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/store/storetest"
	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlspolicy"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// startManagerOn starts a Manager like startManager whose configuration.properties names b's database.
func startManagerOn(t *testing.T, b storetest.Backend) *Manager {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "manager")
	console, agents := testtarget.FreePort(t), testtarget.FreePort(t)
	storetest.UseDatabase(t, dir, b, tlspolicy.PortConsole, tlspolicy.PortAgentChannel)
	return startManager(t, func(o *Options) { o.Dir, o.ConsolePort, o.HeartbeatPort = dir, console, agents })
}

// envTestDB set to postgres runs every test's startManager on a fresh PostgreSQL database (the whole
// suite on PostgreSQL, a follow-up to make the default: tests that read the SQLite file directly
// through storetest.Dump do not run there yet).
const envTestDB = "TLSFLEET_TEST_DB"

// A Manager runs on SQLite and on PostgreSQL alike: an agent activates and heartbeats, a setting changed
// through the API is stored with its event, and the computer list shows the agent online; on
// PostgreSQL the Manager's own database connection is TLS.
func TestManagerOnEachDatabase(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, b storetest.Backend) {
		m := startManagerOn(t, b)
		if got := m.Folder().Database; got.Type != b.Database.Type || got.Name != b.Database.Name {
			t.Fatalf("the Manager opened %s, want %s", got, b.Database)
		}
		a, _, beats := startRealAgent(t, m, "pg-agent", time.Now)
		nextBeat(t, beats)
		key := apiKey(t, m)
		name := "settings.configuration.restrictRelayMinimumTLSProtocol"
		var res map[string]any
		if code := call(t, m, "PUT", "/api/settings/"+name, key, map[string]string{"value": "TLSv1.3"}, &res); code != http.StatusOK || res["changed"] != true {
			t.Fatalf("PUT %s: %d %v", name, code, res)
		}
		a.CheckInNow()
		nextBeat(t, beats) // heartbeats go on after the change
		var list []ops.ComputerView
		if code := call(t, m, "GET", "/api/computers", key, nil, &list); code != http.StatusOK || len(list) != 1 ||
			list[0].Hostname != "pg-agent" || list[0].Status != "online" || list[0].LastSeen == "" {
			t.Fatalf("computers: %d %+v", code, list)
		}
		tlsState := m.DatabaseTLS()
		switch b.Name {
		case install.DatabasePostgres:
			if !tlsState.Network || !tlsState.TLS || tlsState.Version != "TLSv1.3" {
				t.Errorf("database TLS on PostgreSQL: %+v", tlsState)
			}
		default:
			if tlsState.Network || tlsState.String() != "local file, no network" {
				t.Errorf("database TLS on SQLite: %+v", tlsState)
			}
		}
	})
}
