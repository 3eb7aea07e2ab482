package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"tlsfleet/internal/fleet"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

// fleetState is the agent channel's in-memory view of the computers: heartbeats are answered from it and
// recorded in it, and written to the database in batches (one transaction a second, not one per
// heartbeat) — the path a Manager node serving 100,000 agents at one heartbeat a minute needs.
type fleetState struct {
	mu      sync.Mutex
	comps   map[string]*compState
	pending map[string]store.CheckIn
	dirty   bool // a relay's address changed: other computers' policies may change
	version int64
}

type compState struct {
	c        store.Computer
	policy   *fleetapi.Policy
	lastSeq  uint64
	lastSeen time.Time
}

// sqliteDB gives the fleet code the concrete store (relays, releases) behind the Manager's interface.
func (m *Manager) sqliteDB() *store.DB { return m.db.(*store.DB) }

// refreshFleet reloads the computers from the database, keeping what heartbeats taught since.
func (m *Manager) refreshFleet(ctx context.Context) error {
	// The version first: a change committed between the two reads is then seen again by the next poll.
	ver, err := m.sqliteDB().FleetVersion(ctx)
	if err != nil {
		return err
	}
	cs, err := m.sqliteDB().Computers(ctx)
	if err != nil {
		return err
	}
	m.fleet.mu.Lock()
	defer m.fleet.mu.Unlock()
	next := make(map[string]*compState, len(cs))
	for _, c := range cs {
		st := &compState{c: c, lastSeq: c.LastSeq}
		if t, err := time.Parse(time.RFC3339Nano, c.LastSeen); err == nil {
			st.lastSeen = t
		}
		if old := m.fleet.comps[c.GUID]; old != nil {
			st.lastSeq = max(st.lastSeq, old.lastSeq)
			if old.lastSeen.After(st.lastSeen) {
				st.lastSeen = old.lastSeen
			}
			if p, ok := m.fleet.pending[c.GUID]; ok {
				st.c.PolicyAcked, st.c.RelayListen, st.c.Listen = p.PolicyAcked, p.RelayListen, p.Listen
			}
		}
		if c.PolicyJSON != "" {
			var p fleetapi.Policy
			if json.Unmarshal([]byte(c.PolicyJSON), &p) == nil {
				st.policy = &p
			}
		}
		next[c.GUID] = st
	}
	m.fleet.comps, m.fleet.version = next, ver
	return nil
}

// snapshot builds the policy inputs from the database.
func (m *Manager) snapshot(ctx context.Context) (*fleet.Snapshot, error) {
	return fleet.Load(ctx, m.sqliteDB())
}

// release runs the automatic release, refreshes the cache and pushes what changed.
func (m *Manager) release(ctx context.Context) {
	snap, err := m.snapshot(ctx)
	if err != nil {
		m.log.Error("computing policies", "err", err)
		return
	}
	if _, err := fleet.AutoRelease(ctx, m.sqliteDB(), snap); err != nil {
		m.log.Error("releasing policies", "err", err)
		return
	}
	m.syncFleet(ctx)
}

// syncFleet reloads the cache and pushes every released policy an agent has not confirmed.
func (m *Manager) syncFleet(ctx context.Context) {
	if err := m.refreshFleet(ctx); err != nil {
		m.log.Error("reading computers", "err", err)
		return
	}
	m.fleet.mu.Lock()
	var todo []pushJob
	for _, st := range m.fleet.comps {
		if st.policy != nil && st.c.PolicySent != st.c.PolicyAcked && st.c.Listen != "" && !st.c.Deactivated && st.policy.Direction != fleetapi.AgentInitiated {
			todo = append(todo, pushJob{guid: st.c.GUID, addr: st.c.Listen, policy: st.policy, fp: st.c.PolicySent})
		}
	}
	m.fleet.mu.Unlock()
	// Pushes outlive the request or poll that triggered them: they run on the Manager's own context.
	for _, j := range todo {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.push(m.runCtx, j.guid, j.addr, j.policy, j.fp)
		}()
	}
}

