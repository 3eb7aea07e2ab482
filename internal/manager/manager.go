// Package manager is the tlsfleet Manager: it prepares the install folder, opens the database, and serves
// the console/REST API (4119) and the agent channel (4120) over TLS whose policy comes from java.security,
// configuration.properties and the settings in the database — re-read within two seconds of any change,
// without a restart — while counting every handshake for the readiness and tlsclients reports.
package manager

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/install"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/telemetry"
	"tlsfleet/internal/tlspolicy"
)

// Store is what the Manager needs from its database; the SQLite store implements it (and a PostgreSQL
// one will, for several Manager nodes).
type Store interface {
	Settings(ctx context.Context) (map[string]string, error)
	SetSetting(ctx context.Context, name, value, actor string) (old string, changed bool, err error)
	SettingsVersion(ctx context.Context) (int64, error)
	APIKeyHash(ctx context.Context, prefix string) (name, hash string, err error)
	CreateAdmin(ctx context.Context, username, passwordHash string) (bool, error)
	AddObservations(ctx context.Context, obs []store.Observation) error
	Observations(ctx context.Context, since string, port int) ([]store.Observation, error)
	Activate(ctx context.Context, tokenHash string, at time.Time, c store.Computer, issue func(store.ActivationToken) (store.Computer, error)) (store.Computer, error)
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
	// HeartbeatSeconds, when set, stores settings.configuration.heartbeatPeriodSeconds (tests, demonstrations).
	HeartbeatSeconds int
	Logger           *slog.Logger
}

// Manager is a running Manager.
type Manager struct {
	opts    Options
	log     *slog.Logger
	folder  *install.Folder
	db      Store
	ca      *pki.CA
	tel     *telemetry.Recorder
	console *tlspolicy.Server
	agents  *tlspolicy.Server

	consoleLn, agentLn *listener.Listener
	limits             map[tlspolicy.Role]listener.Limits // of both ports, from the flags, configuration.properties and the defaults
	cert               tls.Certificate
	fleet              fleetState
	servers            []*http.Server

	mu          sync.Mutex
	fileStamp   string
	settingsVer int64
	policyErr   string

	cancel context.CancelFunc
	runCtx context.Context // lives as long as the Manager: background work started by requests uses it
	wg     sync.WaitGroup
	// agentTransports hold the connections to agents' port 4118, one pool per agent.
	agentMu         sync.Mutex
	agentTransports map[string]*http.Transport
	// FirstStart is set when this start created the install folder; InitialPasswordFile then names the
	// file holding the admin's one-time password.
	FirstStart          bool
	InitialPasswordFile string
}

