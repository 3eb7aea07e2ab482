package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/install"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/testtarget"
)

// secondNode starts another Manager node on a's database (named in its own install folder's
// configuration.properties: the same SQLite file, or the same PostgreSQL database under
// TLSFLEET_TEST_DB=postgres) and a's fleet CA.
func secondNode(t *testing.T, a *Manager, name string, tune ...func(*Options)) *Manager {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node-"+name)
	cp, hp := testtarget.FreePort(t), testtarget.FreePort(t)
	if _, err := install.InitFiles(dir, cp, hp); err != nil {
		t.Fatal(err)
	}
	appendConfig(t, dir, strings.TrimSuffix(a.folder.Database.Properties(), "\n")) // a's SQLite file or PostgreSQL database
	appendConfig(t, dir, install.KeyNodeName+"="+name)
	for _, f := range []string{pki.CAFile, pki.CAKeyFile} {
		b, err := os.ReadFile(a.folder.Path(f))
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return startManager(t, func(o *Options) {
		for _, f := range tune {
			f(o)
		}
		o.Dir, o.ConsolePort, o.HeartbeatPort = dir, cp, hp
	})
}

// appendConfig adds a line to an install's configuration.properties.
func appendConfig(t *testing.T, dir, line string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, install.ConfigFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Fatal(err)
	}
}

// leaders counts the nodes that run the fleet jobs.
func leaders(ms ...*Manager) int {
	n := 0
	for _, m := range ms {
		if m.isLeader() {
			n++
		}
	}
	return n
}

// Two Manager nodes on one database: both are listed online; exactly one runs the fleet jobs; an agent
// activated through one heartbeats through the other, and its policy lists both nodes' agent channels;
// when the job runner stops, the other takes the jobs over and is listed alone online in time.
func TestTwoNodesOneDatabase(t *testing.T) {
	a := startManager(t, func(o *Options) { o.Logger = slog.New(slog.DiscardHandler) })
	b := secondNode(t, a, "node-b")
	nodes, err := a.Ops().ListManagerNodes(t.Context())
	if err != nil || len(nodes) != 2 {
		t.Fatalf("nodes %+v %v", nodes, err)
	}
	for _, n := range nodes {
		if n.Status != "online" {
			t.Errorf("node %s is %s", n.Name, n.Status)
		}
	}
	if n := leaders(a, b); n != 1 {
		t.Fatalf("%d nodes run the fleet jobs, want 1", n)
	}

	agent := activateTestAgent(t, a, "web1")
	both := []string{a.AgentAddr(), b.AgentAddr()}
	slices.Sort(both)
	var policy *fleetapi.Policy
	eventually(t, 5*time.Second, "a heartbeat through node B with the policy listing both nodes", func() bool {
		code, hr, _ := agent.beat(t, b, fleetapi.Heartbeat{AgentVersion: "1.0", TLSVersions: []string{"TLSv1.3"}})
		if code == 200 && hr.Policy != nil {
			policy = hr.Policy
		}
		return code == 200 && policy != nil && slices.Equal(policy.Managers, both)
	})
	for range 5 { // through rounds of both nodes' fleet loops: never two job runners
		ra, rb := a.node.rounds.Load(), b.node.rounds.Load()
		eventually(t, 5*time.Second, "a round of both fleet loops", func() bool {
			return a.node.rounds.Load() > ra && b.node.rounds.Load() > rb
		})
		if n := leaders(a, b); n != 1 {
			t.Fatalf("%d nodes run the fleet jobs, want 1", n)
		}
	}

	leader, other := a, b
	if b.isLeader() {
		leader, other = b, a
	}
	leader.Close()
	eventually(t, 3*time.Second, "the other node taking the fleet jobs over", other.isLeader)
	eventually(t, 5*time.Second, "the stopped node listed offline", func() bool {
		nodes, err := other.Ops().ListManagerNodes(t.Context())
		if err != nil {
			return false
		}
		online := 0
		for _, n := range nodes {
			if n.Status == "online" {
				online++
			}
		}
		return online == 1
	})
	// One node left: the policies no longer list nodes (a single Manager's policies are as they were).
	eventually(t, 5*time.Second, "a policy without the manager list", func() bool {
		code, hr, _ := agent.beat(t, other, fleetapi.Heartbeat{})
		return code == 200 && hr.Policy != nil && hr.Policy.Managers == nil
	})
}

// A job runner that dies (its fleet loop stops, no lease released) leaves its lease to expire: the
// other node takes the jobs over after the lease's TTL, not before.
func TestDeadNodeLeaseExpires(t *testing.T) {
	a := startManager(t, nil)
	b := secondNode(t, a, "node-b")
	eventually(t, 5*time.Second, "one job runner", func() bool { return leaders(a, b) == 1 })
	leader, other := a, b
	if b.isLeader() {
		leader, other = b, a
	}
	leader.cancel() // the background work stops as in a kill -9: nothing is released
	<-leader.node.stopped
	died := time.Now()
	took := eventually(t, 5*time.Second, "the other node taking the fleet jobs over", other.isLeader)
	if ttl := leader.leaseTTL(); time.Since(died) < ttl-other.opts.FlushInterval {
		t.Errorf("took over after %s, before the lease's TTL %s expired", took, ttl)
	}
}