// pushJob is a copy, taken under the lock, of what a push needs.
type pushJob struct {
	guid, addr, fp string
	policy         *fleetapi.Policy
}

// agentClient calls an agent on its port 4118 with the Manager's certificate; the agent must present
// the certificate the fleet CA issued to that GUID. Each agent has one transport (its connection pool),
// kept until the Manager closes.
func (m *Manager) agentClient(guid string) *http.Client {
	m.agentMu.Lock()
	defer m.agentMu.Unlock()
	if m.agentTransports == nil {
		m.agentTransports = map[string]*http.Transport{}
	}
	t := m.agentTransports[guid]
	if t == nil {
		pool := x509.NewCertPool()
		pool.AddCert(m.ca.Cert)
		t = &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second,
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: guid, Certificates: []tls.Certificate{m.cert}, MinVersion: tls.VersionTLS12}}
		m.agentTransports[guid] = t
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: t}
}

// push sends a policy to an agent's port 4118 ("send policy now").
func (m *Manager) push(ctx context.Context, guid, addr string, p *fleetapi.Policy, fp string) {
	b, _ := json.Marshal(p)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "https://"+addr+fleetapi.PathPolicy, bytes.NewReader(b))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.agentClient(guid).Do(req)
	if err != nil {
		m.log.Info("policy push failed; the agent gets it at its next heartbeat", "guid", guid, "addr", addr, "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		m.log.Warn("agent refused the pushed policy", "guid", guid, "status", resp.Status)
		return
	}
	if err := m.sqliteDB().SetPolicyAcked(ctx, guid, fp); err == nil {
		m.fleet.mu.Lock()
		if st := m.fleet.comps[guid]; st != nil {
			st.c.PolicyAcked = fp
		}
		if c, ok := m.fleet.pending[guid]; ok { // a heartbeat not yet written must not undo the ack
			c.PolicyAcked = fp
			m.fleet.pending[guid] = c
		}
		m.fleet.mu.Unlock()
	}
	m.log.Info("policy pushed", "guid", guid, "fingerprint", fp)
}

// fleetLoop flushes heartbeats, follows releases made elsewhere (dsm_c), and polls agents when the
// Manager initiates communication.
func (m *Manager) fleetLoop(ctx context.Context) {
	t := time.NewTicker(m.opts.FlushInterval)
	defer t.Stop()
	lastPoll := time.Time{}
	for {
		select {
		case <-ctx.Done():
			m.flushCheckIns(context.WithoutCancel(ctx))
			return
		case <-t.C:
		}
		if dirty := m.flushCheckIns(ctx); dirty {
			m.release(ctx)
		}
		if ver, err := m.sqliteDB().FleetVersion(ctx); err == nil {
			m.fleet.mu.Lock()
			changed := ver != m.fleet.version
			m.fleet.mu.Unlock()
			if changed {
				m.release(ctx) // a role, group or bundle changed elsewhere (dsm_c): released as the settings say
			}
		}
		if m.direction(ctx) == fleetapi.ManagerInitiated && time.Since(lastPoll) >= m.pollEvery() {
			lastPoll = time.Now()
			m.pollAgents(ctx)
		}
	}
}

func (m *Manager) pollEvery() time.Duration {
	snap, err := m.snapshot(context.Background())
	if err != nil {
		return time.Minute
	}
	return time.Duration(snap.PolicyFor(store.Computer{}).HeartbeatSeconds) * time.Second
}

func (m *Manager) direction(ctx context.Context) string {
	vals, err := m.db.Settings(ctx)
	if err != nil {
		return fleetapi.Bidirectional
	}
	return settings.Values(vals).Get(settings.Direction)
}

