package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/tlspolicy"
)

// A session is one activated identity's life: its heartbeats, the policy it runs and applies, its
// listeners (4118 and, for a relay, 4122).

// session is one identity's life: its clients, ports, heartbeat loop and bundle sync.
type session struct {
	a           *Agent
	id          *identity
	cert        tlspolicy.CertInfo
	ctx         context.Context
	cancel      context.CancelFunc
	client      *http.Client // to the Manager (heartbeats, mirroring)
	relayClient *http.Client // to relays (bundle downloads)
	syncWake    chan struct{}
	wg          sync.WaitGroup
	renewed     atomic.Bool // the session ended to restart with a renewed certificate
	// listen and relayListen are the addresses to bind: the Options', or after a renewal those the
	// previous session had bound (so that a port picked by ":0" stays where the Manager and agents know it).
	listen, relayListen string
	crlMu               sync.Mutex // one CRL installed at a time
	crl                 atomic.Pointer[pki.CRL]
	// manager is the Manager node the last heartbeat reached (HOST:PORT); the CRL, bundles and renewals
	// are fetched from it.
	manager atomic.Pointer[string]

	mu       sync.Mutex
	policy   *fleetapi.Policy
	interval time.Duration // from the Manager's last answer (0: the policy's)
	agentSrv *tlsServer
	relaySrv *tlsServer
	bound    [2]string            // the agent and relay ports' addresses when the session closed them
	verified map[string]fileStamp // bundles hashed on disk and found intact
	hs       *handshakeLog        // what the ports saw since the last accepted heartbeat
	hsSent   hsSent               // what the heartbeat in flight carries (heartbeat loop only)
	lowest   tlspolicy.Version    // legacy: the oldest version the Manager accepts (probed once)
	probed   bool
	quiet    bool // manager-initiated: heartbeats paused (logged once)
}

// newSession starts an identity's session; bound, when set, are the addresses a previous session of the
// same agent had bound (agent port, relay port), to bind again.
func (a *Agent) newSession(ctx context.Context, id *identity, st *State, bound [2]string) (*session, error) {
	ci, err := tlspolicy.CertInfoOf(id.server)
	if err != nil {
		return nil, err
	}
	s := &session{a: a, id: id, cert: ci, listen: a.o.Listen, relayListen: a.o.RelayListen, syncWake: make(chan struct{}, 1), verified: map[string]fileStamp{}, hs: newHandshakeLog(a.o.onHandshake)}
	s.listen, s.relayListen = cmp.Or(bound[0], s.listen), cmp.Or(bound[1], s.relayListen)
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.client = newManagerClient(id, a.legacyMax)
	s.relayClient = newRelayClient(id, a.legacyMax)
	s.loadCRL()
	if st.Policy != nil {
		if err := st.Policy.Validate(); err != nil {
			a.warn("the stored policy is invalid: ignored until the Manager sends one", "err", err)
			st.Policy = nil
		}
	}
	if err := s.apply(st.Policy); err != nil {
		s.close()
		return nil, err
	}
	a.info("agent started", "guid", id.guid, "manager", id.manager, "listen", s.agentAddr(), "policy", policyName(st.Policy))
	return s, nil
}

// run runs the session until its context ends, then closes it.
func (s *session) run() {
	s.wg.Add(3)
	go func() { defer s.wg.Done(); heartbeatLoop(s.ctx, s.beat, rand.Float64, s.a.wake) }()
	go func() { defer s.wg.Done(); s.watch() }()
	go func() { defer s.wg.Done(); s.syncLoop() }()
	<-s.ctx.Done()
	s.close()
}

// close stops everything the session started and waits for its goroutines.
func (s *session) close() {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	if s.agentSrv != nil {
		s.agentSrv.close()
		s.bound[0], s.agentSrv = s.agentSrv.addr, nil
	}
	if s.relaySrv != nil {
		s.relaySrv.close()
		s.bound[1], s.relaySrv = s.relaySrv.addr, nil
	}
	s.mu.Unlock()
	s.client.CloseIdleConnections()
	s.relayClient.CloseIdleConnections()
}

// boundAddrs are the addresses the session's ports had when it closed them.
func (s *session) boundAddrs() [2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound
}

func (s *session) currentPolicy() *fleetapi.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy
}

