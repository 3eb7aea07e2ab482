// Package manager is the tlsfleet Manager: it prepares the install folder, opens the database, and serves
// the console/REST API (4119) and the agent channel (4120) over TLS whose policy comes from java.security,
// configuration.properties and the settings in the database — re-read within two seconds of any change,
// without a restart — while counting every handshake for the readiness and tlsclients reports.
package manager

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tlsfleet/internal/api"
	"tlsfleet/internal/auth"
	"tlsfleet/internal/install"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/store"
	"tlsfleet/internal/telemetry"
	"tlsfleet/internal/tlspolicy"
)

// Store is what the Manager needs from its database: everything the operations layer needs, and the
// agent channel's own writes (activation, batched heartbeats, acknowledgements, telemetry). The SQLite
// store implements it (and a PostgreSQL one will, for several Manager nodes).
type Store interface {
	ops.Store
	SettingsVersion(ctx context.Context) (int64, error)
	FleetVersion(ctx context.Context) (int64, error)
	CreateAdmin(ctx context.Context, username, passwordHash string) (bool, error)
	Activate(ctx context.Context, tokenHash string, at time.Time, c store.Computer, issue func(store.ActivationToken) (store.Computer, error)) (store.Computer, error)
	RecordCheckIns(ctx context.Context, batch []store.CheckIn) error
	CRLVersion(ctx context.Context) (int64, error)
	BumpCRL(ctx context.Context) error
	RevokedCerts(ctx context.Context, at time.Time) ([]store.RevokedCert, int64, error)
	Renew(ctx context.Context, guid, presented string, issue func() (serial, expires string, err error)) error
	ConfirmCert(ctx context.Context, guid, current string) (bool, error)
	SetPolicyAcked(ctx context.Context, guid, fingerprint string) error
	AddObservations(ctx context.Context, obs []store.Observation) error
	PruneObservations(ctx context.Context, before string) (int64, error)
	// ConnTLS is the TLS state of the database connection (a local file for SQLite).
	ConnTLS() store.ConnTLS
	RegisterNode(ctx context.Context, n store.ManagerNode) error
	TouchNode(ctx context.Context, name string, at time.Time) (bool, error)
	TryLease(ctx context.Context, job, node string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, job, node string) error
	Close() error
}

var _ Store = (*store.DB)(nil)

// Options configure a Manager. Zero values take the defaults.
type Options struct {
	Dir string
	// ConsolePort and HeartbeatPort override configuration.properties (which a first start writes with
	// these values, or 4119 and 4120).
	ConsolePort, HeartbeatPort int
	// Listen is the address to bind (default: all interfaces).
	Listen string
	// KeyType of a new server certificate (ECDSA P-256 by default; RSA-2048 for the page's ECDHE-RSA suites).
	KeyType pki.KeyType
	// PollInterval is how often files and settings are checked for changes (default 500 ms).
	PollInterval time.Duration
	// FlushInterval is how often handshake telemetry is written to the database (default 1 s).
	FlushInterval time.Duration
	// HandshakeTimeout and HeaderTimeout bound slow clients (default 10 s each).
	HandshakeTimeout, HeaderTimeout time.Duration
	// MaxConns and MaxConnsPerAddress bound the connections each port holds open, in all and from one
	// client address (--max-conns, --max-conns-per-address); they override configuration.properties'
	// maxConnections and maxConnectionsPerAddress. 0 leaves each port its limits from the file, else its
	// defaults (listener.DefaultLimits: 4119 4,096 and 512, 4120 120,000 and 8,192).
	MaxConns, MaxConnsPerAddress int
	// NoTelemetry turns handshake counting off (for benchmarks).
	NoTelemetry bool
	// NewFleet lets the Manager start over a folder that had agents although its fleet CA or database is
	// gone (--new-fleet): it makes a new CA or database, and every agent must be activated again.
	NewFleet bool
	// HeartbeatSeconds, when set, stores settings.configuration.heartbeatPeriodSeconds (tests, demonstrations).
	HeartbeatSeconds int
	// Version is what this node registers as (listmanagernodes); default "dev".
	Version string
	// Notifier brings the next read of the settings forward when the database says it changed
	// (store.Notifier); default store.Poll, which never does: the Manager polls every PollInterval.
	Notifier store.Notifier
	Logger   *slog.Logger
}