// Start prepares the install folder (first start: configuration.properties, java.security, fleet CA,
// server certificate, database, admin account) and starts both listeners.
func Start(ctx context.Context, o Options) (*Manager, error) {
	if o.PollInterval == 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = time.Second
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.HeaderTimeout == 0 {
		o.HeaderTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	m := &Manager{opts: o, log: o.Logger}
	cp, hp := o.ConsolePort, o.HeartbeatPort
	if cp == 0 {
		cp = 4119
	}
	if hp == 0 {
		hp = 4120
	}
	created, err := install.Init(o.Dir, cp, hp)
	if err != nil {
		return nil, fmt.Errorf("install folder %s: %w", o.Dir, err)
	}
	m.FirstStart = created
	if m.folder, err = install.Open(o.Dir); err != nil {
		return nil, err
	}
	if o.ConsolePort != 0 {
		m.folder.ConsolePort = o.ConsolePort
	}
	if o.HeartbeatPort != 0 {
		m.folder.HeartbeatPort = o.HeartbeatPort
	}
	if m.limits, err = m.portLimits(); err != nil {
		return nil, err // before the database or a port is touched
	}
	if m.ca, err = pki.LoadOrCreateCA(m.folder.Dir); err != nil {
		return nil, err
	}
	hosts := []string{}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	if o.Listen != "" {
		hosts = append(hosts, o.Listen)
	}
	cert, err := m.ca.LoadOrCreateServer(m.folder.Dir, o.KeyType, hosts)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, m.folder.DBPath)
	if err != nil {
		return nil, err
	}
	m.db = db
	ok := false
	defer func() {
		if !ok {
			m.db.Close()
		}
	}()
	if err := m.bootstrapAdmin(ctx); err != nil {
		return nil, err
	}
	if o.HeartbeatSeconds > 0 {
		if _, _, err := m.db.SetSetting(ctx, settings.HeartbeatSeconds, strconv.Itoa(o.HeartbeatSeconds), "tlsfleet manager --heartbeat-seconds"); err != nil {
			return nil, err
		}
	}
	m.tel = telemetry.New(m.flushObservations, m.log)
	m.cert = cert
	m.fleet.pending = map[string]store.CheckIn{}

	pool := x509.NewCertPool()
	pool.AddCert(m.ca.Cert)
	obs := tlspolicy.Observer(listener.Observe)
	if o.NoTelemetry {
		obs = nil
	}
	// Note what the files and settings are before reading them: a change made from here on is seen by
	// the first poll.
	m.fileStamp = m.stamp()
	if m.settingsVer, err = m.db.SettingsVersion(ctx); err != nil {
		return nil, err
	}
	layers, err := m.loadLayers(ctx)
	if err != nil {
		return nil, err
	}
	layers.Cert, _ = tlspolicy.CertInfoOf(cert)
	if m.console, err = tlspolicy.NewServer(tlspolicy.Effective(m.consoleListener(), layers),
		tlspolicy.ServerOptions{Certificate: cert, NextProtos: []string{"http/1.1"}, Observer: obs}); err != nil {
		return nil, err
	}
	if m.agents, err = tlspolicy.NewServer(tlspolicy.Effective(m.agentListener(), layers),
		tlspolicy.ServerOptions{Certificate: cert, NextProtos: []string{"http/1.1"}, Observer: obs,
			ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, w := range append(tlspolicy.Explain(m.consoleListener(), layers).Policy.Warnings, tlspolicy.Explain(m.agentListener(), layers).Policy.Warnings...) {
		if !seen[w] {
			seen[w] = true
			if strings.Contains(w, "has no effect here") {
				m.log.Info("TLS policy note", "note", w) // e.g. the JDK's DH and DTLS entries: nothing to restrict in Go
			} else {
				m.log.Warn("TLS policy", "warning", w)
			}
		}
	}

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel, m.runCtx = cancel, rctx
	if m.consoleLn, err = m.listen(m.folder.ConsolePort, m.console); err != nil {
		cancel()
		return nil, err
	}
	if m.agentLn, err = m.listen(m.folder.HeartbeatPort, m.agents); err != nil {
		m.consoleLn.Close()
		cancel()
		return nil, err
	}
	m.serve(m.consoleLn, m.consoleHandler())
	m.serve(m.agentLn, m.agentHandler())
	m.release(rctx) // policies of new computers, and of all when settings changed while stopped
	m.wg.Add(3)
	go func() { defer m.wg.Done(); m.tel.Run(rctx, o.FlushInterval) }()
	go func() { defer m.wg.Done(); m.watch(rctx) }()
	go func() { defer m.wg.Done(); m.fleetLoop(rctx) }()
	ok = true
	m.log.Info("manager started", "dir", m.folder.Dir, "console", m.ConsoleAddr(), "agent_channel", m.AgentAddr(), "database", m.folder.DBPath)
	return m, nil
}

func (m *Manager) consoleListener() tlspolicy.Listener {
	return tlspolicy.Listener{Port: m.folder.ConsolePort, Role: tlspolicy.RoleConsole}
}

func (m *Manager) agentListener() tlspolicy.Listener {
	return tlspolicy.Listener{Port: m.folder.HeartbeatPort, Role: tlspolicy.RoleAgentChannel}
}

func (m *Manager) listen(port int, srv *tlspolicy.Server) (*listener.Listener, error) {
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
	m.agentMu.Lock()
	for _, t := range m.agentTransports {
		t.CloseIdleConnections()
	}
	m.agentMu.Unlock()
	return m.db.Close()
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

// loadLayers reads the files and the settings.
func (m *Manager) loadLayers(ctx context.Context) (tlspolicy.Layers, error) {
	var l tlspolicy.Layers
	js, err := tlspolicy.LoadJavaSecurity(m.folder.Path(install.JavaSecurityFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return l, err
	case !js.Defined:
		// An empty or cut file (an editor mid-write, a full disk) must not open every version: keep the
		// policy in force until the file says what it means.
		return l, fmt.Errorf("%s defines no %s; write the line (jdk.tls.disabledAlgorithms= with nothing after it disables nothing)", js.Path, tlspolicy.DisabledAlgorithmsKey)
	default:
		l.JavaSecurity = js
	}
	cp, err := tlspolicy.LoadConfigProperties(m.folder.Path(install.ConfigFile))
	if err != nil {
		return l, err
	}
	l.Config = cp
	vals, err := m.db.Settings(ctx)
	if err != nil {
		return l, err
	}
	l.Settings = settings.Values(vals).Policy()
	return l, nil
}

// stamp identifies the current contents of the watched files.
func (m *Manager) stamp() string {
	s := ""
	for _, f := range []string{install.JavaSecurityFile, install.ConfigFile} {
		st, err := os.Stat(m.folder.Path(f))
		if err != nil {
			s += f + ":missing;"
			continue
		}
		s += fmt.Sprintf("%s:%d:%d;", f, st.Size(), st.ModTime().UnixNano())
	}
	return s
}

// watch re-applies the policy when a file or the settings change.
// TelemetryRetention is how long handshake counts are kept.
const TelemetryRetention = 90 * 24 * time.Hour

func (m *Manager) watch(ctx context.Context) {
	pending := ""
	lastPrune := time.Time{}
	t := time.NewTicker(m.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(lastPrune) > time.Hour {
			lastPrune = time.Now()
			if n, err := m.sqliteDB().PruneObservations(ctx, time.Now().Add(-TelemetryRetention).UTC().Format(time.RFC3339Nano)); err == nil && n > 0 {
				m.log.Info("old handshake counts removed", "rows", n, "retention", TelemetryRetention)
			}
		}
		st := m.stamp()
		ver, err := m.db.SettingsVersion(ctx)
		if err != nil {
			m.log.Warn("reading the settings version", "err", err)
			continue
		}
		if st == m.fileStamp && ver == m.settingsVer {
			continue
		}
		if st != m.fileStamp && st != pending {
			// A file changed: wait one more poll for it to settle (an editor may still be writing it).
			pending = st
			continue
		}
		settingsChanged := ver != m.settingsVer
		m.fileStamp, m.settingsVer = st, ver
		m.Reload(ctx)
		if settingsChanged {
			m.release(ctx)
		}
	}
}

// Reload recomputes both listeners' policies now. A malformed file leaves the policy in force as it
// was, and the error is logged and shown by /api/policy.
func (m *Manager) Reload(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	layers, err := m.loadLayers(ctx)
	if err != nil {
		m.policyErr = err.Error()
		m.log.Error("TLS policy not changed: the new configuration has an error", "err", err)
		return
	}
	m.policyErr = ""
	layers.Cert = m.console.Cert()
	for _, x := range []struct {
		srv *tlspolicy.Server
		l   tlspolicy.Listener
	}{{m.console, m.consoleListener()}, {m.agents, m.agentListener()}} {
		ex := tlspolicy.Explain(x.l, layers)
		if old := x.srv.Policy(); ex.Policy.MinVersion() < old.MinVersion() && len(ex.Policy.Versions) > 0 {
			m.log.Warn("TLS policy weakened: the port now accepts an older TLS version", "port", x.l.Port, "was", old.MinVersion().String(), "now", ex.Policy.MinVersion().String())
		}
		if err := x.srv.Update(ex.Policy); err != nil {
			m.log.Error("TLS policy update", "port", x.l.Port, "err", err)
			continue
		}
		vs := ""
		for _, v := range ex.Policy.Versions {
			vs += v.String() + " "
		}
		m.log.Info("TLS policy applied", "port", x.l.Port, "versions", vs, "suites", len(ex.Policy.Suites))
	}
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

// Dir returns the absolute install folder.
func (m *Manager) Dir() string { return filepath.Clean(m.folder.Dir) }
