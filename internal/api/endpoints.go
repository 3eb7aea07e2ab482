package api

import (
	"io"
	"net/http"
	"strconv"

	"tlsfleet/internal/ops"
)

func (s *Server) listSettings(r *http.Request) (int, any, error) {
	vs, err := s.ops.ViewSettings(r.Context(), "")
	return http.StatusOK, vs, err
}

func (s *Server) getSetting(r *http.Request) (int, any, error) {
	vs, err := s.ops.ViewSettings(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, vs[0], nil
}

// putSetting changes a setting. The answer comes after the change is committed (FULL synchronous
// SQLite): an acknowledged change survives a crash.
func (s *Server) putSetting(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if _, _, err := ops.CheckSetting(name, "x"); err != nil {
		if ie, ok := ops.AsInput(err); ok && ie.Field == "name" {
			return 0, nil, err // an unknown setting is a 404 before the body matters
		}
	}
	var body struct {
		Value *string `json:"value"`
	}
	if err := decode(r, &body, `{"value": "..."}`); err != nil {
		return 0, nil, err
	}
	if body.Value == nil {
		return 0, nil, httpErrorf(http.StatusBadRequest, `send a JSON body {"value": "..."}: "value" is missing`)
	}
	res, err := s.ops.ChangeSetting(r.Context(), actor(r), name, *body.Value)
	if err == nil && res.Changed {
		s.log.Info("setting changed", "name", res.Name, "old", res.Old, "new", res.New, "by", actor(r))
	}
	return http.StatusOK, res, err
}

func (s *Server) createAPIKey(r *http.Request) (int, any, error) {
	var req ops.KeyRequest
	if err := decode(r, &req, `{"name": "...", "expires": "30d", "scope": "admin|read-only"} (expires and scope optional)`); err != nil {
		return 0, nil, err
	}
	key, err := s.ops.CreateAPIKey(r.Context(), req)
	return http.StatusCreated, key, err
}

func (s *Server) listAPIKeys(r *http.Request) (int, any, error) {
	keys, err := s.ops.ListAPIKeys(r.Context())
	return http.StatusOK, keys, err
}

func (s *Server) revokeAPIKey(r *http.Request) (int, any, error) {
	res, err := s.ops.RevokeAPIKey(r.Context(), r.PathValue("name"))
	return http.StatusOK, res, err
}

func (s *Server) createToken(r *http.Request) (int, any, error) {
	var req ops.TokenRequest
	if err := decode(r, &req, `{"expires": "24h", "uses": 1, "relay_group": "...", "policy_id": "..."} (every field optional)`); err != nil {
		return 0, nil, err
	}
	tok, err := s.ops.CreateActivationToken(r.Context(), req)
	return http.StatusCreated, tok, err
}

func (s *Server) listComputers(r *http.Request) (int, any, error) {
	cs, err := s.ops.ListComputers(r.Context())
	return http.StatusOK, cs, err
}

// addComputer is the Manager-initiated activation of an agent waiting on its port.
func (s *Server) addComputer(r *http.Request) (int, any, error) {
	var req ops.AddComputerRequest
	if err := decode(r, &req, `{"address": "HOST:4118", "manager_url": "dsm://MANAGER:4120/", "relay_group": "...", "policy_id": "..."}`); err != nil {
		return 0, nil, err
	}
	res, err := s.ops.AddComputer(r.Context(), req)
	return http.StatusCreated, res, err
}

func (s *Server) setDeactivated(off bool) handler {
	return func(r *http.Request) (int, any, error) {
		res, err := s.ops.SetDeactivated(r.Context(), r.PathValue("name"), off)
		return http.StatusOK, res, err
	}
}

func (s *Server) setRelay(r *http.Request) (int, any, error) {
	var body struct {
		Value *bool `json:"value"`
	}
	if err := decode(r, &body, `{"value": true|false}`); err != nil {
		return 0, nil, err
	}
	if body.Value == nil {
		return 0, nil, httpErrorf(http.StatusBadRequest, `send a JSON body {"value": true|false}: "value" is missing`)
	}
	res, err := s.ops.SetRelay(r.Context(), r.PathValue("name"), *body.Value)
	return http.StatusOK, res, err
}

func (s *Server) assignRelayGroup(r *http.Request) (int, any, error) {
	var body struct {
		RelayGroup string `json:"relay_group"`
	}
	if err := decode(r, &body, `{"relay_group": "..."}`); err != nil {
		return 0, nil, err
	}
	res, err := s.ops.AssignRelayGroup(r.Context(), r.PathValue("name"), body.RelayGroup)
	return http.StatusOK, res, err
}

func (s *Server) listRelayGroups(r *http.Request) (int, any, error) {
	gs, err := s.ops.ListRelayGroups(r.Context())
	return http.StatusOK, gs, err
}

func (s *Server) listManagerNodes(r *http.Request) (int, any, error) {
	nodes, err := s.ops.ListManagerNodes(r.Context())
	return http.StatusOK, nodes, err
}

func (s *Server) createRelayGroup(r *http.Request) (int, any, error) {
	var body struct {
		Name string `json:"name"`
	}
	if err := decode(r, &body, `{"name": "..."}`); err != nil {
		return 0, nil, err
	}
	res, err := s.ops.CreateRelayGroup(r.Context(), body.Name)
	return http.StatusCreated, res, err
}

// sendPolicy is the page's "send policy": {"computers": [...]} | {"relay_group": "G"} | {"all_relays": true}.
func (s *Server) sendPolicy(r *http.Request) (int, any, error) {
	var t ops.SendTarget
	if err := decode(r, &t, `{"computers": [...]}, {"relay_group": "G"} or {"all_relays": true}`); err != nil {
		return 0, nil, err
	}
	res, err := s.ops.SendPolicy(r.Context(), t)
	return http.StatusOK, res, err
}

// publishBundle takes the bundle's bytes as the body: POST /api/bundles?name=NAME.
func (s *Server) publishBundle(r *http.Request) (int, any, error) {
	name := r.URL.Query().Get("name")
	if err := ops.CheckBundleName(name); err != nil {
		return 0, nil, err
	}
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, ops.MaxBundleSize))
	if err != nil {
		return 0, nil, err
	}
	res, err := s.ops.PublishBundle(r.Context(), name, data)
	return http.StatusOK, res, err
}