// Manager is a running Manager.
type Manager struct {
	opts   Options
	log    *slog.Logger
	folder *install.Folder
	db     Store
	ca     *pki.CA
	tel    *telemetry.Recorder
	// throttle slows down guessing activation tokens.
	throttle *activationThrottle
	console  *tlsPort
	agents   *tlsPort

	consoleLn, agentLn *listener.Listener
	limits             map[tlspolicy.Role]listener.Limits // of both ports, from the flags, configuration.properties and the defaults
	cert               managerCert
	fleet              fleetState
	crl                crlState
	node               nodeState
	flushMu            sync.Mutex
	pusher             *pusher
	ops                *ops.Ops
	api                *api.Server
	servers            []*http.Server

	lock   *install.Lock     // this process's hold on the install folder
	ident  *install.Identity // the folder and database opened, to notice them removed
	marked atomic.Bool       // the fleet marker is written (the folder has agents)

	polls       atomic.Int64 // finished polls of the files and settings (tests wait on it)
	mu          sync.Mutex
	fileStamp   string
	settingsVer int64
	policyErr   string
	certErr     string // why the certificate in the install folder is not in force, "" when it is
	healthErr   string // why the install folder is unusable, "" while it is in place

	cancel context.CancelFunc
	runCtx context.Context // lives as long as the Manager: background work started by requests uses it
	wg     sync.WaitGroup
	// FirstStart is set when this start created the install folder; InitialPasswordFile then names the
	// file holding the admin's one-time password.
	FirstStart          bool
	InitialPasswordFile string
}

