package manager

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/auth"
	"tlsfleet/internal/dsmc"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/store"
)

// An API key's life on a running Manager: a read-only key reads and is refused (403, naming its scope)
// anything else; a key revoked through the API or by dsm_c beside the Manager is refused (401) on the
// very next request, with no wait for the Manager to poll; an expired key is refused saying it expired;
// the list shows each key's state and last use, never a secret or hash, and no log line holds a secret.
func TestAPIKeyLifecycle(t *testing.T) {
	var logs agenttest.SyncBuffer
	m := startManager(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	admin := apiKey(t, m)
	var reader, dsmcKey ops.NewKey
	if code := call(t, m, "POST", "/api/apikeys", admin, map[string]string{"name": "reader", "scope": "read-only", "expires": "30d"}, &reader); code != 201 ||
		reader.Scope != "read-only" || reader.ExpiresAt == "" {
		t.Fatalf("create a read-only key: %d %+v", code, reader)
	}
	var out, errOut bytes.Buffer
	if code := dsmc.Run(t.Context(), []string{"--dir", m.folder.Dir, "-action", "createapikey", "-name", "by-dsmc", "-output", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("dsm_c createapikey: exit %d: %s", code, errOut.String())
	}
	if err := json.Unmarshal(out.Bytes(), &dsmcKey); err != nil {
		t.Fatal(err)
	}
	expired, err := auth.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.db.(*store.DB).AddAPIKey(t.Context(), store.APIKey{Name: "old", Prefix: expired.Prefix,
		ExpiresAt: time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}, expired.Hash); err != nil {
		t.Fatal(err)
	}
	relayMin := "/api/settings/settings.configuration.restrictRelayMinimumTLSProtocol"
	revokeByDsmc := func(t *testing.T) {
		if code := dsmc.Run(t.Context(), []string{"--dir", m.folder.Dir, "-action", "revokeapikey", "-name", "by-dsmc"}, &out, &errOut); code != 0 {
			t.Fatalf("dsm_c revokeapikey: exit %d: %s", code, errOut.String())
		}
	}
	steps := []struct {
		name         string
		before       func(t *testing.T)
		key          string
		method, path string
		body         any
		code         int
		want         string // in the error
	}{
		{name: "read-only reads", key: reader.Key, method: "GET", path: "/api/settings", code: 200},
		{name: "read-only HEAD", key: reader.Key, method: "HEAD", path: "/api/computers", code: 200},
		{name: "read-only lists keys", key: reader.Key, method: "GET", path: "/api/apikeys", code: 200},
		{name: "read-only changes no setting", key: reader.Key, method: "PUT", path: relayMin, body: map[string]string{"value": "TLSv1.3"}, code: 403,
			want: `PUT ` + relayMin + `: API key "reader" has the read-only scope`},
		{name: "read-only makes no key", key: reader.Key, method: "POST", path: "/api/apikeys", body: map[string]string{"name": "escalate"}, code: 403,
			want: "read-only scope"},
		{name: "read-only revokes nothing", key: reader.Key, method: "DELETE", path: "/api/apikeys/by-dsmc", code: 403, want: "admin scope"},
		{name: "admin revokes the read-only key", key: admin, method: "DELETE", path: "/api/apikeys/reader", code: 200},
		{name: "revoked at once", key: reader.Key, method: "GET", path: "/api/settings", code: 401, want: `API key "reader" was revoked at`},
		{name: "a dsm_c key works", key: dsmcKey.Key, method: "GET", path: "/api/settings", code: 200},
		{name: "revoked by dsm_c: refused at once", before: revokeByDsmc, key: dsmcKey.Key, method: "GET", path: "/api/settings", code: 401,
			want: `API key "by-dsmc" was revoked`},
		{name: "expired", key: expired.Plaintext, method: "GET", path: "/api/settings", code: 401, want: `API key "old" expired at`},
		{name: "admin still works", key: admin, method: "GET", path: "/api/settings", code: 200},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before(t)
			}
			var e map[string]any
			code := call(t, m, st.method, st.path, st.key, st.body, &e)
			msg, _ := e["error"].(string)
			if code != st.code || !strings.Contains(msg, st.want) {
				t.Errorf("%s %s: %d %v; want %d and %q", st.method, st.path, code, e, st.code, st.want)
			}
		})
	}
	if v, _ := m.db.(*store.DB).Settings(t.Context()); v["settings.configuration.restrictRelayMinimumTLSProtocol"] != "" {
		t.Errorf("a read-only key changed a setting: %v", v)
	}

	var list []map[string]any
	if code := call(t, m, "GET", "/api/apikeys", admin, nil, &list); code != 200 {
		t.Fatalf("list: %d", code)
	}
	status := map[string]string{}
	for _, k := range list {
		name := k["name"].(string)
		status[name] = k["status"].(string)
		if used := k["last_used_at"] != ""; used != (name != "old") {
			t.Errorf("key %s: last_used_at %q", name, k["last_used_at"])
		}
	}
	want := map[string]string{"reader": "revoked", "by-dsmc": "revoked", "old": "expired", "test-" + strings.SplitN(admin, "_", 3)[1]: "active"}
	if toString(status) != toString(want) {
		t.Errorf("states %v, want %v", status, want)
	}
	raw := toString(list)
	for _, secret := range []string{admin, reader.Key, dsmcKey.Key, expired.Plaintext, expired.Hash, "hash"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the key list shows %q:\n%s", secret, raw)
		}
		if strings.Contains(logs.String(), secret) && secret != "hash" {
			t.Errorf("the log holds the secret %q", secret)
		}
	}
}

// Every answer of the API, errors included, says Cache-Control: no-store; every answer of 4119 carries
// HSTS.
func TestResponseHeaders(t *testing.T) {
	m := startManager(t, nil)
	key := apiKey(t, m)
	tests := []struct {
		name, method, path, key string
		code                    int
		noStore                 bool
	}{
		{name: "API answer", method: "GET", path: "/api/settings", key: key, code: 200, noStore: true},
		{name: "no key", method: "GET", path: "/api/settings", code: 401, noStore: true},
		{name: "unknown endpoint", method: "GET", path: "/api/nope", key: key, code: 404, noStore: true},
		{name: "bad input", method: "DELETE", path: "/api/apikeys/nobody", key: key, code: 404, noStore: true},
		{name: "health", method: "GET", path: "/healthz", code: 200},
		{name: "console page", method: "GET", path: "/", code: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, "https://"+m.ConsoleAddr()+tt.path, nil)
			if tt.key != "" {
				req.Header.Set("Authorization", "Bearer "+tt.key)
			}
			resp, err := apiClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
				t.Errorf("Strict-Transport-Security %q", got)
			}
			if got := resp.Header.Get("Cache-Control"); tt.noStore && got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}
}
