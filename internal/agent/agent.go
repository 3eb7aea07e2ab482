package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/tlspolicy"
)

// Options configure a running agent (ds_agent).
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
	// ActivationManager (dsm://HOST:4120/) is the only Manager an offer may name: the agent activates
	// with it and refuses offers that name another. Without it, an offer's activation connects only to
	// the host the offer came from. Either way an offer cannot make the agent dial a third host.
	ActivationManager string
	// StateCheck is how often the agent looks at state.json for changes made by dsa_control (-m stores a
	// policy, -r resets, -a activates); default 2 s.
	StateCheck time.Duration
	// MaxConns and MaxConnsPerAddress bound the connections each of the agent's ports (4118, and 4122 on
	// a relay) holds open, in all and from one client address (--max-conns, --max-conns-per-address);
	// 0 keeps each port's default (listener.DefaultLimits: 4118 256 and 64, 4122 16,384 and 4,096).
	MaxConns, MaxConnsPerAddress int

	// Clock is the time the agent renews its certificate by (two thirds into its lifetime); default
	// time.Now. It is read once before each heartbeat.
	Clock func() time.Time

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
	offerLog  offerLimit // refused activation offers: a line per offerLogEvery
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
		o.Listen = ":" + strconv.Itoa(tlspolicy.PortAgent)
	}
	if o.StateCheck <= 0 {
		o.StateCheck = 2 * time.Second
	}
	limits, err := portLimits(o)
	if err != nil {
		return nil, err
	}
	if o.ActivationManager != "" {
		if _, err := ParseManagerURL(o.ActivationManager); err != nil {
			return nil, fmt.Errorf("--activation-manager: %w", err)
		}
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
		if s, err = a.newSession(ctx, id, st, [2]string{}); err != nil {
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
		speaks := "only " + tlspolicy.TLSv1.Prose()
		if legacyMax > tlspolicy.TLSv1 {
			speaks = tlspolicy.TLSv1.Prose() + " to " + legacyMax.Prose()
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
		renewed, bound := s.renewed.Load(), s.boundAddrs()
		s = nil
		if renewed {
			if s = a.restart(ctx, bound); s != nil {
				continue
			}
		}
		a.info("waiting for a new activation (dsa_control -a)", "dir", a.o.Dir)
	}
}

// restart starts a session with the identity a renewal just stored, on the ports the last one had
// bound (nil if it cannot: the agent then waits as after a reset).
func (a *Agent) restart(ctx context.Context, bound [2]string) *session {
	id, st, err := loadIdentity(a.o.Dir)
	if err == nil {
		var s *session
		if s, err = a.newSession(ctx, id, st, bound); err == nil {
			return s
		}
	}
	a.error("cannot start with the renewed certificate", "err", err)
	return nil
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
			if s, err = a.newSession(ctx, id, st, [2]string{}); err == nil {
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