// pollAgents is the manager-initiated direction: the Manager asks every agent for its status on 4118 and
// pushes its policy when the agent runs another.
func (m *Manager) pollAgents(ctx context.Context) {
	m.fleet.mu.Lock()
	var todo []pushJob
	for _, st := range m.fleet.comps {
		if st.c.Listen != "" && !st.c.Deactivated {
			todo = append(todo, pushJob{guid: st.c.GUID, addr: st.c.Listen, policy: st.policy, fp: st.c.PolicySent})
		}
	}
	m.fleet.mu.Unlock()
	// A few agents at a time, off the loop: unreachable agents cost their timeout, not the loop's time.
	sem := make(chan struct{}, 16)
	for _, j := range todo {
		sem <- struct{}{}
		m.wg.Add(1)
		go func() {
			defer func() { <-sem; m.wg.Done() }()
			m.pollAgent(ctx, j)
		}()
	}
}

func (m *Manager) pollAgent(ctx context.Context, j pushJob) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+j.addr+fleetapi.PathStatus, nil)
	if err != nil {
		return
	}
	resp, err := m.agentClient(j.guid).Do(req)
	if err != nil {
		m.log.Info("agent unreachable", "guid", j.guid, "addr", j.addr, "err", err)
		return
	}
	var s fleetapi.Status
	err = json.NewDecoder(io.LimitReader(resp.Body, fleetapi.MaxBody)).Decode(&s)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		m.log.Warn("agent status unreadable", "guid", j.guid, "status", resp.Status, "err", err)
		return
	}
	m.fleet.mu.Lock()
	st := m.fleet.comps[j.guid]
	if st == nil {
		m.fleet.mu.Unlock()
		return
	}
	st.lastSeen = time.Now()
	st.c.PolicyAcked = s.PolicyFingerprint
	m.fleet.pending[j.guid] = store.CheckIn{GUID: j.guid, LastSeen: st.lastSeen.UTC().Format(time.RFC3339Nano), Seq: st.lastSeq,
		Listen: st.c.Listen, RelayListen: st.c.RelayListen, NegotiatedTLS: st.c.NegotiatedTLS, AgentVersion: st.c.AgentVersion,
		Platform: st.c.Platform, TLSVersions: st.c.TLSVersions, PolicyAcked: s.PolicyFingerprint, Legacy: st.c.Legacy}
	m.fleet.mu.Unlock()
	if j.policy != nil && s.PolicyFingerprint != j.fp {
		m.push(ctx, j.guid, j.addr, j.policy, j.fp)
	}
}

// flushCheckIns writes the heartbeats counted since the last flush; it reports whether a relay's address
// changed.
func (m *Manager) flushCheckIns(ctx context.Context) bool {
	m.fleet.mu.Lock()
	batch := make([]store.CheckIn, 0, len(m.fleet.pending))
	for _, c := range m.fleet.pending {
		batch = append(batch, c)
	}
	m.fleet.pending = map[string]store.CheckIn{}
	dirty := m.fleet.dirty
	m.fleet.dirty = false
	m.fleet.mu.Unlock()
	if err := m.sqliteDB().RecordCheckIns(ctx, batch); err != nil {
		m.log.Error("recording heartbeats; kept for the next batch", "err", err, "count", len(batch))
		m.fleet.mu.Lock()
		for _, c := range batch {
			if _, newer := m.fleet.pending[c.GUID]; !newer {
				m.fleet.pending[c.GUID] = c
			}
		}
		m.fleet.dirty = m.fleet.dirty || dirty
		m.fleet.mu.Unlock()
		return false
	}
	return dirty
}

// agentIdentity returns the GUID of a verified client certificate, or writes the refusal.
func (m *Manager) agentIdentity(w http.ResponseWriter, r *http.Request) (*compState, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		writeError(w, http.StatusUnauthorized, "this endpoint needs the agent's certificate from the fleet CA (mutual TLS); activate first with dsa_control -a")
		return nil, false
	}
	guid := r.TLS.PeerCertificates[0].Subject.CommonName
	m.fleet.mu.Lock()
	st := m.fleet.comps[guid]
	m.fleet.mu.Unlock()
	if st == nil {
		m.refreshFleet(r.Context())
		m.fleet.mu.Lock()
		st = m.fleet.comps[guid]
		m.fleet.mu.Unlock()
	}
	switch {
	case st == nil:
		writeError(w, http.StatusForbidden, "computer %s is not known to this Manager", guid)
		return nil, false
	case st.c.Deactivated:
		m.log.Warn("refused a deactivated computer", "guid", guid, "hostname", st.c.Hostname, "client", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "computer %s (%s) is deactivated (dsm_c -action reactivate -name %s undoes it)", guid, st.c.Hostname, guid)
		return nil, false
	}
	return st, true
}

