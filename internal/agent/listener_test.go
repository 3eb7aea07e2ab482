package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/tlspolicy"
)

// portEvents are what a test learns from a running agent: its heartbeats and its ports' observations.
type portEvents struct {
	beats chan *CheckInResult
	obs   chan listener.Observation
}

func newPortEvents(o *Options) *portEvents {
	ev := &portEvents{beats: make(chan *CheckInResult, 64), obs: make(chan listener.Observation, 4096)}
	o.OnHeartbeat = func(r *CheckInResult, _ error) { ev.beats <- r }
	o.onHandshake = func(ob listener.Observation) { ev.obs <- ob }
	return ev
}

func (ev *portEvents) beat(t *testing.T) *CheckInResult {
	t.Helper()
	select {
	case r := <-ev.beats:
		return r
	case <-time.After(waitLong):
		t.Fatal("no heartbeat")
		return nil
	}
}

func (ev *portEvents) next(t *testing.T) listener.Observation {
	t.Helper()
	select {
	case o := <-ev.obs:
		return o
	case <-time.After(waitLong):
		t.Fatal("no handshake observed")
		return listener.Observation{}
	}
}

// startRelayWith starts a relay (its policy arrives with the first heartbeat) with the given options.
func startRelayWith(t *testing.T, m *agenttest.Manager, o Options) (*Agent, string, *portEvents) {
	t.Helper()
	dir := t.TempDir()
	guid := activate(t, m, dir)
	m.SetPolicy(guid, relayPolicy(1, "TLSv1.2"))
	o.RelayListen = "127.0.0.1:0"
	ev := newPortEvents(&o)
	a, _ := startAgent(t, dir, o)
	if r := ev.beat(t); r == nil || !r.Accepted || a.RelayAddr() == "" {
		t.Fatalf("the first heartbeat did not open the relay port: %+v", r)
	}
	return a, guid, ev
}

func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: waitLong}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedPromptly reports whether the server closed c instead of leaving it open.
func closedPromptly(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitLong))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// getFrom runs one request over TLS from a loopback source address and returns the status.
func getFrom(from, url string, cfg *tls.Config) (int, error) {
	tr := &http.Transport{TLSClientConfig: cfg, DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: waitLong}).Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func relayClientTLS(m *agenttest.Manager, certs ...tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.Cert)
	return &tls.Config{InsecureSkipVerify: true, VerifyConnection: verifyFleetPeer(pool, x509.ExtKeyUsageServerAuth), Certificates: certs}
}

// The agent port and the relay port hold their connection limits: idle connections from one address
// beyond the per-address limit, or from anyone beyond the total, are closed as they arrive, while
// another address still completes a handshake.
func TestPortsHoldTheirLimits(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	type port struct {
		name  string
		start func(t *testing.T, o Options) (addr string, ev *portEvents, handshake func(from string) error)
	}
	agentPort := port{"agent port 4118", func(t *testing.T, o Options) (string, *portEvents, func(string) error) {
		dir := t.TempDir()
		guid := activate(t, m, dir)
		ev := newPortEvents(&o)
		a, _ := startAgent(t, dir, o)
		return a.AgentAddr(), ev, func(from string) error {
			code, err := getFrom(from, "https://"+a.AgentAddr()+fleetapi.PathStatus, managerTLS(m, guid, tls.VersionTLS12, 0))
			if err == nil && code != http.StatusOK {
				err = errors.New(http.StatusText(code))
			}
			return err
		}
	}}
	relayPort := port{"relay port 4122", func(t *testing.T, o Options) (string, *portEvents, func(string) error) {
		a, _, ev := startRelayWith(t, m, o)
		return a.RelayAddr(), ev, func(from string) error {
			_, err := getFrom(from, "https://"+a.RelayAddr()+fleetapi.PathRelayBundles+"x", relayClientTLS(m, m.IssueCert(t, "reader")))
			return err
		}
	}}
	tests := []struct {
		port   port
		limit  string
		idle   map[string]int // idle connections by source address, opened in this order: .2, .3, .4
		reason string         // why the last one is refused
		then   string         // the address that must still complete a handshake
	}{
		{agentPort, "per address", map[string]int{"127.0.0.2": 3}, listener.ReasonPerAddress, "127.0.0.3"},
		{agentPort, "total", map[string]int{"127.0.0.2": 2, "127.0.0.3": 2, "127.0.0.4": 1}, listener.ReasonTotal, ""},
		{relayPort, "per address", map[string]int{"127.0.0.2": 3}, listener.ReasonPerAddress, "127.0.0.3"},
		{relayPort, "total", map[string]int{"127.0.0.2": 2, "127.0.0.3": 2, "127.0.0.4": 1}, listener.ReasonTotal, ""},
	}
	for _, tt := range tests {
		t.Run(tt.port.name+" "+tt.limit, func(t *testing.T) {
			addr, ev, handshake := tt.port.start(t, Options{MaxConns: 4, MaxConnsPerAddress: 2})
			var last net.Conn
			var first net.Conn
			for _, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
				for range tt.idle[from] {
					last = dialFrom(t, from, addr)
					if first == nil {
						first = last
					}
				}
			}
			if o := ev.next(t); o.Outcome != listener.Failed || o.Reason != tt.reason {
				t.Fatalf("observed %+v, want the surplus connection refused: %s", o, tt.reason)
			}
			if !closedPromptly(t, last) {
				t.Error("the surplus connection was left open")
			}
			if tt.then == "" {
				// The port is full: free one slot (its handshake fails), then a new client gets in.
				first.Close()
				if o := ev.next(t); o.Outcome != listener.Failed || o.ClientIP != "127.0.0.2" {
					t.Fatalf("observed %+v, want the closed connection's failed handshake", o)
				}
				tt.then = "127.0.0.4"
			}
			if err := handshake(tt.then); err != nil {
				t.Errorf("a client from %s was kept out: %v", tt.then, err)
			}
		})
	}
}

