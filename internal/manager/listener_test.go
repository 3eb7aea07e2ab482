package manager

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/install"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/store"
	"tlsfleet/internal/testtarget"
)

// A relay's port 4122 reports its handshakes with its heartbeats, and the Manager's tlsclients lists
// them under the relay's port with the relay as the reporting node.
func TestRelayHandshakesReachTLSClients(t *testing.T) {
	m := startManager(t, nil)
	dir := filepath.Join(t.TempDir(), "relay")
	act, err := agent.Activate(t.Context(), agent.ActivateOptions{Dir: dir, URL: "dsm://" + m.AgentAddr() + "/", Token: token(t, m, 1, time.Now().Add(time.Hour)),
		Fingerprint: m.CA().Fingerprint(), Hostname: "relay1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.db.(*store.DB).SetRelay(t.Context(), act.GUID, true); err != nil {
		t.Fatal(err)
	}
	m.release(t.Context())
	beats := make(chan *agent.CheckInResult, 16)
	a, err := agent.Start(t.Context(), agent.Options{Dir: dir, Listen: "127.0.0.1:0", RelayListen: "127.0.0.1:0", StateCheck: time.Hour,
		Logger: slog.New(slog.DiscardHandler), OnHeartbeat: func(r *agent.CheckInResult, _ error) { beats <- r }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	beat := func() *agent.CheckInResult {
		t.Helper()
		select {
		case r := <-beats:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat")
			return nil
		}
	}
	if r := beat(); r == nil || !r.Accepted || a.RelayAddr() == "" {
		t.Fatalf("the first heartbeat did not make the agent a relay: %+v", r)
	}
	relayAddr := a.RelayAddr()
	_, p, _ := net.SplitHostPort(relayAddr)
	relayPort, _ := strconv.Atoi(p)
	// One accepted handshake (an anonymous client, refused by the bundle handler afterwards) and one the
	// relay policy refuses (TLS 1.1).
	for _, c := range []struct {
		from string
		cfg  *tls.Config
	}{
		{"127.0.0.2", &tls.Config{InsecureSkipVerify: true}},
		{"127.0.0.3", &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}},
	} {
		tr := &http.Transport{TLSClientConfig: c.cfg, DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.from)}}).DialContext}
		if resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + relayAddr + fleetapi.PathRelayBundles + "x"); err == nil {
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
	}
	key := apiKey(t, m)
	var rows []store.Observation
	for range 3 { // a heartbeat already under way carries none of them; the next does
		a.CheckInNow()
		if r := beat(); !r.Accepted {
			t.Fatalf("heartbeat %+v", r)
		}
		rows = nil
		call(t, m, "GET", "/api/tlsclients?port="+p, key, nil, &rows)
		if len(rows) >= 2 {
			break
		}
	}
	got := map[string]store.Observation{}
	for _, o := range rows {
		if o.Port != relayPort || o.Node != act.GUID {
			t.Errorf("row %+v: want port %d from node %s", o, relayPort, act.GUID)
		}
		got[o.Outcome] = o
	}
	if o := got["accepted"]; o.ClientIP != "127.0.0.2" || o.Version != "TLSv1.3" || o.Count != 1 {
		t.Errorf("the relay's accepted handshake: %+v (rows %+v)", o, rows)
	}
	if o := got["rejected"]; o.ClientIP != "127.0.0.3" || o.OfferedMax != "TLSv1.1" || !strings.Contains(o.Reason, "protocol_version") {
		t.Errorf("the relay's refused handshake: %+v (rows %+v)", o, rows)
	}
}

// Reported counts come from the network: garbage is skipped, the heartbeat still succeeds, and the
// valid entries are recorded.
func TestReportedHandshakesAreValidated(t *testing.T) {
	m := startManager(t, nil)
	relay := activateTestAgent(t, m, "relay2")
	now := time.Now().UTC().Format(time.RFC3339Nano)
	good := fleetapi.HandshakeCount{Port: 24122, ClientIP: "10.1.2.3", OfferedMax: "TLSv1.3", Version: "TLSv1.3", Suite: "TLS_AES_128_GCM_SHA256",
		Outcome: "accepted", Count: 5, FirstSeen: now, LastSeen: now}
	bad := func(f func(*fleetapi.HandshakeCount)) fleetapi.HandshakeCount { h := good; f(&h); return h }
	hs := []fleetapi.HandshakeCount{
		good,
		bad(func(h *fleetapi.HandshakeCount) { h.ClientIP = "not-an-ip" }),
		bad(func(h *fleetapi.HandshakeCount) { h.Version = "TLSv9" }),
		bad(func(h *fleetapi.HandshakeCount) { h.OfferedMax = "SSLv2-ish" }),
		bad(func(h *fleetapi.HandshakeCount) { h.Outcome = "exploded" }),
		bad(func(h *fleetapi.HandshakeCount) { h.SNI = strings.Repeat("a", fleetapi.MaxHandshakeField+1) }),
		bad(func(h *fleetapi.HandshakeCount) { h.Reason = "line\nbreak\x1b[31m" }),
		bad(func(h *fleetapi.HandshakeCount) { h.Count = 0 }),
		bad(func(h *fleetapi.HandshakeCount) { h.Port = 70000 }),
	}
	for i := len(hs); i <= fleetapi.MaxHandshakeCounts; i++ {
		hs = append(hs, bad(func(h *fleetapi.HandshakeCount) { h.ClientIP = fmt.Sprintf("10.9.%d.%d", i/256, i%256) }))
	}
	hs = append(hs, bad(func(h *fleetapi.HandshakeCount) { h.ClientIP = "10.255.255.255" })) // entry 1001: over the bound
	if code, _, body := relay.beat(t, m, fleetapi.Heartbeat{Handshakes: hs}); code != http.StatusOK {
		t.Fatalf("a heartbeat with bad handshake counts failed: %d %s", code, body)
	}
	var rows []store.Observation
	call(t, m, "GET", "/api/tlsclients?port=24122", apiKey(t, m), nil, &rows)
	ips := map[string]int64{}
	for _, o := range rows {
		ips[o.ClientIP] += o.Count
		if o.Node != relay.guid {
			t.Errorf("row %+v has node %q", o, o.Node)
		}
	}
	if want := fleetapi.MaxHandshakeCounts - 9 + 1; len(ips) != want || ips["10.1.2.3"] != 5 || ips["10.255.255.255"] != 0 || ips["not-an-ip"] != 0 {
		t.Errorf("%d client addresses recorded, want %d (the good one with 5): %v", len(ips), want, ips["10.1.2.3"])
	}
}