// Start prepares the install folder (first start: configuration.properties, java.security, fleet CA,
// server certificate, database, admin account) and starts both listeners.
func Start(ctx context.Context, o Options) (*Manager, error) {
	o.PollInterval = cmp.Or(o.PollInterval, DefaultPollInterval)
	o.FlushInterval = cmp.Or(o.FlushInterval, DefaultFlushInterval)
	o.HandshakeTimeout = cmp.Or(o.HandshakeTimeout, DefaultHandshakeTimeout)
	o.HeaderTimeout = cmp.Or(o.HeaderTimeout, DefaultHeaderTimeout)
	o.Version = cmp.Or(o.Version, "dev")
	if o.Notifier == nil {
		o.Notifier = store.Poll{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	m := &Manager{opts: o, log: o.Logger, throttle: newActivationThrottle(time.Now)}
	ok := false
	defer func() {
		if !ok {
			if m.db != nil {
				m.db.Close()
			}
			m.lock.Release()
		}
	}()
	if err := m.prepareFolder(); err != nil {
		return nil, err
	}
	if err := m.openStore(ctx); err != nil {
		return nil, err
	}
	m.tel = telemetry.New(m.flushObservations, m.log)
	m.fleet.pending = map[string]store.CheckIn{}
	m.ops = ops.New(m.db, m.folder, hooks{m})
	m.api = api.New(m.ops, m, m.log)
	m.pusher = newPusher(m.log, m.cert.clientCert, m.ca.Cert, m.ack, m.recordStatus, func() []byte {
		if crl := m.currentCRL(); crl != nil {
			return crl.DER
		}
		return nil
	})
	if _, err := m.refreshCRL(ctx, false); err != nil {
		return nil, fmt.Errorf("fleet CRL: %w", err)
	}
	if err := m.buildPolicies(ctx); err != nil {
		return nil, err
	}
	if err := m.startListeners(ctx); err != nil {
		return nil, err
	}
	if err := m.lock.SetAddrs(m.ConsoleAddr(), m.AgentAddr()); err != nil {
		m.log.Warn("the listen addresses are not recorded for dsm_c", "err", err)
	}
	ok = true
	m.startBackground()
	m.log.Info("manager started", "dir", m.folder.Dir, "console", m.ConsoleAddr(), "agent_channel", m.AgentAddr(), "database", m.folder.Database.String(), "database_tls", m.db.ConnTLS().String())
	return m, nil
}

// buildPolicies computes both ports' first policies from the files and the settings, and logs what the
// policy engine warns about.
func (m *Manager) buildPolicies(ctx context.Context) error {
	pool := x509.NewCertPool()
	pool.AddCert(m.ca.Cert)
	obs := tlspolicy.Observer(listener.Observe)
	if m.opts.NoTelemetry {
		obs = nil
	}
	// Note what the files and settings are before reading them: a change made from here on is seen by
	// the first poll.
	m.fileStamp = m.stamp()
	var err error
	if m.settingsVer, err = m.db.SettingsVersion(ctx); err != nil {
		return err
	}
	layers, err := m.loadLayers(ctx)
	if err != nil {
		return err
	}
	cert := m.cert.get()
	layers.Cert, _ = tlspolicy.CertInfoOf(cert)
	// A policy under which a port could complete no handshake has no last good policy to fall back on
	// at start: refuse to start, with the fix.
	console, err := m.explain(m.consoleListener(), layers)
	if err != nil {
		return err
	}
	agents, err := m.explain(m.agentListener(), layers)
	if err != nil {
		return err
	}
	if m.console, err = newTLSPort(console.Policy, cert,
		tlspolicy.ServerOptions{NextProtos: []string{"http/1.1"}, Observer: obs}); err != nil {
		return err
	}
	if m.agents, err = newTLSPort(agents.Policy, cert,
		tlspolicy.ServerOptions{NextProtos: []string{"http/1.1"}, Observer: obs,
			ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool, VerifyConnection: m.checkRevoked}); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, w := range append(console.Policy.Warnings, agents.Policy.Warnings...) {
		if !seen[w] {
			seen[w] = true
			if strings.Contains(w, "no effect here") {
				m.log.Info("TLS policy note", "note", w) // e.g. the JDK's DH and DTLS entries: nothing to restrict in Go
			} else {
				m.log.Warn("TLS policy", "warning", w)
			}
		}
	}
	return nil
}

// startListeners opens both ports and starts the background work: telemetry flushes, policy watching,
// the fleet loop and the pusher.
func (m *Manager) startListeners(ctx context.Context) error {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.runCtx = cancel, rctx
	var err error
	if m.consoleLn, err = m.listen(m.folder.ConsolePort, m.console); err != nil {
		cancel()
		return err
	}
	if m.agentLn, err = m.listen(m.folder.HeartbeatPort, m.agents); err != nil {
		m.consoleLn.Close()
		cancel()
		return err
	}
	m.serve(m.consoleLn, m.consoleHandler())
	m.serve(m.agentLn, m.agentHandler())
	return nil
}

// startBackground registers this node (after the listen addresses are recorded: they are what it
// registers) and starts the background work: the pusher, telemetry flushes, policy watching and the
// fleet loop.
func (m *Manager) startBackground() {
	rctx := m.runCtx
	m.pusher.run(rctx)
	if err := m.registerNode(rctx); err != nil {
		m.log.Error("registering this manager node; the fleet loop tries again", "err", err)
	}
	m.nodesChanged(rctx)
	if m.isLeader() {
		m.release(rctx) // policies of new computers, and of all when settings changed while stopped
	} else if err := m.refreshFleet(rctx); err != nil {
		m.log.Error("reading computers", "err", err)
	}
	m.wg.Add(3)
	go func() { defer m.wg.Done(); m.tel.Run(rctx, m.opts.FlushInterval) }()
	go func() { defer m.wg.Done(); m.watch(rctx) }()
	m.node.stopped = make(chan struct{})
	go func() { defer m.wg.Done(); defer close(m.node.stopped); m.fleetLoop(rctx) }()
}

func (m *Manager) consoleListener() tlspolicy.Listener {
	return tlspolicy.Listener{Port: m.folder.ConsolePort, Role: tlspolicy.RoleConsole}
}

func (m *Manager) agentListener() tlspolicy.Listener {
	return tlspolicy.Listener{Port: m.folder.HeartbeatPort, Role: tlspolicy.RoleAgentChannel}
}

func (m *Manager) listen(port int, srv *tlsPort) (*listener.Listener, error) {
	return m.newListener(port, srv)
}

func (m *Manager) serve(l *listener.Listener, h http.Handler) {
	hs := httpServer(l, h, m.opts.HeaderTimeout)
	hs.ErrorLog = slog.NewLogLogger(m.log.Handler(), slog.LevelDebug)
	m.servers = append(m.servers, hs)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			m.log.Error("listener stopped", "port", l.Port(), "err", err)
		}
	}()
}