// Bad limits stop the agent before it opens a port, naming the flag and the range.
func TestPortLimitOptions(t *testing.T) {
	tests := []struct {
		total, per int
		want       string
	}{
		{total: -1, want: "--max-conns -1 is out of range: use a whole number from 1 to 1000000"},
		{per: 2_000_000, want: "--max-conns-per-address 2000000 is out of range"},
		{total: 10, per: 11, want: "--max-conns-per-address 11 exceeds the 10 connections the agent port may hold in all (--max-conns 10)"},
		{per: 300, want: "--max-conns-per-address 300 exceeds the 256 connections the agent port may hold in all (its default)"},
	}
	for _, tt := range tests {
		_, err := Start(t.Context(), Options{Dir: t.TempDir(), MaxConns: tt.total, MaxConnsPerAddress: tt.per})
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("MaxConns %d, MaxConnsPerAddress %d: %v; want a usage error saying %q", tt.total, tt.per, err, tt.want)
		}
	}
	for _, tt := range []struct {
		o            Options
		agent, relay listener.Limits
	}{
		{Options{}, listener.Limits{Total: 256, PerAddress: 64}, listener.Limits{Total: 16_384, PerAddress: 4_096}},
		{Options{MaxConns: 50_000, MaxConnsPerAddress: 200}, listener.Limits{Total: 50_000, PerAddress: 200}, listener.Limits{Total: 50_000, PerAddress: 200}},
		{Options{MaxConns: 100}, listener.Limits{Total: 100, PerAddress: 12}, listener.Limits{Total: 100, PerAddress: 12}},
	} {
		got, err := portLimits(tt.o)
		if err != nil {
			t.Fatal(err)
		}
		if got[tlspolicy.RoleAgent] != tt.agent || got[tlspolicy.RoleRelay] != tt.relay {
			t.Errorf("%+v: agent port %+v, relay port %+v; want %+v and %+v", tt.o, got[tlspolicy.RoleAgent], got[tlspolicy.RoleRelay], tt.agent, tt.relay)
		}
	}
}

// What the relay port saw travels with the heartbeats: kept while heartbeats fail, forgotten once the
// Manager accepted one.
func TestRelayReportsHandshakes(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	a, guid, ev := startRelayWith(t, m, Options{})
	addr := a.RelayAddr()
	_, port, _ := net.SplitHostPort(addr)
	for range 2 {
		if _, err := getFrom("127.0.0.2", "https://"+addr+fleetapi.PathRelayBundles+"x", relayClientTLS(m, m.IssueCert(t, "reader-1"))); err != nil {
			t.Fatal(err)
		}
	}
	getFrom("127.0.0.3", "https://"+addr+"/", &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	for range 3 {
		ev.next(t)
	}
	// A refused heartbeat keeps the counts.
	m.Deactivate(guid, true)
	a.CheckInNow()
	if r := ev.beat(t); r == nil || r.Accepted {
		t.Fatalf("the heartbeat of a deactivated relay was accepted: %+v", r)
	}
	if n := a.current().hs.pending(); n != 3 {
		t.Errorf("%d handshakes kept after a refused heartbeat, want 3", n)
	}
	m.Deactivate(guid, false)
	a.CheckInNow()
	if r := ev.beat(t); r == nil || !r.Accepted {
		t.Fatalf("heartbeat %+v", r)
	}
	hbs := m.Computer(guid).Heartbeats
	got := map[string]fleetapi.HandshakeCount{}
	for _, h := range hbs[len(hbs)-1].Handshakes {
		got[h.Outcome] = h
		if strconv.Itoa(h.Port) != port {
			t.Errorf("count for port %d, the relay port is %s", h.Port, port)
		}
	}
	if acc := got[listener.Accepted]; acc.Count != 2 || acc.ClientIP != "127.0.0.2" || acc.AgentGUID != "reader-1" || acc.Version != "TLSv1.3" || acc.FirstSeen == "" {
		t.Errorf("accepted handshakes reported as %+v", acc)
	}
	if rej := got[listener.Rejected]; rej.Count != 1 || rej.ClientIP != "127.0.0.3" || rej.OfferedMax != "TLSv1.1" || !strings.Contains(rej.Reason, "protocol_version") {
		t.Errorf("the refused handshake reported as %+v", rej)
	}
	if len(got) != 2 {
		t.Errorf("reported %+v", hbs[len(hbs)-1].Handshakes)
	}
	// Delivered: the next heartbeat carries none, and state.json keeps none for dsa_control -m.
	a.CheckInNow()
	ev.beat(t)
	hbs = m.Computer(guid).Heartbeats
	if h := hbs[len(hbs)-1]; len(h.Handshakes) != 0 || h.HandshakesDropped != 0 {
		t.Errorf("a delivered count was sent again: %+v", h.Handshakes)
	}
	if r := mustState(t, a.o.Dir).Reported; r == nil || len(r.Handshakes) != 0 {
		t.Errorf("state.json keeps handshake counts for dsa_control -m to send again: %+v", r)
	}
}
