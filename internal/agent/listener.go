package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/tlspolicy"
)

// tlsServer is one of the agent's listeners (4118 or the relay's 4122) with its live TLS policy.
type tlsServer struct {
	role tlspolicy.Role
	want string // the configured address
	addr string // the bound address
	port int
	tls  fleetapi.TLSSettings
	pol  *tlspolicy.Server
	ln   *listener.Listener
	http *http.Server
}

// listenerPolicy computes a listener's TLS policy from the agent policy's settings: RoleAgent takes
// them as AgentMinimum, RoleRelay as RelayMinimum (an empty minimum means the default, TLSv1.2).
func listenerPolicy(role tlspolicy.Role, port int, ts fleetapi.TLSSettings, cert tlspolicy.CertInfo) (*tlspolicy.Policy, error) {
	var minimum tlspolicy.Version
	if ts.MinVersion != "" {
		v, err := tlspolicy.ParseVersion(ts.MinVersion)
		if err != nil {
			return nil, err
		}
		minimum = v
	}
	set := tlspolicy.Settings{StrongCiphers: ts.StrongCiphers}
	switch role {
	case tlspolicy.RoleAgent:
		set.AgentMinimum = minimum
	case tlspolicy.RoleRelay:
		set.RelayMinimum = minimum
	}
	return tlspolicy.Effective(tlspolicy.Listener{Port: port, Role: role}, tlspolicy.Layers{Settings: set, Cert: cert}), nil
}

// startServer binds addr and serves handler with the role's TLS policy: on 4118 mutual TLS with the
// Manager's certificate only, on the relay port client certificates from the fleet CA when given. The
// hardened listener bounds its connections (Options.MaxConns, MaxConnsPerAddress) and counts its
// handshakes for the heartbeats.
func (s *session) startServer(role tlspolicy.Role, addr string, ts fleetapi.TLSSettings, handler http.Handler) (*tlsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	p, err := listenerPolicy(role, port, ts, s.cert)
	if err != nil {
		ln.Close()
		return nil, err
	}
	// The policy decides versions and suites; on top of it, the fleet's CRL refuses listed client
	// certificates in the handshake (resumed sessions too), and on 4118 only the Manager's certificate
	// (CommonName "tlsfleet manager") gets through.
	opts := tlspolicy.ServerOptions{Certificate: s.id.server, ClientCAs: s.id.pool, NextProtos: []string{"http/1.1"}, ClientAuth: tls.VerifyClientCertIfGiven,
		Observer: listener.Observe, VerifyConnection: s.checkRevoked}
	if role == tlspolicy.RoleAgent {
		opts.ClientAuth = tls.RequireAndVerifyClientCert
		opts.VerifyConnection = func(cs tls.ConnectionState) error {
			if err := verifyManagerPeer(cs); err != nil {
				return err
			}
			return s.checkRevoked(cs)
		}
	}
	pol, err := tlspolicy.NewServer(p, opts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg := pol.TLSConfig()
	name := "agent port"
	if role == tlspolicy.RoleRelay {
		name = "relay port"
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.a.log.Handler(), slog.LevelInfo),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	if role == tlspolicy.RoleAgent {
		hs.WriteTimeout = 30 * time.Second // bundles on the relay port may take longer
	}
	hs.ErrorLog.SetPrefix(s.a.prefix + name + ": ")
	l, err := listener.New(ln, listener.Config{TLS: cfg, Policy: pol, Port: port, Role: role, Limits: s.a.limits[role], Recorder: s.hs,
		Log: s.a.log, ServerNames: listener.CertNames(s.id.server)})
	if err != nil {
		ln.Close()
		return nil, err
	}
	l.TrackHTTP(hs)
	srv := &tlsServer{role: role, want: addr, addr: ln.Addr().String(), port: port, tls: ts, pol: pol, ln: l, http: hs}
	go hs.Serve(l)
	return srv, nil
}

// describe says what the listener accepts.
func (t *tlsServer) describe() string {
	p := t.pol.Policy()
	if len(p.Versions) == 0 {
		return "no version"
	}
	return fmt.Sprintf("%s..%s, %d suites", p.MinVersion(), p.MaxVersion(), len(p.Suites))
}

// update swaps the listener's TLS policy live when its settings changed, and closes the open
// connections the new policy forbids (the listener logs how many).
func (t *tlsServer) update(ts fleetapi.TLSSettings, cert tlspolicy.CertInfo) error {
	if ts == t.tls {
		return nil
	}
	p, err := listenerPolicy(t.role, t.port, ts, cert)
	if err != nil {
		return err
	}
	if err := t.pol.Update(p); err != nil {
		return err
	}
	t.tls = ts
	t.ln.Enforce()
	return nil
}

// shutdown closes the listener at once and lets requests in flight (such as the PUT that turned the
// port off) finish.
func (t *tlsServer) shutdown() {
	t.ln.Close()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if t.http.Shutdown(ctx) != nil {
			t.http.Close()
		}
	}()
}

// close closes the listener and every connection.
func (t *tlsServer) close() {
	t.ln.Close()
	t.http.Close()
}

var (
	writeJSON  = fleetapi.WriteJSON
	writeError = fleetapi.WriteError
)

// agentHandler serves 4118: the Manager pushes policies and asks for status.
func (s *session) agentHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT "+fleetapi.PathPolicy, s.putPolicy)
	mux.HandleFunc("PUT "+fleetapi.PathCRL, s.putCRL)
	mux.HandleFunc("GET "+fleetapi.PathStatus, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.status()) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The handshake already insists on the Manager's certificate; this is the second lock.
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != fleetapi.ManagerCommonName {
			writeError(w, http.StatusForbidden, "only the Manager may call this port")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// putPolicy is the Manager's "send policy now": 204 applied, 409 older serial than the one in force
// (a replay), 400 invalid, 413 too large. A refused policy changes nothing.
func (s *session) putPolicy(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, fleetapi.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "policy exceeds %d bytes", fleetapi.MaxBody)
			return
		}
		writeError(w, http.StatusBadRequest, "reading the policy: %v", err)
		return
	}
	var p fleetapi.Policy
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		writeError(w, http.StatusBadRequest, "policy is not JSON: %v", err)
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "policy: data after the JSON document")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	unlock, err := lockDir(ctx, s.a.o.Dir)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "the agent is busy: %v", err)
		return
	}
	defer unlock()
	st, err := LoadState(s.a.o.Dir)
	if err != nil || st.GUID != s.id.guid {
		writeError(w, http.StatusServiceUnavailable, "the agent is being reset")
		return
	}
	if st.Policy != nil && p.Serial < st.Policy.Serial {
		s.a.warn("refused a pushed policy with an older serial (a replay?)", "serial", p.Serial, "in_force", st.Policy.Serial, "client", r.RemoteAddr)
		writeError(w, http.StatusConflict, "policy serial %d is below the serial %d this agent runs: refused as a replay", p.Serial, st.Policy.Serial)
		return
	}
	if err := p.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	st.Policy = &p
	if err := st.save(s.a.o.Dir); err != nil {
		writeError(w, http.StatusInternalServerError, "storing the policy: %v", err)
		return
	}
	if err := s.apply(&p); err != nil {
		s.a.warn("pushed policy stored, but not fully applied", "err", err)
		writeError(w, http.StatusInternalServerError, "policy stored, but not fully applied: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	s.a.info("policy pushed by the Manager", "policy", policyName(&p), "client", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}
