package manager

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/dsmc"
	"tlsfleet/internal/install"
	"tlsfleet/internal/store"
	"tlsfleet/internal/store/storetest"
)

// Every action through dsm_c and through the REST API gives the same result and the same stored state.
// Two installs are prepared alike (the same computers, groups and handshake counts); each step runs
// through dsm_c on the first (with its Manager stopped, as the page's procedures do) and through the API
// of a running Manager on the second, and the two outputs and the two databases are compared, step by
// step. Bad input, too: exit 2 on one side, a 4xx on the other, and no row changed on either; bodies
// only the API takes (malformed JSON, the wrong Content-Type, too large) are API-only steps.
func TestBothWays(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "agent-2.0.bin")
	if err := os.WriteFile(bundle, []byte("bundle bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	const relayMin = "settings.configuration.restrictRelayMinimumTLSProtocol"
	steps := []struct {
		name   string
		dsmc   []string
		method string
		path   string
		body   any
		raw    []byte // a body sent as is (bundles)
		ctype  string // the body's Content-Type if not application/json (raw: application/octet-stream); "-" none
		code   int    // the API's status; 4xx means the step is bad input (dsm_c exits 2)
		want   string // bad input: in the API's answer
		// one: dsm_c prints a list of one where the API answers the object itself.
		one bool
	}{
		{name: "viewsetting all", dsmc: []string{"-action", "viewsetting"}, method: "GET", path: "/api/settings", code: 200},
		{name: "viewsetting one", dsmc: []string{"-action", "viewsetting", "-name", relayMin}, method: "GET", path: "/api/settings/" + relayMin, code: 200, one: true},
		{name: "changesetting", dsmc: []string{"-action", "changesetting", "-name", relayMin, "-value", "TLSv1.3"},
			method: "PUT", path: "/api/settings/" + relayMin, body: map[string]string{"value": "TLSv1.3"}, code: 200},
		{name: "changesetting again", dsmc: []string{"-action", "changesetting", "-name", relayMin, "-value", "tlsv1.3"},
			method: "PUT", path: "/api/settings/" + relayMin, body: map[string]string{"value": "tlsv1.3"}, code: 200},
		{name: "changesetting to a default never stored", dsmc: []string{"-action", "changesetting", "-name", "settings.configuration.enableStrongCiphers", "-value", "false"},
			method: "PUT", path: "/api/settings/settings.configuration.enableStrongCiphers", body: map[string]string{"value": "false"}, code: 200},
		{name: "createapikey", dsmc: []string{"-action", "createapikey", "-name", "ci pipeline"}, method: "POST", path: "/api/apikeys",
			body: map[string]string{"name": "ci pipeline"}, code: 201},
		{name: "createapikey read-only with an expiry", dsmc: []string{"-action", "createapikey", "-name", "reader", "-scope", "read-only", "-expires", "30d"},
			method: "POST", path: "/api/apikeys", body: map[string]string{"name": "reader", "scope": "read-only", "expires": "30d"}, code: 201},
		{name: "listapikeys", dsmc: []string{"-action", "listapikeys"}, method: "GET", path: "/api/apikeys", code: 200},
		{name: "revokeapikey", dsmc: []string{"-action", "revokeapikey", "-name", "reader"}, method: "DELETE", path: "/api/apikeys/reader", code: 200},
		{name: "revokeapikey again", dsmc: []string{"-action", "revokeapikey", "-name", "reader"}, method: "DELETE", path: "/api/apikeys/reader", code: 200},
		{name: "listapikeys after revoking", dsmc: []string{"-action", "listapikeys"}, method: "GET", path: "/api/apikeys", code: 200},
		{name: "createactivationtoken", dsmc: []string{"-action", "createactivationtoken", "-uses", "5", "-relaygroup", "Branch Office", "-policyid", "web", "-expires", "3d"},
			method: "POST", path: "/api/activationtokens", body: map[string]any{"uses": 5, "relay_group": "Branch Office", "policy_id": "web", "expires": "3d"}, code: 201},
		{name: "listcomputers", dsmc: []string{"-action", "listcomputers"}, method: "GET", path: "/api/computers", code: 200},
		{name: "deactivate", dsmc: []string{"-action", "deactivate", "-name", "web-1"}, method: "POST", path: "/api/computers/web-1/deactivate", code: 200},
		{name: "deactivate again", dsmc: []string{"-action", "deactivate", "-name", "WEB-1"}, method: "POST", path: "/api/computers/WEB-1/deactivate", code: 200},
		{name: "reactivate", dsmc: []string{"-action", "reactivate", "-name", "g-web-1"}, method: "POST", path: "/api/computers/g-web-1/reactivate", code: 200},
		{name: "setrelay", dsmc: []string{"-action", "setrelay", "-name", "web-1", "-value", "true"}, method: "PUT", path: "/api/computers/web-1/relay",
			body: map[string]bool{"value": true}, code: 200},
		{name: "createrelaygroup", dsmc: []string{"-action", "createrelaygroup", "-name", "Lab"}, method: "POST", path: "/api/relaygroups",
			body: map[string]string{"name": "Lab"}, code: 201},
		{name: "assignrelaygroup", dsmc: []string{"-action", "assignrelaygroup", "-name", "web-1", "-value", "Lab"}, method: "PUT", path: "/api/computers/web-1/relaygroup",
			body: map[string]string{"relay_group": "Lab"}, code: 200},
		{name: "listrelaygroups", dsmc: []string{"-action", "listrelaygroups"}, method: "GET", path: "/api/relaygroups", code: 200},
		{name: "listmanagernodes", dsmc: []string{"-action", "listmanagernodes"}, method: "GET", path: "/api/managernodes", code: 200},
		{name: "publishbundle", dsmc: []string{"-action", "publishbundle", "-name", "agent-2.0", "-value", bundle}, method: "POST",
			path: "/api/bundles?name=agent-2.0", raw: []byte("bundle bytes"), code: 200},
		{name: "sendpolicy to a group", dsmc: []string{"-action", "sendpolicy", "-relaygroup", "Lab"}, method: "POST", path: "/api/sendpolicy",
			body: map[string]string{"relay_group": "Lab"}, code: 200},
		{name: "sendpolicy to a computer", dsmc: []string{"-action", "sendpolicy", "-name", "relay-1"}, method: "POST", path: "/api/sendpolicy",
			body: map[string][]string{"computers": {"relay-1"}}, code: 200},
		{name: "sendpolicy to all relays", dsmc: []string{"-action", "sendpolicy", "-allrelays"}, method: "POST", path: "/api/sendpolicy",
			body: map[string]bool{"all_relays": true}, code: 200},
		{name: "tlsclients", dsmc: []string{"-action", "tlsclients", "-name", "4122", "-days", "30"}, method: "GET", path: "/api/tlsclients?port=4122&days=30", code: 200},
		{name: "exportdsmcert", dsmc: []string{"-action", "exportdsmcert"}, method: "GET", path: "/api/fleetca", code: 200},
		{name: "listcomputers at the end", dsmc: []string{"-action", "listcomputers"}, method: "GET", path: "/api/computers", code: 200},

		// Bad input: refused both ways, nothing stored.
		{name: "unknown setting", dsmc: []string{"-action", "changesetting", "-name", "settings.configuration.nope", "-value", "x"},
			method: "PUT", path: "/api/settings/settings.configuration.nope", body: map[string]string{"value": "x"}, code: 404},
		{name: "bad setting value", dsmc: []string{"-action", "changesetting", "-name", relayMin, "-value", "TLSv1.4"},
			method: "PUT", path: "/api/settings/" + relayMin, body: map[string]string{"value": "TLSv1.4"}, code: 400},
		{name: "duplicate key name", dsmc: []string{"-action", "createapikey", "-name", "ci pipeline"}, method: "POST", path: "/api/apikeys",
			body: map[string]string{"name": "ci pipeline"}, code: 409},
		{name: "bad key name", dsmc: []string{"-action", "createapikey", "-name", "ci/bot"}, method: "POST", path: "/api/apikeys",
			body: map[string]string{"name": "ci/bot"}, code: 400},
		{name: "bad key scope", dsmc: []string{"-action", "createapikey", "-name", "ops", "-scope", "owner"}, method: "POST", path: "/api/apikeys",
			body: map[string]string{"name": "ops", "scope": "owner"}, code: 400, want: `scope \"owner\" is not a scope`},
		{name: "bad key expiry", dsmc: []string{"-action", "createapikey", "-name", "ops", "-expires", "soon"}, method: "POST", path: "/api/apikeys",
			body: map[string]string{"name": "ops", "expires": "soon"}, code: 400, want: `expires \"soon\"`},
		{name: "key expiry in the past", dsmc: []string{"-action", "createapikey", "-name", "ops", "-expires", "2020-01-01T00:00:00Z"}, method: "POST",
			path: "/api/apikeys", body: map[string]string{"name": "ops", "expires": "2020-01-01T00:00:00Z"}, code: 400, want: "is not ahead of now"},
		{name: "revoke an unknown key", dsmc: []string{"-action", "revokeapikey", "-name", "nobody"}, method: "DELETE", path: "/api/apikeys/nobody",
			code: 404, want: `name \"nobody\" is not an API key`},
		{name: "token for an unknown group", dsmc: []string{"-action", "createactivationtoken", "-relaygroup", "Nowhere"}, method: "POST",
			path: "/api/activationtokens", body: map[string]string{"relay_group": "Nowhere"}, code: 404},
		{name: "unknown computer", dsmc: []string{"-action", "deactivate", "-name", "db-9"}, method: "POST", path: "/api/computers/db-9/deactivate", code: 404},
		{name: "ambiguous host name", dsmc: []string{"-action", "setrelay", "-name", "twin", "-value", "true"}, method: "PUT", path: "/api/computers/twin/relay",
			body: map[string]bool{"value": true}, code: 409},
		{name: "existing group", dsmc: []string{"-action", "createrelaygroup", "-name", "lab"}, method: "POST", path: "/api/relaygroups",
			body: map[string]string{"name": "lab"}, code: 409},
		{name: "assign to an unknown group", dsmc: []string{"-action", "assignrelaygroup", "-name", "web-1", "-value", "Nowhere"}, method: "PUT",
			path: "/api/computers/web-1/relaygroup", body: map[string]string{"relay_group": "Nowhere"}, code: 404},
		{name: "sendpolicy to an unknown group", dsmc: []string{"-action", "sendpolicy", "-relaygroup", "No Such Group"}, method: "POST", path: "/api/sendpolicy",
			body: map[string]string{"relay_group": "No Such Group"}, code: 404, want: `relay_group \"No Such Group\" is not a relay group`},
		{name: "sendpolicy to a deactivated computer", dsmc: []string{"-action", "sendpolicy", "-name", "old-box"}, method: "POST", path: "/api/sendpolicy",
			body: map[string][]string{"computers": {"old-box"}}, code: 400},
		{name: "tlsclients for 0 days", dsmc: []string{"-action", "tlsclients", "-days", "0"}, method: "GET", path: "/api/tlsclients?days=0", code: 400},

		// Bodies only the API takes: refused, nothing stored.
		{name: "trailing bracket", method: "PUT", path: "/api/settings/" + relayMin, raw: []byte(`{"value":"TLSv1.1"}]`), ctype: "application/json",
			code: 400, want: `trailing data after the JSON value at byte 19: \"]\"`},
		{name: "a second object", method: "PUT", path: "/api/settings/" + relayMin, raw: []byte(`{"value":"TLSv1.1"}{"value":"TLSv1"}`), ctype: "application/json",
			code: 400, want: "trailing data"},
		{name: "a key twice", method: "PUT", path: "/api/settings/" + relayMin, raw: []byte(`{"value":"TLSv1.1","value":"TLSv1"}`), ctype: "application/json",
			code: 400, want: `duplicate key \"value\"`},
		{name: "a key twice in another case", method: "PUT", path: "/api/settings/" + relayMin, raw: []byte(`{"value":"TLSv1.1","Value":"TLSv1"}`),
			ctype: "application/json", code: 400, want: `duplicate key \"Value\"`},
		{name: "a form body", method: "PUT", path: "/api/settings/" + relayMin, body: map[string]string{"value": "TLSv1.1"}, ctype: "application/x-www-form-urlencoded",
			code: 415, want: "Content-Type: application/json"},
		{name: "no Content-Type", method: "POST", path: "/api/relaygroups", body: map[string]string{"name": "Untyped"}, ctype: "-", code: 415, want: "no Content-Type"},
		{name: "a body over the limit", method: "PUT", path: "/api/settings/" + relayMin, ctype: "application/json",
			raw: append([]byte(`{"value":"TLSv1.1"}`), bytes.Repeat([]byte(" "), 70<<10)...), code: 413, want: "larger than 65536 bytes"},
		{name: "a key twice in sendpolicy", method: "POST", path: "/api/sendpolicy", raw: []byte(`{"relay_group":"Lab","relay_group":"No Such Group"}`),
			ctype: "application/json", code: 400, want: `duplicate key \"relay_group\"`},
	}

	dirA, m, key := bothWaysInstalls(t)
	folderA, err := install.Open(dirA)
	if err != nil {
		t.Fatal(err)
	}
	dbA := folderA.Database
	dbB := m.folder.Database
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			beforeA, beforeB := dumpDB(t, dbA), dumpDB(t, dbB)
			var out, errOut bytes.Buffer
			code := dsmc.ExitBadInput // an API-only step
			if st.dsmc != nil {
				code = dsmc.Run(t.Context(), append(append([]string{"--dir", dirA}, st.dsmc...), "-output", "json"), &out, &errOut)
			}
			status, answer := rawCall(t, m, st.method, st.path, key, st.body, st.raw, st.ctype)
			settled(t, m)
			if st.code >= 400 {
				if !bytes.Contains(answer, []byte(st.want)) {
					t.Errorf("the API's answer does not contain %s:\n%s", st.want, answer)
				}
				if code != dsmc.ExitBadInput || status != st.code {
					t.Errorf("dsm_c exit %d (want 2), API %d (want %d)\ndsm_c: %s\nAPI: %s", code, status, st.code, errOut.String(), answer)
				}
				if diff := cmp.Diff(beforeA, dumpDB(t, dbA)); diff != "" {
					t.Errorf("dsm_c changed the database:\n%s", diff)
				}
				if diff := cmp.Diff(beforeB, dumpDB(t, dbB)); diff != "" {
					t.Errorf("the API changed the database:\n%s", diff)
				}
				return
			}
			if code != 0 || status != st.code {
				t.Fatalf("dsm_c exit %d, API %d (want %d)\ndsm_c: %s\nAPI: %s", code, status, st.code, errOut.String(), answer)
			}
			a, b := normalize(t, out.Bytes(), dirA), normalize(t, answer, m.folder.Dir)
			if st.one {
				b = []any{b}
			}
			if diff := cmp.Diff(a, b); diff != "" {
				t.Errorf("dsm_c and the API answer differently (-dsm_c +API):\n%s", diff)
			}
			if diff := cmp.Diff(dumpDB(t, dbA), dumpDB(t, dbB)); diff != "" {
				t.Errorf("the databases differ (-dsm_c +API):\n%s", diff)
			}
		})
	}
}