// A change made through one node (its API: the operations layer with its hooks) takes effect on the
// other within 2 s, with the default intervals (settings polled every 500 ms, the fleet loop every
// second): a setting on its ports, a policy on an agent heartbeating there, an API key revocation on
// its API (at once: keys are read on every request), a deactivation on its agent channel.
func TestChangesOnOneNodeReachTheOther(t *testing.T) {
	defaults := func(o *Options) { o.PollInterval, o.FlushInterval = DefaultPollInterval, DefaultFlushInterval }
	a := startManager(t, defaults)
	b := secondNode(t, a, "node-b", defaults)
	ctx := t.Context()
	agent := activateTestAgent(t, a, "web1")
	eventually(t, 5*time.Second, "node B answering the agent with its policy", func() bool {
		code, hr, _ := agent.beat(t, b, fleetapi.Heartbeat{AgentVersion: "1.0", TLSVersions: []string{"TLSv1.2", "TLSv1.3"}})
		return code == 200 && hr.Policy != nil
	})
	key, err := a.Ops().CreateAPIKey(ctx, ops.KeyRequest{Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := rawCall(t, b, "GET", "/api/settings", key.Key, nil, nil, ""); code != 200 {
		t.Fatalf("node B refused a new key: %d %s", code, body)
	}
	tls12 := func(addr string) bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	steps := []struct {
		name   string
		change func() error
		done   func() bool
	}{
		{"setting: node B's ports refuse TLS 1.2",
			func() error {
				_, err := a.Ops().ChangeSetting(ctx, "test", settings.ManagerMinimumTLS, "TLSv1.3")
				return err
			},
			func() bool { return !tls12(b.ConsoleAddr()) && !tls12(b.AgentAddr()) }},
		{"policy: the agent heartbeating on node B gets it",
			func() error {
				_, err := a.Ops().ChangeSetting(ctx, "test", settings.NewNodeMinimumTLS, "TLSv1.3")
				return err
			},
			func() bool {
				code, hr, _ := agent.beat(t, b, fleetapi.Heartbeat{})
				return code == 200 && hr.Policy != nil && hr.Policy.Agent.MinVersion == "TLSv1.3"
			}},
		{"API key revocation: node B answers 401",
			func() error {
				_, err := a.Ops().RevokeAPIKey(ctx, "ops")
				return err
			},
			func() bool {
				code, _ := rawCall(t, b, "GET", "/api/settings", key.Key, nil, nil, "")
				return code == 401
			}},
		{"deactivation: node B refuses the agent",
			func() error {
				_, err := a.Ops().SetDeactivated(ctx, "web1", true)
				return err
			},
			func() bool { return !agent.accepted(b) }},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		took := eventually(t, 2*time.Second, st.name, st.done)
		t.Logf("%s: %s after the change on node A", st.name, took.Round(time.Millisecond))
	}
}

// accepted sends a heartbeat to m and reports whether it was answered 200 (a refused handshake, as
// for a revoked certificate, is a no).
func (a *testAgent) accepted(m *Manager) bool {
	a.seq++
	b, _ := json.Marshal(fleetapi.Heartbeat{Seq: a.seq, PolicyFingerprint: a.fp})
	resp, err := a.http.Post("https://"+m.AgentAddr()+fleetapi.PathHeartbeat, "application/json", bytes.NewReader(b))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// chanNotifier is a store.Notifier the test fires.
type chanNotifier chan struct{}

func (c chanNotifier) Changes(context.Context) <-chan struct{} { return c }

// A notification from the database (LISTEN/NOTIFY on PostgreSQL) makes the Manager read a change at
// once, without waiting for its poll (an hour here).
func TestNotifierBringsTheReadForward(t *testing.T) {
	n := make(chanNotifier, 1)
	m := startManager(t, func(o *Options) { o.PollInterval, o.Notifier = time.Hour, n })
	if _, _, err := m.db.(*store.DB).SetSetting(t.Context(), settings.ManagerMinimumTLS, "TLSv1.3", "another node"); err != nil {
		t.Fatal(err)
	}
	refuses12 := func() bool {
		c, err := tls.Dial("tcp", m.ConsoleAddr(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
		}
		return err != nil
	}
	if refuses12() {
		t.Fatal("the change applied before any read")
	}
	n <- struct{}{}
	eventually(t, 2*time.Second, "the console refusing TLS 1.2 after the notification", refuses12)
}