// ConsoleAddr and AgentAddr are the listeners' addresses.
func (m *Manager) ConsoleAddr() string { return m.consoleLn.Addr().String() }

// AgentAddr is the agent channel's address.
func (m *Manager) AgentAddr() string { return m.agentLn.Addr().String() }

// DatabaseTLS is the TLS state of the Manager's own database connection, recorded when it opened.
func (m *Manager) DatabaseTLS() store.ConnTLS { return m.db.ConnTLS() }

// Folder is the install folder.
func (m *Manager) Folder() *install.Folder { return m.folder }

// CA is the fleet CA.
func (m *Manager) CA() *pki.CA { return m.ca }

// Close stops the listeners, flushes the telemetry and closes the database.
func (m *Manager) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range m.servers {
		s.Shutdown(ctx)
	}
	m.cancel()
	m.wg.Wait()
	m.pusher.wait()
	m.leaveNodes(ctx)
	err := m.db.Close()
	m.lock.Release()
	return err
}

// bootstrapAdmin creates the first admin account with a one-time password written to a 0600 file.
func (m *Manager) bootstrapAdmin(ctx context.Context) error {
	pw, err := auth.NewPassword()
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	created, err := m.db.CreateAdmin(ctx, "admin", hash)
	if err != nil || !created {
		return err
	}
	m.InitialPasswordFile = m.folder.Path(install.PasswordFile)
	return pki.WriteFile(m.InitialPasswordFile, []byte(pw+"\n"), 0o600)
}

func (m *Manager) flushObservations(ctx context.Context, batch []telemetry.Observation) error {
	obs := make([]store.Observation, len(batch))
	for i, o := range batch {
		obs[i] = store.Observation{Port: o.Port, ClientIP: o.ClientIP, SNI: o.SNI, UserAgent: o.UserAgent, AgentGUID: o.AgentGUID,
			OfferedMax: o.OfferedMax, Version: o.Version, Suite: o.Suite, Outcome: o.Outcome, Reason: o.Reason, Count: o.Count,
			FirstSeen: o.FirstSeen.UTC().Format(time.RFC3339Nano), LastSeen: o.LastSeen.UTC().Format(time.RFC3339Nano), Node: o.Node}
	}
	return m.db.AddObservations(ctx, obs)
}

// ack records that an agent confirmed a pushed policy: in the database (only while that policy is still
// the one released) and in memory.
func (m *Manager) ack(ctx context.Context, guid, fp string) error {
	if err := m.db.SetPolicyAcked(ctx, guid, fp); err != nil {
		return err
	}
	m.recordAck(guid, fp)
	return nil
}

// Ops is the operations layer over this Manager's database, with the Manager's hooks.
func (m *Manager) Ops() *ops.Ops { return m.ops }

// Dir returns the absolute install folder.
func (m *Manager) Dir() string { return filepath.Clean(m.folder.Dir) }