func (s *session) agentAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.agentSrv != nil {
		return s.agentSrv.addr
	}
	return ""
}

func policyName(p *fleetapi.Policy) string {
	if p == nil {
		return "none yet"
	}
	return fmt.Sprintf("%s serial %d (%s)", p.PolicyID, p.Serial, p.Fingerprint())
}

func samePolicy(a, b *fleetapi.Policy) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Serial == b.Serial && a.Fingerprint() == b.Fingerprint()
}

// heartbeatInterval is the wait between heartbeats: the Manager's last word, else the policy's, else
// the default.
func (s *session) heartbeatInterval() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interval > 0 {
		return s.interval
	}
	if s.policy != nil && s.policy.HeartbeatSeconds > 0 {
		return time.Duration(s.policy.HeartbeatSeconds) * time.Second
	}
	return fleetapi.DefaultHeartbeatS * time.Second
}

// body is the heartbeat the agent sends (Seq is filled in by heartbeatOnce).
func (s *session) body(st *State) fleetapi.Heartbeat {
	hb := fleetapi.Heartbeat{
		AgentVersion: s.a.version, Platform: runtime.GOOS + "/" + runtime.GOARCH,
		TLSVersions: clientVersions(s.a.legacyMax), Legacy: s.a.legacyMax != 0,
	}
	if st.Policy != nil {
		hb.PolicyFingerprint = st.Policy.Fingerprint()
	}
	s.attachHandshakes(&hb)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.agentSrv != nil {
		hb.Listen = s.agentSrv.addr
	}
	if s.policy != nil && s.policy.Relay != nil {
		rs := &fleetapi.RelayStatus{Bundles: localBundles(s.a.o.Dir)}
		if s.relaySrv != nil {
			rs.Listen = s.relaySrv.addr
		}
		hb.Relay = rs
	}
	return hb
}

// prepare runs under the state lock before each heartbeat: it applies a policy stored by dsa_control -m
// and retries ports that failed to bind.
func (s *session) prepare(st *State) error {
	if st.Policy != nil && st.Policy.Validate() != nil {
		return nil
	}
	if err := s.apply(st.Policy); err != nil {
		s.a.warn("policy not fully applied", "err", err)
	}
	return nil
}

