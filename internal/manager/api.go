package manager

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

var (
	writeJSON  = fleetapi.WriteJSON
	writeError = fleetapi.WriteError
)

// consoleHandler serves port 4119: health, metrics, the REST API and the console page.
func (m *Manager) consoleHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		m.tel.WriteMetrics(w)
	})
	api := http.NewServeMux()
	api.HandleFunc("GET /api/settings", m.apiListSettings)
	api.HandleFunc("GET /api/settings/{name}", m.apiGetSetting)
	api.HandleFunc("PUT /api/settings/{name}", m.apiPutSetting)
	api.HandleFunc("GET /api/tlsclients", m.apiTLSClients)
	api.HandleFunc("GET /api/policy", m.apiPolicy)
	api.HandleFunc("GET /api/computers", m.apiComputers)
	api.HandleFunc("POST /api/sendpolicy", m.apiSendPolicy)
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path)
	})
	mux.Handle("/api/", m.requireKey(api))
	mux.HandleFunc("GET /{$}", m.consolePage)
	return mux
}

// agentHandler serves port 4120: activation (server-authenticated TLS) now; the mutual-TLS heartbeat
// endpoints come with the agent.
func (m *Manager) agentHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST "+fleetapi.PathActivate, m.activate)
	mux.HandleFunc("POST "+fleetapi.PathHeartbeat, m.heartbeat)
	mux.HandleFunc("GET "+fleetapi.PathBundles+"{sha256}", m.bundle)
	return mux
}

type keyName struct{}

// requireKey admits requests that carry a valid API key, as "Authorization: Bearer KEY" or
// "api-secret-key: KEY".
func (m *Manager) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("api-secret-key")
		if h := r.Header.Get("Authorization"); key == "" && strings.HasPrefix(h, "Bearer ") {
			key = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
		}
		deny := func(why string) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tlsfleet"`)
			writeError(w, http.StatusUnauthorized, "%s; create a key with `dsm_c -action createapikey -name NAME` and send it as Authorization: Bearer KEY", why)
		}
		if key == "" {
			deny("no API key")
			return
		}
		prefix, err := auth.KeyPrefix(key)
		if err != nil {
			deny("malformed API key")
			return
		}
		name, hash, err := m.db.APIKeyHash(r.Context(), prefix)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			m.log.Error("checking an API key", "err", err)
			writeError(w, http.StatusInternalServerError, "the Manager could not check the API key: its database failed (see the Manager's log)")
			return
		}
		if err != nil || !auth.KeyMatches(key, hash) {
			deny("unknown API key")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyName{}, name)))
	})
}

type settingView struct {
	settings.Setting
	Value     string `json:"value"`
	IsDefault bool   `json:"is_default"`
}

func (m *Manager) settingViews(r *http.Request) ([]settingView, error) {
	vals, err := m.db.Settings(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]settingView, 0, len(settings.Registry))
	for _, s := range settings.Registry {
		v, ok := vals[s.Name]
		if !ok {
			v = s.Default
		}
		out = append(out, settingView{Setting: s, Value: v, IsDefault: !ok})
	}
	return out, nil
}

func (m *Manager) apiListSettings(w http.ResponseWriter, r *http.Request) {
	vs, err := m.settingViews(r)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading settings: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, vs)
}

func (m *Manager) apiGetSetting(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := settings.Lookup(name); !ok {
		writeError(w, http.StatusNotFound, "%v", settings.UnknownNameError(name))
		return
	}
	vs, err := m.settingViews(r)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading settings: %v", err)
		return
	}
	for _, v := range vs {
		if v.Name == name {
			writeJSON(w, http.StatusOK, v)
		}
	}
}

// apiPutSetting changes a setting. The answer comes after the change is committed (FULL synchronous
// SQLite): an acknowledged change survives a crash.
func (m *Manager) apiPutSetting(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := settings.Lookup(name); !ok {
		writeError(w, http.StatusNotFound, "%v", settings.UnknownNameError(name))
		return
	}
	var body struct {
		Value *string `json:"value"`
	}
	if err := fleetapi.DecodeJSON(w, r, 4096, &body); err != nil || body.Value == nil {
		writeError(w, http.StatusBadRequest, `send a JSON body {"value": "..."} (%v)`, err)
		return
	}
	v, err := settings.Validate(name, *body.Value)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	actor := "api:" + r.Context().Value(keyName{}).(string)
	old, changed, err := m.db.SetSetting(r.Context(), name, v, actor)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "storing %s: %v", name, err)
		return
	}
	if changed {
		m.log.Info("setting changed", "name", name, "old", old, "new", v, "by", actor)
		m.Reload(r.Context())
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "old": old, "value": v, "changed": changed})
}

func (m *Manager) apiTLSClients(w http.ResponseWriter, r *http.Request) {
	days, port := 7, 0
	if d := r.URL.Query().Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 3650 {
			writeError(w, http.StatusBadRequest, "days=%q: use a whole number of days from 1 to 3650", d)
			return
		}
		days = n
	}
	if p := r.URL.Query().Get("port"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			writeError(w, http.StatusBadRequest, "port=%q: use a port number", p)
			return
		}
		port = n
	}
	m.tel.Flush(r.Context()) // include what this node counted a moment ago
	since := time.Now().UTC().AddDate(0, 0, -days).Format(time.RFC3339Nano)
	obs, err := m.db.Observations(r.Context(), since, port)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading telemetry: %v", err)
		return
	}
	if obs == nil {
		obs = []store.Observation{}
	}
	writeJSON(w, http.StatusOK, obs)
}

func (m *Manager) apiPolicy(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	perr := m.policyErr
	m.mu.Unlock()
	rep := struct {
		tlspolicy.Report
		ConfigError string `json:"config_error,omitempty"`
	}{ConfigError: perr}
	for _, s := range []*tlspolicy.Server{m.console, m.agents} {
		rep.Ports = append(rep.Ports, tlspolicy.NewPortReport(&tlspolicy.Explanation{Policy: s.Policy()}))
	}
	writeJSON(w, http.StatusOK, rep)
}

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
