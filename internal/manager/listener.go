package manager

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/install"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/telemetry"
	"tlsfleet/internal/tlspolicy"
)

// The Manager's ports are internal/listener Listeners; this file connects them to the Manager: the
// limits from the flags and configuration.properties, the telemetry, the HTTP servers' timeouts, and the
// handshakes relays and agents report for their own ports.

// telemetryRecorder lets the Manager's telemetry count what its listeners observe.
type telemetryRecorder struct{ tel *telemetry.Recorder }

func (r telemetryRecorder) Record(o listener.Observation) {
	r.tel.Record(telemetry.Key{Port: o.Port, ClientIP: o.ClientIP, SNI: o.SNI, UserAgent: o.UserAgent, AgentGUID: o.AgentGUID,
		OfferedMax: o.OfferedMax, Version: o.Version, Suite: o.Suite, Outcome: o.Outcome}, o.Reason)
}

// portLimits are both ports' connection limits: a flag (Options) wins over configuration.properties,
// which wins over the port's default, each limit on its own.
func (m *Manager) portLimits() (map[tlspolicy.Role]listener.Limits, error) {
	cp, err := tlspolicy.LoadConfigProperties(m.folder.Path(install.ConfigFile))
	if err != nil {
		return nil, err
	}
	total, perAddress, err := install.ConnLimits(cp)
	if err != nil {
		return nil, err
	}
	if m.opts.MaxConns != 0 {
		total = listener.Override{Value: m.opts.MaxConns, Name: "--max-conns"}
	}
	if m.opts.MaxConnsPerAddress != 0 {
		perAddress = listener.Override{Value: m.opts.MaxConnsPerAddress, Name: "--max-conns-per-address"}
	}
	out := map[tlspolicy.Role]listener.Limits{}
	for _, p := range []tlspolicy.Listener{m.consoleListener(), m.agentListener()} {
		if out[p.Role], err = listener.DefaultLimits(p.Role).Apply(fmt.Sprintf("port %d (%s)", p.Port, p.Role), total, perAddress); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// newListener makes the hardened listener of one of the Manager's ports.
func (m *Manager) newListener(port int, srv *tlsPort) (*listener.Listener, error) {
	role := srv.Policy().Listener.Role
	limits := m.limits[role]
	ln, err := net.Listen("tcp", net.JoinHostPort(m.opts.Listen, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen on port %d: %w (change %s in %s or pass a port flag)", port, err, install.KeyConsolePort, install.ConfigFile)
	}
	cfg := listener.Config{TLS: srv.TLSConfig(), Policy: srv, Port: port, Role: role, Limits: limits, HandshakeTimeout: m.opts.HandshakeTimeout,
		Log: m.log, ServerNames: listener.CertNames(m.cert.get())}
	if !m.opts.NoTelemetry {
		cfg.Recorder = telemetryRecorder{m.tel}
	}
	l, err := listener.New(ln, cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	m.log.Info("port limits", "port", port, "connections", limits.Total, "per_address", limits.PerAddress)
	return l, nil
}

// httpServer serves h on l with timeouts that keep slow clients from holding the server; each
// connection's handshake is counted with its first request's User-Agent.
func httpServer(l *listener.Listener, h http.Handler, headerTimeout time.Duration) *http.Server {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       2 * headerTimeout,
		WriteTimeout:      4 * headerTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	l.Instrument(hs)
	return hs
}

// recordHandshakes counts the handshakes a relay's or agent's heartbeat reports for its own ports (4122,
// 4118), with its GUID as the reporting node. What does not validate is skipped and logged; the
// heartbeat itself never fails for it.
func (m *Manager) recordHandshakes(guid string, hb *fleetapi.Heartbeat) {
	if len(hb.Handshakes) == 0 && hb.HandshakesDropped == 0 {
		return
	}
	_, skipped, why := m.tel.AddReported(guid, hb.Handshakes, time.Now())
	if skipped > 0 {
		m.log.Warn("skipped handshake counts a heartbeat reported", "guid", guid, "skipped", skipped, "of", len(hb.Handshakes), "first", why)
	}
	if hb.HandshakesDropped > 0 {
		m.log.Info("a fleet member saw more distinct handshakes than it reports", "guid", guid, "not_reported", hb.HandshakesDropped)
	}
}