// beat sends one heartbeat and classifies the result for the scheduler. Under a manager-initiated policy
// the agent sends none: the Manager polls its port 4118 and pushes policies there (dsa_control -m still
// checks in by hand).
func (s *session) beat(ctx context.Context) beatResult {
	// Renewal first, whatever the direction: a manager-initiated agent sends no heartbeats but must not
	// let its certificate expire.
	if s.maybeRenew(ctx) {
		s.renewed.Store(true)
		s.cancel()
		return beatResult{outcome: outcomeFailed, interval: time.Second}
	}
	if p := s.currentPolicy(); p != nil && p.Direction == fleetapi.ManagerInitiated && s.agentAddr() != "" {
		s.mu.Lock()
		quiet := s.quiet
		s.quiet = true
		s.mu.Unlock()
		if !quiet {
			s.a.info("communication is manager-initiated: no heartbeats; the Manager polls this agent's port", "listen", s.agentAddr())
		}
		return beatResult{outcome: outcomeOK, interval: s.heartbeatInterval()}
	}
	s.mu.Lock()
	s.quiet = false
	s.mu.Unlock()
	res, err := heartbeatOnce(ctx, s.a.o.Dir, s.id.guid, s.client, s.body, s.prepare, s.apply)
	if errors.Is(err, errReset) {
		s.a.info("the state folder was reset or activated again: closing this identity's ports", "guid", s.id.guid)
		s.cancel()
		return beatResult{outcome: outcomeFailed, interval: time.Second}
	}
	if ctx.Err() != nil {
		return beatResult{outcome: outcomeFailed, interval: time.Second}
	}
	if hook := s.a.o.OnHeartbeat; hook != nil {
		defer hook(res, err) // after the log line and the state it describes
	}
	if res != nil && res.Accepted {
		s.manager.Store(&res.Manager)
	}
	if res != nil && res.FailedOver != "" {
		s.a.warn("the Manager node in use did not answer: this agent uses another node now", "manager", res.Manager,
			"previous", res.FailedOver, "unreachable", strings.Join(res.Unreachable, "; "))
	}
	if res != nil && res.Accepted {
		s.mu.Lock()
		if n := res.Response.IntervalSeconds; n > 0 {
			s.interval = time.Duration(min(n, 86400)) * time.Second
		}
		s.probed = false
		s.mu.Unlock()
		s.handshakesDelivered()
		s.fetchCRL(ctx, res.Response.CRLNumber)
	}
	r := beatResult{outcome: outcomeOK, interval: s.heartbeatInterval()}
	var me *ManagerError
	switch {
	case res != nil && res.Accepted:
		s.a.info("heartbeat accepted", "manager", res.Manager, "seq", res.Seq, "tls", res.TLSVersion, "resumed", res.Resumed, "policy", policyName(res.Policy), "new_policy", res.PolicyChanged)
		if err != nil {
			s.a.warn("heartbeat accepted, but", "err", err)
		}
		for _, c := range res.Response.Commands {
			switch c {
			case "checkin":
				r.outcome = outcomeCheckIn
			default:
				s.a.warn("the Manager sent an unknown command: ignored", "command", c)
			}
		}
		s.kickSync()
	case errors.As(err, &me) && me.Status == http.StatusForbidden:
		s.a.error(me.Error()+" (retrying slowly; reactivate with dsa_control -r and -a if this computer was deactivated)", "seq", res.Seq)
		r.outcome = outcomeRefused
	case certRefused(err):
		s.a.error("the Manager refused this agent's certificate in the handshake: it is revoked (the computer was deactivated, "+
			"or the certificate superseded by a renewal) or its key is below the Manager's java.security (retrying slowly; dsm_c -action reactivate lifts a deactivation)",
			"serial", s.id.client.Leaf.SerialNumber.Text(16), "err", err)
		r.outcome = outcomeRefused
	case errors.As(err, &me) && me.Status == http.StatusConflict:
		s.a.warn(me.Error()+" (state restored from a backup, or a cloned agent?): continuing with a higher seq", "seq", res.Seq, "next_seq", res.SeqSkippedTo+1)
		r.outcome = outcomeFailed
	default:
		r.outcome = outcomeFailed
		if line := s.legacyLine(ctx, err); line != "" {
			s.a.log.Error(line, "err", err)
		} else {
			s.a.warn("heartbeat failed", "err", err)
		}
	}
	return r
}

// legacyLine explains a refused legacy handshake, probing the Manager's lowest version once per session.
func (s *session) legacyLine(ctx context.Context, err error) string {
	if s.a.legacyMax == 0 {
		return ""
	}
	if _, ok := versionRefused(err); !ok {
		return ""
	}
	s.mu.Lock()
	probed, lowest := s.probed, s.lowest
	s.mu.Unlock()
	if !probed {
		lowest = ProbeLowestVersion(ctx, s.managerAddr(), s.id.host, s.a.legacyMax)
		s.mu.Lock()
		s.probed, s.lowest = true, lowest
		s.mu.Unlock()
	}
	return ExplainRefusal("the Manager", s.a.legacyMax, err, lowest)
}

// watch looks at state.json every StateCheck: a reset or a new activation ends the session; a policy
// stored by another process (dsa_control -m) is applied.
func (s *session) watch() {
	t := time.NewTicker(s.a.o.StateCheck)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		st, err := LoadState(s.a.o.Dir)
		if errors.Is(err, ErrNotActivated) || err == nil && st.GUID != s.id.guid {
			s.a.info("the state folder was reset or activated again: closing this identity's ports", "guid", s.id.guid)
			s.cancel()
			return
		}
		if err != nil || samePolicy(st.Policy, s.currentPolicy()) || st.Policy != nil && st.Policy.Validate() != nil {
			continue
		}
		unlock, err := lockDir(s.ctx, s.a.o.Dir)
		if err != nil {
			continue
		}
		if st, err := LoadState(s.a.o.Dir); err == nil && st.GUID == s.id.guid {
			if err := s.apply(st.Policy); err != nil {
				s.a.warn("policy not fully applied", "err", err)
			}
		}
		unlock()
	}
}