// The connection limits come from the flags, else configuration.properties, else the defaults; bad
// values stop the Manager with the key or flag, its line and the allowed range.
func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name           string
		props          string // lines added to configuration.properties
		flagT, flagP   int
		console, agent listener.Limits
		err            []string
	}{
		{name: "defaults", console: listener.Limits{Total: 4096, PerAddress: 512}, agent: listener.Limits{Total: 120_000, PerAddress: 8192}},
		{name: "file", props: "maxConnections=20000\nmaxConnectionsPerAddress=1000\n",
			console: listener.Limits{Total: 20_000, PerAddress: 1000}, agent: listener.Limits{Total: 20_000, PerAddress: 1000}},
		{name: "file total only", props: "maxConnections=64\n", console: listener.Limits{Total: 64, PerAddress: 8}, agent: listener.Limits{Total: 64, PerAddress: 8}},
		{name: "flags win", props: "maxConnections=20000\nmaxConnectionsPerAddress=1000\n", flagT: 300, flagP: 30,
			console: listener.Limits{Total: 300, PerAddress: 30}, agent: listener.Limits{Total: 300, PerAddress: 30}},
		{name: "one flag, one key", props: "maxConnections=20000\n", flagP: 700,
			console: listener.Limits{Total: 20_000, PerAddress: 700}, agent: listener.Limits{Total: 20_000, PerAddress: 700}},
		{name: "not a number", props: "maxConnections=lots\n", err: []string{"configuration.properties:", "maxConnections=lots: not a whole number: use one from 1 to 1000000"}},
		{name: "zero", props: "maxConnectionsPerAddress=0\n", err: []string{"maxConnectionsPerAddress=0: out of range: use a whole number from 1 to 1000000"}},
		{name: "negative", props: "maxConnections=-3\n", err: []string{"maxConnections=-3: out of range"}},
		{name: "per address over the total", props: "maxConnections=100\nmaxConnectionsPerAddress=101\n",
			err: []string{"maxConnectionsPerAddress=101 exceeds the 100 connections port", "maxConnections=100)", "at most 100"}},
		{name: "per address over a default total", props: "maxConnectionsPerAddress=5000\n",
			err: []string{"maxConnectionsPerAddress=5000 exceeds the 4096 connections port", "(console) may hold in all (its default)"}},
		{name: "flag per address over the file's total", props: "maxConnections=100\n", flagP: 200,
			err: []string{"--max-conns-per-address 200 exceeds the 100 connections", "configuration.properties:", "maxConnections=100"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "manager")
			cp, hp := testtarget.FreePort(t), testtarget.FreePort(t)
			if _, err := install.Init(dir, cp, hp); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(filepath.Join(dir, install.ConfigFile), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tt.props)
			f.Close()
			m, err := Start(t.Context(), Options{Dir: dir, Listen: "127.0.0.1", MaxConns: tt.flagT, MaxConnsPerAddress: tt.flagP, Logger: slog.New(slog.DiscardHandler)})
			if tt.err != nil {
				if err == nil {
					m.Close()
					t.Fatal("the Manager started with bad limits")
				}
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				// Nothing changed: no database, and the ports are free.
				if _, err := os.Stat(filepath.Join(dir, install.DefaultDBFile)); err == nil {
					t.Error("a start refused for its limits created the database")
				}
				for _, port := range []int{cp, hp} {
					if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
						t.Errorf("port %d is held after a failed start: %v", port, err)
					} else {
						ln.Close()
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if got := m.consoleLn.Limits(); got != tt.console {
				t.Errorf("console port limits %+v, want %+v", got, tt.console)
			}
			if got := m.agentLn.Limits(); got != tt.agent {
				t.Errorf("agent channel limits %+v, want %+v", got, tt.agent)
			}
		})
	}
}

// The first start documents the limits in configuration.properties, with the defaults in force.
func TestConfigFileDocumentsLimits(t *testing.T) {
	m := startManager(t, nil)
	b, err := os.ReadFile(m.folder.Path(install.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#   maxConnections=120000", "#   maxConnectionsPerAddress=8192", "--max-conns", "holds 4096 (512 from one address)"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("configuration.properties lacks %q:\n%s", want, b)
		}
	}
}