func (s *Server) tlsClients(r *http.Request) (int, any, error) {
	days, port := 0, 0
	q := r.URL.Query()
	for _, p := range []struct {
		key string
		v   *int
	}{{"days", &days}, {"port", &port}} {
		if s := q.Get(p.key); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return 0, nil, httpErrorf(http.StatusBadRequest, "%s=%q is not a whole number", p.key, s)
			}
			*p.v = n
		}
	}
	if q.Has("days") && days == 0 {
		return 0, nil, ops.CheckTLSClients(0, port) // days=0 is refused, not the default
	}
	rep, err := s.ops.TLSClients(r.Context(), days, port)
	return http.StatusOK, rep.Clients, err
}

func (s *Server) fleetCA(r *http.Request) (int, any, error) {
	ca, err := s.ops.ReadFleetCA()
	return http.StatusOK, ca, err
}

// rotateCert replaces the Manager's certificate; an empty body keeps the key type.
func (s *Server) rotateCert(r *http.Request) (int, any, error) {
	var req ops.CertRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req, `{"key": "rsa"|"ecdsa"} (key optional: leave it out to keep the current type)`); err != nil {
			return 0, nil, err
		}
	}
	res, err := s.ops.RotateManagerCert(r.Context(), req)
	if err == nil {
		s.log.Info("manager certificate rotated", "key", res.Key, "sha256", res.Fingerprint, "by", actor(r))
	}
	return http.StatusOK, res, err
}