// reachable turns a reported listen address into the one others dial: the address the Manager saw the
// computer come from, with the reported port. (A computer cannot point others at another host.)
func reachable(listen, remote string) string {
	if listen == "" {
		return ""
	}
	_, p, err := net.SplitHostPort(listen)
	if n, perr := strconv.Atoi(p); err != nil || perr != nil || n < 1 || n > 65535 {
		return ""
	}
	rh, _, err := net.SplitHostPort(remote)
	if err != nil || net.ParseIP(rh) == nil {
		return ""
	}
	return net.JoinHostPort(rh, p)
}

// heartbeat answers an agent's check-in from memory; the database sees it in the next batch.
func (m *Manager) heartbeat(w http.ResponseWriter, r *http.Request) {
	st, ok := m.agentIdentity(w, r)
	if !ok {
		return
	}
	var hb fleetapi.Heartbeat
	// Unknown fields are allowed here: a newer agent may report more than this Manager knows.
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, fleetapi.MaxBody))
	if err := dec.Decode(&hb); err != nil {
		writeError(w, http.StatusBadRequest, "heartbeat: %v", err)
		return
	}
	now := time.Now()
	m.fleet.mu.Lock()
	if cur := m.fleet.comps[st.c.GUID]; cur != nil {
		st = cur // the cache may have been reloaded since agentIdentity
	}
	if st.c.Deactivated {
		m.fleet.mu.Unlock()
		writeError(w, http.StatusForbidden, "computer %s is deactivated", st.c.GUID)
		return
	}
	if hb.Seq <= st.lastSeq {
		last := st.lastSeq
		m.fleet.mu.Unlock()
		m.log.Warn("refused a replayed heartbeat", "guid", st.c.GUID, "seq", hb.Seq, "last", last)
		writeError(w, http.StatusConflict, "heartbeat seq %d is not above the last accepted (%d): a replay", hb.Seq, last)
		return
	}
	st.lastSeq, st.lastSeen = hb.Seq, now
	listen := reachable(hb.Listen, r.RemoteAddr)
	relayListen := ""
	if hb.Relay != nil {
		relayListen = reachable(hb.Relay.Listen, r.RemoteAddr)
	}
	if relayListen != st.c.RelayListen && st.c.Relay {
		m.fleet.dirty = true
	}
	st.c.Listen, st.c.RelayListen, st.c.PolicyAcked = listen, relayListen, hb.PolicyFingerprint
	m.fleet.pending[st.c.GUID] = store.CheckIn{GUID: st.c.GUID, LastSeen: now.UTC().Format(time.RFC3339Nano), Seq: hb.Seq, Listen: listen,
		RelayListen: relayListen, NegotiatedTLS: tlspolicy.Version(r.TLS.Version).String(), AgentVersion: hb.AgentVersion, Platform: hb.Platform,
		TLSVersions: strings.Join(hb.TLSVersions, ","), PolicyAcked: hb.PolicyFingerprint, Legacy: hb.Legacy}
	resp := fleetapi.HeartbeatResponse{IntervalSeconds: fleetapi.DefaultHeartbeatS}
	if st.policy != nil {
		resp.IntervalSeconds = st.policy.HeartbeatSeconds
		if hb.PolicyFingerprint != st.c.PolicySent {
			resp.Policy = st.policy
		}
	}
	m.fleet.mu.Unlock()
	if hb.Legacy {
		m.log.Info("heartbeat from the legacy simulator", "guid", st.c.GUID, "tls", tlspolicy.Version(r.TLS.Version).String())
	}
	m.recordHandshakes(st.c.GUID, &hb)
	writeJSON(w, http.StatusOK, resp)
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// bundle serves a published bundle to relays (mutual TLS).
func (m *Manager) bundle(w http.ResponseWriter, r *http.Request) {
	st, ok := m.agentIdentity(w, r)
	if !ok {
		return
	}
	m.fleet.mu.Lock()
	relay := st.c.Relay
	m.fleet.mu.Unlock()
	if !relay {
		writeError(w, http.StatusForbidden, "only relays mirror bundles from the Manager; agents download them from their relays")
		return
	}
	// A bundle may be large: allow an hour instead of the API's write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Hour))
	sum := r.PathValue("sha256")
	if !sha256RE.MatchString(sum) {
		writeError(w, http.StatusBadRequest, "%q is not a SHA-256 (64 lowercase hex digits)", sum)
		return
	}
	f, err := os.Open(filepath.Join(m.folder.Dir, "bundles", sum))
	if errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusNotFound, "no bundle %s", sum)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, sum, fi.ModTime(), f)
}

