package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/tlspolicy"
)

// Options configure a running agent (tlsfleet agent).
type Options struct {
	// Dir is the state folder (required).
	Dir string
	// Listen is the agent port's address (default ":4118"); "127.0.0.1:0" picks a free port.
	Listen string
	// RelayListen is the relay port's address when the policy makes this agent a relay (default
	// ":"+policy.Relay.Port).
	RelayListen string
	// LegacyMaxTLS turns on the legacy simulator: the agent's client speaks at most this version
	// (TLSv1 or TLSv1.1) and reports Legacy.
	LegacyMaxTLS string
	// ReportVersion is the agent version reported (default Version; LegacyReportVersion when legacy).
	ReportVersion string
	// Logger receives the agent's log (default: text on stderr).
	Logger *slog.Logger
	// OnHeartbeat, when set, is called after every heartbeat, once it is logged and recorded in
	// state.json (res is nil when the heartbeat never reached the network, e.g. the state lock failed).
	OnHeartbeat func(*CheckInResult, error)
	// ActivationFingerprint lets a Manager activate this agent (dsm_c -action addcomputer -activate) when
	// its offer names this fleet CA fingerprint; a ca.pem pre-bound in Dir does the same. Without either
	// (or AcceptAnyActivation, trust on first use), the agent takes no offers: anyone reaching its port
	// could otherwise enroll it with their own Manager.
	ActivationFingerprint string
	AcceptAnyActivation   bool
	// StateCheck is how often the agent looks at state.json for changes made by dsa_control (-m stores a
	// policy, -r resets, -a activates); default 2 s.
	StateCheck time.Duration
	// MaxConns and MaxConnsPerAddress bound the connections each of the agent's ports (4118, and 4122 on
	// a relay) holds open, in all and from one client address (--max-conns, --max-conns-per-address);
	// 0 keeps each port's default (listener.DefaultLimits: 4118 256 and 64, 4122 16,384 and 4,096).
	MaxConns, MaxConnsPerAddress int

	onHandshake func(listener.Observation) // tests: every observation of the ports, once counted
}

// Agent is a running agent. It survives resets: after dsa_control -r it closes its ports and waits for
// a new activation.
type Agent struct {
	o         Options
	legacyMax tlspolicy.Version
	limits    map[tlspolicy.Role]listener.Limits
	version   string
	log       *slog.Logger
	prefix    string
	cancel    context.CancelFunc
	done      chan struct{}
	wake      chan struct{}

	mu   sync.Mutex
	sess *session
}

// Run runs an agent until ctx ends.
func Run(ctx context.Context, o Options) error {
	a, err := Start(ctx, o)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return a.Close()
}

// Start starts an agent and returns once its ports are bound (when it is activated; otherwise it waits
// for an activation in the background). The first heartbeat goes out at once. Close (or ctx's end)
// stops it.
func Start(ctx context.Context, o Options) (*Agent, error) {
	if o.Dir == "" {
		return nil, fmt.Errorf("%w: the agent needs its state folder: --dir STATE", ErrUsage)
	}
	legacyMax, err := ParseLegacyMax(o.LegacyMaxTLS, false)
	if err != nil {
		return nil, err
	}
	if o.Listen == "" {
		o.Listen = ":" + strconv.Itoa(fleetapi.DefaultAgentPort)
	}
	if o.StateCheck <= 0 {
		o.StateCheck = 2 * time.Second
	}
	limits, err := portLimits(o)
	if err != nil {
		return nil, err
	}
	a := &Agent{o: o, legacyMax: legacyMax, limits: limits, version: o.ReportVersion, log: o.Logger, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if legacyMax != 0 {
		a.prefix = "legacy simulator: "
		if a.version == "" {
			a.version = LegacyReportVersion
		}
	}
	if a.version == "" {
		a.version = Version
	}
	ctx, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	id, st, err := loadIdentity(o.Dir)
	var s *session
	switch {
	case err == nil:
		if s, err = a.newSession(ctx, id, st); err != nil {
			cancel()
			return nil, err
		}
	case errors.Is(err, ErrNotActivated):
		a.info("not activated yet: waiting for dsa_control -a", "dir", o.Dir)
	default:
		cancel()
		return nil, err
	}
	if legacyMax != 0 {
		speaks := "only " + wireName(tlspolicy.TLSv1)
		if legacyMax > tlspolicy.TLSv1 {
			speaks = wireName(tlspolicy.TLSv1) + " to " + wireName(legacyMax)
		}
		a.info("the client side speaks "+speaks+" (like an agent from before TLS 1.2) and reports version "+a.version, "max_tls", legacyMax.String())
	}
	a.sess = s
	go a.run(ctx, s)
	return a, nil
}

func (a *Agent) info(msg string, args ...any)  { a.log.Info(a.prefix+msg, args...) }
func (a *Agent) warn(msg string, args ...any)  { a.log.Warn(a.prefix+msg, args...) }
func (a *Agent) error(msg string, args ...any) { a.log.Error(a.prefix+msg, args...) }

// run drives sessions (one per identity) until ctx ends.
func (a *Agent) run(ctx context.Context, s *session) {
	defer close(a.done)
	for {
		if s == nil {
			if s = a.waitSession(ctx); s == nil {
				return
			}
		}
		a.mu.Lock()
		a.sess = s
		a.mu.Unlock()
		s.run()
		a.mu.Lock()
		a.sess = nil
		a.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		a.info("waiting for a new activation (dsa_control -a)", "dir", a.o.Dir)
		s = nil
	}
}

// waitSession polls the state folder until the agent is activated and its ports are bound.
func (a *Agent) waitSession(ctx context.Context) *session {
	stopOffers := a.serveOffers(ctx)
	defer stopOffers()
	t := time.NewTicker(a.o.StateCheck)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		id, st, err := loadIdentity(a.o.Dir)
		if err == nil {
			stopOffers() // the identity's own listener takes the port
			var s *session
			if s, err = a.newSession(ctx, id, st); err == nil {
				return s
			}
		}
		if !errors.Is(err, ErrNotActivated) && err.Error() != last {
			a.error("cannot start", "err", err)
		}
		if err != nil {
			last = err.Error()
		}
	}
}