// bothWaysInstalls prepares two installs alike and returns the first's folder (its Manager stopped), the
// second's running Manager and an API key for it (a key of the same name exists in both).
func bothWaysInstalls(t *testing.T) (string, *Manager, string) {
	t.Helper()
	seed := func(d install.Database) string {
		ctx := t.Context()
		db, err := store.OpenDatabase(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, c := range []store.Computer{{GUID: "g-relay-1", Hostname: "relay-1"}, {GUID: "g-web-1", Hostname: "web-1"},
			{GUID: "g-twin-a", Hostname: "twin"}, {GUID: "g-twin-b", Hostname: "twin"}, {GUID: "g-old", Hostname: "old-box"}} {
			_, hash, _ := auth.NewActivationToken()
			if err := db.InsertActivationToken(ctx, hash, store.ActivationToken{ExpiresAt: "2100-01-01T00:00:00Z", UsesLeft: 1}); err != nil {
				t.Fatal(err)
			}
			c.Platform, c.AgentVersion, c.TLSVersions = "linux/amd64", "1.0.0", "TLSv1.2,TLSv1.3"
			if _, err := db.Activate(ctx, hash, time.Now(), c, func(store.ActivationToken) (store.Computer, error) { return c, nil }); err != nil {
				t.Fatal(err)
			}
		}
		key, err := auth.NewAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := db.InsertAPIKey(ctx, "both-ways", key.Prefix, key.Hash); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateRelayGroup(ctx, "Branch Office"); err != nil {
			t.Fatal(err)
		}
		for _, e := range []struct {
			f func() error
		}{{func() error { return db.SetRelay(ctx, "g-relay-1", true) }}, {func() error { return db.SetDeactivated(ctx, "g-old", true) }},
			{func() error {
				return db.AddObservations(ctx, []store.Observation{{Port: 4122, ClientIP: "10.0.0.9", OfferedMax: "TLSv1", Version: "", Outcome: "rejected",
					Reason: "TLSv1 is disabled", Count: 3, FirstSeen: "2026-11-30T10:00:00Z", LastSeen: time.Now().UTC().Format(time.RFC3339Nano)}})
			}}} {
			if err := e.f(); err != nil {
				t.Fatal(err)
			}
		}
		return key.Plaintext
	}
	// Each install: first start (folder, CA, database), the seed with the Manager stopped, a second start
	// (which releases the computers' first policies). The first install's Manager then stops for good.
	var dirA, key string
	var b *Manager
	for i := range 2 {
		m := startManager(t, nil)
		dir, d := m.folder.Dir, m.folder.Database
		m.Close()
		key = seed(d)
		m2 := startManager(t, func(o *Options) { o.Dir = dir })
		if i == 0 {
			m2.Close()
			dirA = dir
		} else {
			b = m2
		}
	}
	return dirA, b, key
}

// settled waits until the running Manager has followed every change in its database (its fleet cache
// is at the database's fleet version), so that no release of its own runs into the next step.
func settled(t *testing.T, m *Manager) {
	t.Helper()
	eventually(t, 5*time.Second, "the Manager following its database", func() bool {
		v, err := m.db.FleetVersion(t.Context())
		m.fleet.mu.Lock()
		defer m.fleet.mu.Unlock()
		return err == nil && v == m.fleet.version
	})
}

// rawCall calls the API and returns the status and the body. The body goes as application/json, raw as
// application/octet-stream, unless ctype names another Content-Type ("-": none).
func rawCall(t *testing.T, m *Manager, method, path, key string, body any, raw []byte, ctype string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch {
	case raw != nil:
		rd = bytes.NewReader(raw)
	case body != nil:
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	u := &url.URL{Scheme: "https", Host: m.ConsoleAddr()}
	full, err := u.Parse(path)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, full.String(), rd)
	req.Header.Set("Authorization", "Bearer "+key)
	switch {
	case ctype == "-":
	case ctype != "":
		req.Header.Set("Content-Type", ctype)
	case raw != nil:
		req.Header.Set("Content-Type", "application/octet-stream")
	case body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := apiClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// serialRE finds a release's serial: the running Manager may release in the background between an
// operation's change and its own release, which then takes the next serial (the change counter, which
// is left out for the same reason, counts it). Which release wrote a policy is not state.
var serialRE = regexp.MustCompile(`"serial":[0-9]+`)

// volatile are the fields that differ between two installs by nature: secrets, times, the CA, paths.
var volatile = map[string]bool{"key": true, "prefix": true, "token": true, "expires_at": true, "command": true, "pem": true,
	"activated_at": true, "last_seen": true, "serial": true, "first_seen": true, "cert_serial": true, "cert_expires": true,
	"created_at": true, "revoked_at": true, "last_used_at": true, "started_at": true, "console_addr": true, "agent_addr": true}

// normalize decodes JSON output and blanks what differs between installs by nature; the install folder
// becomes "DIR" and the fleet CA's fingerprint "CA".
func normalize(t *testing.T, data []byte, dir string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, data)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			if _, entry := x["guid"]; entry && x["fingerprint"] != nil && x["hostname"] != nil {
				// A released policy's serial is there only when this operation released it, not when
				// the running Manager's own release took it first.
				x["serial"] = "volatile"
			}
			if _, node := x["agent_addr"]; node && x["started_at"] != nil {
				// A Manager node: named after its ports, and online on the API's side only (dsm_c works
				// beside a stopped Manager); ops' TestListManagerNodes checks the status.
				x["name"], x["status"] = "volatile", "volatile"
			}
			for k, e := range x {
				switch {
				case volatile[k]:
					x[k] = "volatile"
				case k == "fingerprint" && x["pem"] != nil || k == "fingerprint" && x["token"] != nil:
					x[k] = "CA"
				default:
					x[k] = walk(e)
				}
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case string:
			return strings.ReplaceAll(x, dir, "DIR")
		}
		return v
	}
	return walk(v)
}

// dumpDB reads every table but the handshake counts (the API's own requests are counted on one side),
// without the columns that differ between two installs by nature; times that may be unset (a key's
// expiry and revocation) read as "SET" or "". A key's last use is left out: the API's own key is used on
// one side only.
func dumpDB(t *testing.T, d install.Database) map[string][]string {
	t.Helper()
	return storetest.DumpDatabase(t, d, storetest.Options{
		Tables: []string{"settings", "setting_events", "api_keys", "activation_tokens", "computers", "relay_groups", "bundles"},
		Skip: map[string]bool{"created_at": true, "updated_at": true, "at": true, "activated_at": true, "token_hash": true,
			"secret_hash": true, "prefix": true, "last_seen": true, "cert_serial": true, "cert_expires": true, "password_hash": true, "id": true,
			"last_used_at": true},
		Value: func(col string, v any) any {
			if s, ok := v.(string); ok && s != "" && (col == "expires_at" || col == "revoked_at") {
				return "SET"
			}
			if s, ok := v.(string); ok && col == "policy_json" {
				return serialRE.ReplaceAllString(s, `"serial":N`)
			}
			if s, ok := v.(string); ok && (strings.HasPrefix(s, "dsm_c:") || strings.HasPrefix(s, "api:")) {
				return "ACTOR" // who made a change: the OS user on one side, the API key on the other
			}
			return v
		},
	})
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
