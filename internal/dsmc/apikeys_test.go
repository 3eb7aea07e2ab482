package dsmc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/ops"
)

// createapikey takes a scope and an expiry; listapikeys shows every key's scope, expiry, last use and
// state, and never a secret; revokeapikey revokes once and says so when the key was revoked already.
func TestAPIKeyActions(t *testing.T) {
	dir, db := newInstall(t)
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		code, stdout, stderr := dsmc(t, append([]string{"--dir", dir}, args...)...)
		if code != ExitOK {
			t.Fatalf("%q: exit %d: %s", args, code, stderr)
		}
		return stdout
	}
	if code, stdout, _ := dsmc(t, "--dir", dir, "-action", "listapikeys"); code != ExitOK || !strings.Contains(stdout, "No API keys") {
		t.Errorf("no keys: exit %d: %s", code, stdout)
	}
	var reader ops.NewKey
	expires := time.Now().AddDate(1, 0, 0).UTC().Truncate(time.Second).Format(time.RFC3339)
	if err := json.Unmarshal([]byte(run(t, "-action", "createapikey", "-name", "reader", "-scope", "read-only", "-expires", expires, "-output", "json")), &reader); err != nil {
		t.Fatal(err)
	}
	if reader.Scope != "read-only" || reader.ExpiresAt != expires {
		t.Errorf("created %+v", reader)
	}
	admin := run(t, "-action", "createapikey", "-name", "ci pipeline")
	wantContains(t, "createapikey", admin, `API key "ci pipeline" created, scope admin, never expires:`)

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "revoke", args: []string{"-action", "revokeapikey", "-name", "reader"},
			want: []string{`API key "reader" (prefix ` + reader.Prefix + `) revoked: every Manager node refuses it from its next request on.`}},
		{name: "revoke again", args: []string{"-action", "revokeapikey", "-name", "reader"}, want: []string{`API key "reader"`, "was revoked already", "(unchanged)"}},
		{name: "list", args: []string{"-action", "listapikeys"},
			want: []string{"NAME         PREFIX", "SCOPE      CREATED", "EXPIRES", "LAST USED", "STATUS",
				"ci pipeline", "admin", "never", "active", "reader", reader.Prefix, "read-only", expires, "revoked 20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantContains(t, "stdout", run(t, tt.args...), tt.want...)
		})
	}
	var list []ops.KeyView
	out := run(t, "-action", "listapikeys", "-output", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 || list[1].Status != ops.KeyRevoked || list[0].Status != ops.KeyActive {
		t.Fatalf("%v: %s", err, out)
	}
	_, hash, _ := db.APIKeyHash(t.Context(), reader.Prefix)
	if strings.Contains(out, hash) || strings.Contains(out, reader.Key) || strings.Contains(out, "secret") {
		t.Errorf("listapikeys shows a secret or hash:\n%s", out)
	}
}