// Close stops the agent and waits until its ports are closed.
func (a *Agent) Close() error {
	a.cancel()
	<-a.done
	return nil
}

// Done is closed when the agent has stopped.
func (a *Agent) Done() <-chan struct{} { return a.done }

// CheckInNow cuts the wait before the next heartbeat short.
func (a *Agent) CheckInNow() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *Agent) current() *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sess
}

// GUID is the agent's identity ("" before activation).
func (a *Agent) GUID() string {
	if s := a.current(); s != nil {
		return s.id.guid
	}
	return ""
}

// AgentAddr is the bound address of the agent port ("" when it does not listen).
func (a *Agent) AgentAddr() string {
	if s := a.current(); s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.agentSrv != nil {
			return s.agentSrv.addr
		}
	}
	return ""
}

// RelayAddr is the bound address of the relay port ("" when this agent is no relay).
func (a *Agent) RelayAddr() string {
	if s := a.current(); s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.relaySrv != nil {
			return s.relaySrv.addr
		}
	}
	return ""
}

// Policy is the policy in force (nil before the first).
func (a *Agent) Policy() *fleetapi.Policy {
	if s := a.current(); s != nil {
		return s.currentPolicy()
	}
	return nil
}

// Status is what GET /agent/v1/status answers.
func (a *Agent) Status() fleetapi.Status {
	if s := a.current(); s != nil {
		return s.status()
	}
	return fleetapi.Status{}
}

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

	mu       sync.Mutex
	policy   *fleetapi.Policy
	interval time.Duration // from the Manager's last answer (0: the policy's)
	agentSrv *tlsServer
	relaySrv *tlsServer
	verified map[string]fileStamp // bundles hashed on disk and found intact
	hs       *handshakeLog        // what the ports saw since the last accepted heartbeat
	hsSent   hsSent               // what the heartbeat in flight carries (heartbeat loop only)
	lowest   tlspolicy.Version    // legacy: the oldest version the Manager accepts (probed once)
	probed   bool
	quiet    bool // manager-initiated: heartbeats paused (logged once)
}

func (a *Agent) newSession(ctx context.Context, id *identity, st *State) (*session, error) {
	ci, err := tlspolicy.CertInfoOf(id.server)
	if err != nil {
		return nil, err
	}
	s := &session{a: a, id: id, cert: ci, syncWake: make(chan struct{}, 1), verified: map[string]fileStamp{}, hs: newHandshakeLog(a.o.onHandshake)}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.client = newManagerClient(id, a.legacyMax)
	s.relayClient = newRelayClient(id, a.legacyMax)
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
		s.agentSrv = nil
	}
	if s.relaySrv != nil {
		s.relaySrv.close()
		s.relaySrv = nil
	}
	s.mu.Unlock()
	s.client.CloseIdleConnections()
	s.relayClient.CloseIdleConnections()
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
		s.mu.Lock()
		if n := res.Response.IntervalSeconds; n > 0 {
			s.interval = time.Duration(min(n, 86400)) * time.Second
		}
		s.probed = false
		s.mu.Unlock()
		s.handshakesDelivered()
	}
	r := beatResult{outcome: outcomeOK, interval: s.heartbeatInterval()}
	var me *ManagerError
	switch {
	case res != nil && res.Accepted:
		s.a.info("heartbeat accepted", "seq", res.Seq, "tls", res.TLSVersion, "resumed", res.Resumed, "policy", policyName(res.Policy), "new_policy", res.PolicyChanged)
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
		lowest = ProbeLowestVersion(ctx, s.id.manager, s.id.host, s.a.legacyMax)
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
			srv, err := s.startServer(tlspolicy.RoleAgent, s.a.o.Listen, agentTLS, s.agentHandler())
			if err != nil {
				errs = append(errs, fmt.Errorf("agent port %s: %w", s.a.o.Listen, err))
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
		want := s.a.o.RelayListen
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
	st := fleetapi.Status{GUID: s.id.guid, Manager: s.id.manager}
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
