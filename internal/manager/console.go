package manager

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/tlspolicy"
)

// consoleHandler serves port 4119: health, metrics, the REST API (internal/api over the operations
// layer) and the console page.
func (m *Manager) consoleHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", m.healthz)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m.tel.WriteMetrics(w)
	})
	mux.Handle("/api/", m.healthGate(m.api.Handler()))
	mux.HandleFunc("GET /{$}", m.consolePage)
	return hsts(mux)
}

// hstsValue keeps browsers on HTTPS for the console for a year. Port 4119 speaks only TLS; the agent
// channel (4120) has no browsers and sends none.
const hstsValue = "max-age=31536000"

// hsts sends Strict-Transport-Security on every answer of 4119.
func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", hstsValue)
		next.ServeHTTP(w, r)
	})
}

// healthz answers 200 "ok" while the Manager can keep what it is told, and 503 with the reason when its
// install folder or database is gone from under it.
func (m *Manager) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := m.Writable(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %v\n", err)
		return
	}
	w.Write([]byte("ok\n"))
}

// healthGate answers 503 for the API while the install folder or the database is gone: even the API key
// check reads a database that is no longer the Manager's.
func (m *Manager) healthGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.Writable(); err != nil {
			w.Header().Set("Cache-Control", "no-store")
			writeError(w, http.StatusServiceUnavailable, "the Manager takes no requests now, and changed nothing: %v", err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// PolicyReport is what GET /api/policy answers: the policy in force on this node's two ports, and the
// configuration error that keeps a newer one out, if any.
func (m *Manager) PolicyReport() any {
	m.mu.Lock()
	perr := m.policyErr
	m.mu.Unlock()
	rep := struct {
		tlspolicy.Report
		ConfigError string `json:"config_error,omitempty"`
	}{ConfigError: perr}
	for _, s := range []*tlsPort{m.console, m.agents} {
		rep.Ports = append(rep.Ports, tlspolicy.NewPortReport(&tlspolicy.Explanation{Policy: s.Policy()}))
	}
	return rep
}

// hooks let the operations layer reach the running Manager: what it holds in memory is written before a
// report reads the database, and changes apply now instead of at the next poll.
type hooks struct{ m *Manager }

func (h hooks) Flush(ctx context.Context) {
	h.m.flushCheckIns(ctx)
	h.m.tel.Flush(ctx)
}

func (h hooks) SettingsChanged(ctx context.Context) { h.m.Reload(ctx) }

func (h hooks) ManagerCertChanged(ctx context.Context) error {
	h.m.Reload(ctx)
	return h.m.certInForce()
}

func (h hooks) Writable() error { return h.m.Writable() }

// FleetChanged pushes on the Manager's own context: pushes outlive the request that released them.
func (h hooks) FleetChanged(ctx context.Context) { h.m.syncFleet(h.m.runCtx) }

// CertsChanged signs and pushes the CRL on the Manager's own context too.
func (h hooks) CertsChanged(ctx context.Context) {
	h.m.syncFleet(h.m.runCtx) // the relays' addresses and the deactivated flag, for the push
	h.m.certsChanged(h.m.runCtx, true)
}

var writeError = fleetapi.WriteError
var writeJSON = fleetapi.WriteJSON

var consoleTmpl = template.Must(template.New("console").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tlsfleet Manager</title></head>
<body><h1>tlsfleet Manager</h1>
<p>The web console arrives in a later release. Sign-in: user <code>admin</code>, one-time password in
<code>{{.PasswordFile}}</code> in the install folder.</p>
<p>Meanwhile: the REST API under <code>/api/</code> (an API key from <code>dsm_c -action createapikey</code>),
and <code>dsm_c</code> in the install folder.</p>
</body></html>`))

func (m *Manager) consolePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	if err := consoleTmpl.Execute(w, map[string]string{"PasswordFile": "admin-initial-password.txt"}); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		m.log.Debug("console page", "err", err)
	}
}