// apply puts a policy in force: the agent port (open unless agent-initiated, TLS settings swapped live),
// the relay port (open while the policy has a relay role), bundle sync. It is idempotent: listeners'
// TLS configurations change only when their settings do. Callers hold the state lock (or own the
// session alone).
func (s *session) apply(p *fleetapi.Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return nil
	}
	changed := !samePolicy(s.policy, p)
	s.policy = p
	var errs []error

	agentTLS := fleetapi.TLSSettings{MinVersion: tlspolicy.TLSv1_2.String()}
	if p != nil {
		agentTLS = p.Agent
	}
	switch {
	case p == nil || p.Direction != fleetapi.AgentInitiated:
		if s.agentSrv == nil {
			srv, err := s.startServer(tlspolicy.RoleAgent, s.listen, agentTLS, s.agentHandler())
			if err != nil {
				errs = append(errs, fmt.Errorf("agent port %s: %w", s.listen, err))
				break
			}
			s.agentSrv = srv
			s.a.info("agent port listening (mutual TLS, the Manager only)", "addr", srv.addr, "tls", srv.describe())
		} else if err := s.agentSrv.update(agentTLS, s.cert); err != nil {
			errs = append(errs, fmt.Errorf("agent port: %w", err))
		}
	case s.agentSrv != nil:
		s.a.info("policy direction is agent-initiated: closing the agent port", "addr", s.agentSrv.addr)
		s.agentSrv.shutdown()
		s.agentSrv = nil
	}

	if p != nil && p.Relay != nil {
		want := s.relayListen
		if want == "" {
			want = ":" + strconv.Itoa(p.Relay.Port)
		}
		if s.relaySrv != nil && s.relaySrv.want != want {
			s.a.info("relay port moves", "from", s.relaySrv.addr, "to", want)
			s.relaySrv.shutdown()
			s.relaySrv = nil
		}
		if s.relaySrv == nil {
			srv, err := s.startServer(tlspolicy.RoleRelay, want, p.Relay.TLS, s.relayHandler())
			if err != nil {
				errs = append(errs, fmt.Errorf("relay port %s: %w", want, err))
			} else {
				s.relaySrv = srv
				s.a.info("relay port listening", "addr", srv.addr, "group", p.Relay.Group, "tls", srv.describe())
			}
		} else if err := s.relaySrv.update(p.Relay.TLS, s.cert); err != nil {
			errs = append(errs, fmt.Errorf("relay port: %w", err))
		}
	} else if s.relaySrv != nil {
		s.a.info("the policy has no relay role any more: closing the relay port", "addr", s.relaySrv.addr)
		s.relaySrv.shutdown()
		s.relaySrv = nil
	}
	if changed && p != nil {
		s.a.info("policy in force", "policy", policyName(p), "direction", p.Direction, "agent_min_tls", p.Agent.MinVersion,
			"relay", p.Relay != nil, "bundles", len(p.Bundles), "heartbeat_s", p.HeartbeatSeconds)
	}
	if changed {
		s.interval = 0 // the new policy's interval applies until the Manager says otherwise
	}
	s.kickSync()
	return errors.Join(errs...)
}

func (s *session) status() fleetapi.Status {
	st := fleetapi.Status{GUID: s.id.guid, Manager: s.managerAddr()}
	if ls, err := LoadState(s.a.o.Dir); err == nil {
		if !ls.LastHeartbeat.IsZero() {
			st.LastHeartbeat = ls.LastHeartbeat.UTC().Format(time.RFC3339)
		}
		st.NegotiatedTLS = ls.NegotiatedTLS
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policy != nil {
		st.PolicyFingerprint, st.PolicySerial = s.policy.Fingerprint(), s.policy.Serial
	}
	st.Relay = s.relaySrv != nil
	n := s.crlNumber()
	st.CRLNumber = &n
	return st
}

// localBundles lists the bundles in the state folder (by SHA-256).
func localBundles(dir string) []string {
	out := []string{}
	ents, err := os.ReadDir(bundlesPath(dir))
	if err != nil {
		return out
	}
	for _, e := range ents {
		if e.Type().IsRegular() && validSHA(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// managerAddr is the Manager node in use: the one the last heartbeat reached, else the state's.
func (s *session) managerAddr() string {
	if p := s.manager.Load(); p != nil {
		return *p
	}
	return s.id.manager
}