// missedHeartbeats is how many heartbeats a computer may miss before it counts as offline.
const missedHeartbeats = 3

// status says whether the computer checks in: online until it has missed missedHeartbeats heartbeats of
// its policy's interval, then offline.
func (st *compState) status() string {
	interval := time.Duration(fleetapi.DefaultHeartbeatS) * time.Second
	if st.policy != nil {
		interval = time.Duration(st.policy.HeartbeatSeconds) * time.Second
	}
	switch {
	case st.c.Deactivated:
		return "deactivated"
	case st.lastSeen.IsZero():
		return "never seen"
	case time.Since(st.lastSeen) <= missedHeartbeats*interval:
		return "online"
	}
	return "offline"
}

// computersView is the API's view of a computer, with its status.
type computersView struct {
	store.Computer
	Status  string `json:"status"`
	Pending bool   `json:"policy_pending"`
}

func (m *Manager) apiComputers(w http.ResponseWriter, r *http.Request) {
	m.fleet.mu.Lock()
	out := make([]computersView, 0, len(m.fleet.comps))
	for _, st := range m.fleet.comps {
		out = append(out, computersView{Computer: st.c, Status: st.status(), Pending: st.c.PolicySent != st.c.PolicyAcked})
	}
	m.fleet.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// apiSendPolicy is send policy over the REST API: {"computers": [...]} | {"relay_group": "G"} |
// {"all_relays": true}.
func (m *Manager) apiSendPolicy(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Computers  []string `json:"computers"`
		RelayGroup string   `json:"relay_group"`
		AllRelays  bool     `json:"all_relays"`
	}
	if err := fleetapi.DecodeJSON(w, r, 64<<10, &body); err != nil {
		writeError(w, http.StatusBadRequest, `send {"computers": [...]}, {"relay_group": "G"} or {"all_relays": true} (%v)`, err)
		return
	}
	n := 0
	for _, set := range []bool{len(body.Computers) > 0, body.RelayGroup != "", body.AllRelays} {
		if set {
			n++
		}
	}
	if n != 1 {
		writeError(w, http.StatusBadRequest, "name exactly one of computers, relay_group, all_relays")
		return
	}
	t := fleet.Target{RelayGroup: body.RelayGroup, AllRelays: body.AllRelays}
	for _, name := range body.Computers {
		c, err := m.sqliteDB().FindComputer(r.Context(), name)
		if err != nil {
			writeError(w, http.StatusNotFound, "%v", err)
			return
		}
		t.GUIDs = append(t.GUIDs, c.GUID)
	}
	snap, err := m.snapshot(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	released, err := fleet.Release(r.Context(), m.sqliteDB(), snap, t)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	m.syncFleet(r.Context())
	out := map[string]string{}
	for guid, p := range released {
		out[guid] = p.Fingerprint()
	}
	writeJSON(w, http.StatusOK, map[string]any{"released": out, "note": fmt.Sprintf("%d computer(s) got a new policy; the others already had it", len(out))})
}
