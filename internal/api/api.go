// Package api is the Manager's REST API on port 4119: each endpoint decodes its input, calls one
// operation of internal/ops and encodes the result as JSON, the same result dsm_c -output json prints for
// the same action. Requests carry an API key (Authorization: Bearer KEY, or api-secret-key: KEY).
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/ops"
)

// Node is what only the running Manager knows: the policy in force on its own listeners.
type Node interface {
	// PolicyReport is what GET /api/policy answers: the effective policy of each of the node's ports.
	PolicyReport() any
}

// Server serves the REST API over the operations.
type Server struct {
	ops  *ops.Ops
	node Node
	log  *slog.Logger
}

// New returns the REST API over o; node answers /api/policy.
func New(o *ops.Ops, node Node, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{ops: o, node: node, log: log}
}

// Body size limits.
const (
	maxBody = 64 << 10
)

// Handler is the API under /api/, every route behind the API key check.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	routes := []struct {
		pattern string
		h       handler
	}{
		{"GET /api/settings", s.listSettings},
		{"GET /api/settings/{name}", s.getSetting},
		{"PUT /api/settings/{name}", s.putSetting},
		{"GET /api/apikeys", s.listAPIKeys},
		{"POST /api/apikeys", s.createAPIKey},
		{"DELETE /api/apikeys/{name}", s.revokeAPIKey},
		{"POST /api/activationtokens", s.createToken},
		{"GET /api/computers", s.listComputers},
		{"POST /api/computers", s.addComputer},
		{"POST /api/computers/{name}/deactivate", s.setDeactivated(true)},
		{"POST /api/computers/{name}/reactivate", s.setDeactivated(false)},
		{"PUT /api/computers/{name}/relay", s.setRelay},
		{"PUT /api/computers/{name}/relaygroup", s.assignRelayGroup},
		{"GET /api/relaygroups", s.listRelayGroups},
		{"GET /api/managernodes", s.listManagerNodes},
		{"POST /api/relaygroups", s.createRelayGroup},
		{"POST /api/sendpolicy", s.sendPolicy},
		{"POST /api/bundles", s.publishBundle},
		{"GET /api/tlsclients", s.tlsClients},
		{"GET /api/fleetca", s.fleetCA},
		{"POST /api/managercert/rotate", s.rotateCert},
		{"GET /api/policy", func(r *http.Request) (int, any, error) { return http.StatusOK, s.node.PolicyReport(), nil }},
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, s.serve(rt.h))
	}
	mux.Handle("/api/", s.serve(func(r *http.Request) (int, any, error) {
		return 0, nil, httpErrorf(http.StatusNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path)
	}))
	return noStore(s.requireKey(mux))
}

// noStore keeps every answer of the API, errors included, out of caches: they hold settings, keys and
// tokens shown once.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// handler is one endpoint: it returns the status and the value to answer with, or an error that serve
// renders.
type handler func(r *http.Request) (int, any, error)

// httpError is an error of the API itself (a malformed body, an unknown endpoint) with its status.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func httpErrorf(code int, format string, a ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, a...)}
}

// statusOf maps the operations' input errors to HTTP.
func statusOf(k ops.Kind) int {
	switch k {
	case ops.NotFound:
		return http.StatusNotFound
	case ops.Conflict:
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// serve is the one adapter from handlers to HTTP: results as JSON, input errors as 4xx naming the field,
// anything else as a 500 that is logged (its text may hold paths, so the client gets a summary).
func (s *Server) serve(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, v, err := h(r)
		var he *httpError
		var be *fleetapi.BodyError
		var mbe *http.MaxBytesError
		var ue *ops.UnavailableError
		switch ie, isInput := ops.AsInput(err); {
		case err == nil:
			fleetapi.WriteJSON(w, code, v)
		case isInput:
			body := map[string]string{"error": ie.Render(nil)}
			if ie.Field != "" {
				body["field"] = ie.Field
			}
			fleetapi.WriteJSON(w, statusOf(ie.Kind), body)
		case errors.As(err, &he):
			fleetapi.WriteError(w, he.code, "%s", he.msg)
		case errors.As(err, &be):
			fleetapi.WriteError(w, be.Status, "%s", be.Error())
		case errors.As(err, &ue):
			fleetapi.WriteError(w, http.StatusServiceUnavailable, "the Manager takes no changes now, and changed nothing: %s", ue.Why)
		case errors.As(err, &mbe):
			fleetapi.WriteError(w, http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes", mbe.Limit)
		default:
			s.log.Error("API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			fleetapi.WriteError(w, http.StatusInternalServerError, "the Manager could not do this: %v", err)
		}
	})
}

type callerKey struct{}

// actor names who made a change through the API, as the setting events record it.
func actor(r *http.Request) string {
	c, _ := r.Context().Value(callerKey{}).(ops.Caller)
	return "api:" + c.Name
}

// reads reports whether a request only reads, as a read-only key may.
func reads(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// requireKey admits requests that carry a valid API key, as "Authorization: Bearer KEY" or
// "api-secret-key: KEY", checked against the database on every request (so a revoked key is refused at
// once, on every node), and whose scope allows the method.
func (s *Server) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("api-secret-key")
		if h := r.Header.Get("Authorization"); key == "" && strings.HasPrefix(h, "Bearer ") {
			key = strings.TrimPrefix(h, "Bearer ")
		}
		caller, err := s.ops.CheckAPIKey(r.Context(), strings.TrimSpace(key))
		if err == nil && !reads(r) {
			err = caller.MayChange()
		}
		var ke *ops.KeyError
		var se *ops.ScopeError
		switch {
		case errors.As(err, &ke):
			w.Header().Set("WWW-Authenticate", `Bearer realm="tlsfleet"`)
			fleetapi.WriteError(w, http.StatusUnauthorized, "%s; create a key with `dsm_c -action createapikey -name NAME` and send it as Authorization: Bearer KEY", ke.Why)
		case errors.As(err, &se):
			fleetapi.WriteError(w, http.StatusForbidden, "%s %s: %v", r.Method, r.URL.Path, se)
		case err != nil:
			s.log.Error("checking an API key", "err", err)
			fleetapi.WriteError(w, http.StatusInternalServerError, "the Manager could not check the API key: its database failed (see the Manager's log)")
		default:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)))
		}
	})
}

// decode reads a JSON body into v (fleetapi.DecodeJSON: one JSON value sent as application/json, no
// key twice, no unknown field, at most maxBody bytes); a malformed body is a 400 that shows the shape
// wanted.
func decode(r *http.Request, v any, want string) error {
	err := fleetapi.DecodeJSON(nil, r, maxBody, v)
	if be, ok := errors.AsType[*fleetapi.BodyError](err); ok && be.Status == http.StatusBadRequest {
		return httpErrorf(http.StatusBadRequest, "send a JSON body %s (%v)", want, err)
	}
	return err
}
