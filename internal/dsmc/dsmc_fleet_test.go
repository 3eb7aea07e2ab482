package dsmc

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/fleet"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/install"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

const autoSend = settings.AutoSendPolicy

// addComputer activates a computer through a token, as the Manager does.
func addComputer(t *testing.T, db *store.DB, c store.Computer) store.Computer {
	t.Helper()
	ctx := t.Context()
	_, hash, err := auth.NewActivationToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.InsertActivationToken(ctx, hash, store.ActivationToken{ExpiresAt: time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano), UsesLeft: 1}); err != nil {
		t.Fatal(err)
	}
	if c.Platform == "" {
		c.Platform, c.AgentVersion, c.TLSVersions = "linux/amd64", "1.0.0", "TLSv1.2,TLSv1.3"
	}
	got, err := db.Activate(ctx, hash, time.Now(), store.Computer{GUID: c.GUID, Hostname: c.Hostname},
		func(tok store.ActivationToken) (store.Computer, error) { return c, nil })
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// checkIn records a heartbeat (last seen, relay address, the policy the computer runs).
func checkIn(t *testing.T, db *store.DB, guid string, at time.Time, relayListen, acked string) {
	t.Helper()
	if err := db.RecordCheckIns(t.Context(), []store.CheckIn{{GUID: guid, LastSeen: at.UTC().Format(time.RFC3339Nano), Seq: 1,
		RelayListen: relayListen, NegotiatedTLS: "TLSv1.3", AgentVersion: "1.0.0", Platform: "linux/amd64", PolicyAcked: acked}}); err != nil {
		t.Fatal(err)
	}
}

// releaseAll gives every computer its current policy, as a Manager's automatic release does.
func releaseAll(t *testing.T, db *store.DB) {
	t.Helper()
	snap, err := fleet.Load(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fleet.Release(t.Context(), db, snap, fleet.Target{All: true}); err != nil {
		t.Fatal(err)
	}
}

// computer reads a computer and its released policy.
func computer(t *testing.T, db *store.DB, name string) (store.Computer, *fleetapi.Policy) {
	t.Helper()
	c, err := db.FindComputer(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if c.PolicyJSON == "" {
		return c, nil
	}
	var p fleetapi.Policy
	if err := json.Unmarshal([]byte(c.PolicyJSON), &p); err != nil {
		t.Fatal(err)
	}
	if p.Fingerprint() != c.PolicySent {
		t.Fatalf("%s: stored policy has fingerprint %s, policy_sent %s", name, p.Fingerprint(), c.PolicySent)
	}
	return c, &p
}

// ok runs dsm_c on dir and wants success.
func ok(t *testing.T, dir string, args ...string) string {
	t.Helper()
	code, stdout, stderr := dsmc(t, append([]string{"--dir", dir}, args...)...)
	if code != ExitOK {
		t.Fatalf("dsm_c %q: exit %d, stderr:\n%s", args, code, stderr)
	}
	return stdout
}

func okJSON(t *testing.T, dir string, v any, args ...string) {
	t.Helper()
	out := ok(t, dir, append(args, "-output", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("dsm_c %q: %v:\n%s", args, err, out)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// fleetInstall is an install folder with relays, agents, a second relay group, a token and a bundle.
func fleetInstall(t *testing.T) (string, *store.DB) {
	t.Helper()
	dir, db := newInstall(t)
	ctx := t.Context()
	addComputer(t, db, store.Computer{GUID: "g-relay-1", Hostname: "relay-1"})
	addComputer(t, db, store.Computer{GUID: "g-web-1", Hostname: "web-1"})
	addComputer(t, db, store.Computer{GUID: "g-twin-a", Hostname: "twin"})
	addComputer(t, db, store.Computer{GUID: "g-twin-b", Hostname: "twin"})
	addComputer(t, db, store.Computer{GUID: "g-old", Hostname: "old-box"})
	if err := db.SetRelay(ctx, "g-relay-1", true); err != nil {
		t.Fatal(err)
	}
	if err := db.SetDeactivated(ctx, "g-old", true); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateRelayGroup(ctx, "Branch Office"); err != nil {
		t.Fatal(err)
	}
	checkIn(t, db, "g-relay-1", time.Now(), "10.0.0.1:4122", "")
	if err := db.AddBundle(ctx, store.Bundle{SHA256: strings.Repeat("ab", 32), Name: "agent-1.0", Size: 3}); err != nil {
		t.Fatal(err)
	}
	releaseAll(t, db)
	return dir, db
}

func TestFleetBadInputChangesNothing(t *testing.T) {
	dir, db := fleetInstall(t)
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty.bin")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(tmp, "bundle.bin")
	if err := os.WriteFile(bundle, []byte("bundle"), 0o644); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(tmp, "huge.bin")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256<<20 + 1); err != nil { // sparse
		t.Fatal(err)
	}
	f.Close()
	groups := `"Branch Office", "Default Relay Group"`
	computers := "old-box (g-old), relay-1 (g-relay-1), twin (g-twin-a), twin (g-twin-b), web-1 (g-web-1)"
	tests := []struct {
		name string
		args []string
		want []string // in stderr
	}{
		// createactivationtoken
		{name: "token: expiry not a duration", args: []string{"-action", "createactivationtoken", "-expires", "tomorrow"},
			want: []string{`-expires "tomorrow"`, "24h or 90m", "3d", "from 1m to 365d"}},
		{name: "token: expiry too short", args: []string{"-action", "createactivationtoken", "-expires", "30s"}, want: []string{`-expires "30s"`, "from 1m"}},
		{name: "token: expiry zero days", args: []string{"-action", "createactivationtoken", "-expires", "0d"}, want: []string{`"0d"`}},
		{name: "token: expiry negative", args: []string{"-action", "createactivationtoken", "-expires", "-1h"}, want: []string{`"-1h"`}},
		{name: "token: expiry too long", args: []string{"-action", "createactivationtoken", "-expires", "366d"}, want: []string{`"366d"`, "365d"}},
		{name: "token: fractional days", args: []string{"-action", "createactivationtoken", "-expires", "1.5d"}, want: []string{`"1.5d"`, "whole days"}},
		{name: "token: huge days", args: []string{"-action", "createactivationtoken", "-expires", "99999999999999d"}, want: []string{`"99999999999999d"`}},
		{name: "token: zero uses", args: []string{"-action", "createactivationtoken", "-uses", "0"}, want: []string{`-uses "0"`, "from 1 to 100000"}},
		{name: "token: too many uses", args: []string{"-action", "createactivationtoken", "-uses", "100001"}, want: []string{`"100001"`, "100000"}},
		{name: "token: uses not a number", args: []string{"-action", "createactivationtoken", "-uses", "many"}, want: []string{`"many"`}},
		{name: "token: unknown relay group", args: []string{"-action", "createactivationtoken", "-relaygroup", "Nowhere"},
			want: []string{`-relaygroup "Nowhere" is not a relay group`, groups, "createrelaygroup"}},
		{name: "token: relay group in other case", args: []string{"-action", "createactivationtoken", "-relaygroup", "branch office"},
			want: []string{`did you mean "Branch Office"?`}},
		{name: "token: empty relay group", args: []string{"-action", "createactivationtoken", "-relaygroup", " "}, want: []string{"-relaygroup needs a relay group name"}},
		{name: "token: long policy ID", args: []string{"-action", "createactivationtoken", "-policyid", strings.Repeat("p", 65)},
			want: []string{"65 characters", "up to 64"}},
		{name: "token: control character in policy ID", args: []string{"-action", "createactivationtoken", "-policyid", "a\x1bb"},
			want: []string{`-policyid "a\x1bb"`, `'\x1b' is not allowed`}},
		{name: "token: -name", args: []string{"-action", "createactivationtoken", "-name", "x"},
			want: []string{"createactivationtoken does not use -name", "[-expires DURATION] [-uses N] [-relaygroup G] [-policyid P]"}},
		// listcomputers, listrelaygroups
		{name: "listcomputers: -name", args: []string{"-action", "listcomputers", "-name", "web-1"},
			want: []string{"listcomputers does not use -name", "no flags besides --dir and -output"}},
		{name: "listrelaygroups: -value", args: []string{"-action", "listrelaygroups", "-value", "x"}, want: []string{"listrelaygroups does not use -value"}},
		// deactivate, reactivate
		{name: "deactivate: no -name", args: []string{"-action", "deactivate"}, want: []string{"deactivate needs -name C", "host name or GUID", "listcomputers"}},
		{name: "deactivate: unknown computer", args: []string{"-action", "deactivate", "-name", "db-9"},
			want: []string{`-name "db-9": no computer has that host name or GUID`, computers}},
		{name: "deactivate: ambiguous host name", args: []string{"-action", "deactivate", "-name", "twin"},
			want: []string{`-name "twin": 2 computers have that host name`, "twin (g-twin-a), twin (g-twin-b)", "give the GUID"}},
		{name: "deactivate: -value", args: []string{"-action", "deactivate", "-name", "web-1", "-value", "true"}, want: []string{"deactivate does not use -value"}},
		{name: "reactivate: unknown computer", args: []string{"-action", "reactivate", "-name", "g-nope"}, want: []string{`"g-nope"`, computers}},
		// setrelay
		{name: "setrelay: no -value", args: []string{"-action", "setrelay", "-name", "web-1"}, want: []string{"setrelay needs -value true|false"}},
		{name: "setrelay: bad value", args: []string{"-action", "setrelay", "-name", "web-1", "-value", "yes"}, want: []string{`-value "yes"`, "allowed: true, false"}},
		{name: "setrelay: no -name", args: []string{"-action", "setrelay", "-value", "true"}, want: []string{"setrelay needs -name C"}},
		{name: "setrelay: unknown computer", args: []string{"-action", "setrelay", "-name", "db-9", "-value", "true"}, want: []string{`"db-9"`, computers}},
		// createrelaygroup
		{name: "createrelaygroup: no -name", args: []string{"-action", "createrelaygroup"}, want: []string{"createrelaygroup needs -name G", "up to 64"}},
		{name: "createrelaygroup: long name", args: []string{"-action", "createrelaygroup", "-name", strings.Repeat("g", 65)}, want: []string{"65 characters", "up to 64"}},
		{name: "createrelaygroup: newline in name", args: []string{"-action", "createrelaygroup", "-name", "a\nb"}, want: []string{`'\n' is not allowed`}},
		{name: "createrelaygroup: not UTF-8", args: []string{"-action", "createrelaygroup", "-name", "a\xffb"}, want: []string{"is not UTF-8"}},
		{name: "createrelaygroup: exists", args: []string{"-action", "createrelaygroup", "-name", "Branch Office"},
			want: []string{`-name "Branch Office": a relay group of that name exists already`, groups}},
		{name: "createrelaygroup: default exists", args: []string{"-action", "createrelaygroup", "-name", store.DefaultRelayGroup}, want: []string{"exists already"}},
		{name: "createrelaygroup: exists in other case", args: []string{"-action", "createrelaygroup", "-name", "BRANCH OFFICE"},
			want: []string{`relay group "Branch Office" exists already`, "differ only in case"}},
		// assignrelaygroup
		{name: "assignrelaygroup: unknown group", args: []string{"-action", "assignrelaygroup", "-name", "web-1", "-value", "Nowhere"},
			want: []string{`-value "Nowhere" is not a relay group`, groups}},
		{name: "assignrelaygroup: no -value", args: []string{"-action", "assignrelaygroup", "-name", "web-1"}, want: []string{"needs -value G", "listrelaygroups"}},
		{name: "assignrelaygroup: no -name", args: []string{"-action", "assignrelaygroup", "-value", "Branch Office"}, want: []string{"assignrelaygroup needs -name C"}},
		{name: "assignrelaygroup: unknown computer", args: []string{"-action", "assignrelaygroup", "-name", "db-9", "-value", "Branch Office"},
			want: []string{`"db-9"`, computers}},
		// sendpolicy
		{name: "sendpolicy: no target", args: []string{"-action", "sendpolicy"}, want: []string{"sendpolicy needs one of -name C", "-relaygroup G", "-allrelays"}},
		{name: "sendpolicy: two targets", args: []string{"-action", "sendpolicy", "-name", "web-1", "-allrelays"}, want: []string{"got -name and -allrelays"}},
		{name: "sendpolicy: three targets", args: []string{"-action", "sendpolicy", "-name", "web-1", "-relaygroup", "Branch Office", "-allrelays"},
			want: []string{"got -name and -relaygroup and -allrelays"}},
		{name: "sendpolicy: -allrelays=false only", args: []string{"-action", "sendpolicy", "-allrelays=false"}, want: []string{"needs one of"}},
		{name: "sendpolicy: -allrelays with a value", args: []string{"-action", "sendpolicy", "-allrelays", "true"},
			want: []string{`unexpected argument "true"`, "-allrelays takes no value"}},
		{name: "sendpolicy: -allrelays=maybe", args: []string{"-action", "sendpolicy", "-allrelays=maybe"}, want: []string{"-allrelays=maybe", "write -allrelays alone"}},
		{name: "sendpolicy: unknown group", args: []string{"-action", "sendpolicy", "-relaygroup", "Nowhere"}, want: []string{`"Nowhere" is not a relay group`, groups}},
		{name: "sendpolicy: empty group", args: []string{"-action", "sendpolicy", "-relaygroup", ""}, want: []string{"-relaygroup needs a relay group"}},
		{name: "sendpolicy: empty name", args: []string{"-action", "sendpolicy", "-name", ""}, want: []string{"-name needs a computer's host name or GUID"}},
		{name: "sendpolicy: unknown computer", args: []string{"-action", "sendpolicy", "-name", "db-9"}, want: []string{`"db-9"`, computers}},
		{name: "sendpolicy: deactivated computer", args: []string{"-action", "sendpolicy", "-name", "old-box"},
			want: []string{"old-box (g-old) is deactivated", "reactivate"}},
		{name: "sendpolicy: -value", args: []string{"-action", "sendpolicy", "-name", "web-1", "-value", "x"},
			want: []string{"sendpolicy does not use -value", "-name C | -relaygroup G | -allrelays"}},
		// publishbundle
		{name: "publishbundle: no -name", args: []string{"-action", "publishbundle", "-value", bundle}, want: []string{"publishbundle needs -name NAME", "-value FILE"}},
		{name: "publishbundle: no -value", args: []string{"-action", "publishbundle", "-name", "b"}, want: []string{"publishbundle needs -value FILE", "256 MiB"}},
		{name: "publishbundle: missing file", args: []string{"-action", "publishbundle", "-name", "b", "-value", filepath.Join(tmp, "nope.bin")},
			want: []string{"nope.bin", "no such file"}},
		{name: "publishbundle: directory", args: []string{"-action", "publishbundle", "-name", "b", "-value", tmp}, want: []string{"is not a regular file"}},
		{name: "publishbundle: empty file", args: []string{"-action", "publishbundle", "-name", "b", "-value", empty}, want: []string{"is empty", "1 byte to 256 MiB"}},
		{name: "publishbundle: too big", args: []string{"-action", "publishbundle", "-name", "b", "-value", huge},
			want: []string{"268435457 bytes", "at most 256 MiB"}},
		{name: "publishbundle: long name", args: []string{"-action", "publishbundle", "-name", strings.Repeat("n", 129), "-value", bundle},
			want: []string{"129 characters", "up to 128"}},
		{name: "publishbundle: tab in name", args: []string{"-action", "publishbundle", "-name", "a\tb", "-value", bundle}, want: []string{`'\t' is not allowed`}},
		{name: "unknown flag", args: []string{"-action", "sendpolicy", "-all"}, want: []string{"-all", "-allrelays", "-relaygroup G"}},
	}
	bundles := filepath.Join(dir, "bundles")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := takeSnapshot(t, db, dir)
			files := listDir(t, bundles)
			code, stdout, stderr := dsmc(t, append([]string{"--dir", dir}, tt.args...)...)
			if code != ExitBadInput {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, ExitBadInput, stderr)
			}
			wantContains(t, "stderr", stderr, tt.want...)
			if stdout != "" {
				t.Errorf("stdout = %q, want none", stdout)
			}
			if diff := cmp.Diff(before, takeSnapshot(t, db, dir)); diff != "" {
				t.Errorf("the database changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(files, listDir(t, bundles)); diff != "" {
				t.Errorf("the bundles folder changed:\n%s", diff)
			}
		})
	}
}

func TestCreateActivationToken(t *testing.T) {
	dir, db := newInstall(t)
	ctx := t.Context()
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "HOST"
	}
	if _, err := db.CreateRelayGroup(ctx, "Branch Office"); err != nil {
		t.Fatal(err)
	}
	// tokenRow reads the stored token and checks that its secret is not stored.
	tokenRow := func(t *testing.T, plain string) store.ActivationToken {
		t.Helper()
		for table, rows := range dumpTables(t, filepath.Join(dir, install.DefaultDBFile)) {
			for _, r := range rows {
				if strings.Contains(r, plain[len("act_"):]) {
					t.Errorf("table %s stores the token's secret: %s", table, r)
				}
			}
		}
		raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, install.DefaultDBFile)+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		var tok store.ActivationToken
		if err := raw.QueryRow(`SELECT expires_at, uses_left, policy_id, relay_group FROM activation_tokens WHERE token_hash = $1`, auth.HashToken(plain)).
			Scan(&tok.ExpiresAt, &tok.UsesLeft, &tok.PolicyID, &tok.RelayGroup); err != nil {
			t.Fatalf("the token's hash is not stored: %v", err)
		}
		return tok
	}

	t.Run("text, defaults", func(t *testing.T) {
		start := time.Now()
		out := ok(t, dir, "-action", "createactivationtoken")
		var plain string
		for _, f := range strings.Fields(out) {
			if strings.HasPrefix(f, "act_") {
				plain = f
				break
			}
		}
		if plain == "" {
			t.Fatalf("no token in:\n%s", out)
		}
		want := fmt.Sprintf("dsa_control -a dsm://%s:4120/ token:%s -fingerprint %s", host, plain, ca.Fingerprint())
		wantContains(t, "stdout", out, "for 1 activation:", "cannot be shown again", "Fleet CA SHA-256 fingerprint: "+ca.Fingerprint(), "\n  "+want+"\n")
		if strings.Count(out, plain) != 2 {
			t.Errorf("the token should appear twice (alone and in the command):\n%s", out)
		}
		tok := tokenRow(t, plain)
		exp, err := time.Parse(time.RFC3339Nano, tok.ExpiresAt)
		if err != nil || !strings.HasSuffix(tok.ExpiresAt, "Z") {
			t.Fatalf("expires_at %q: %v", tok.ExpiresAt, err)
		}
		if d := exp.Sub(start); d < 24*time.Hour-2*time.Second || d > 24*time.Hour+2*time.Second {
			t.Errorf("expires %v after creation, want 24h", d)
		}
		if tok.UsesLeft != 1 || tok.PolicyID != "" || tok.RelayGroup != "" {
			t.Errorf("stored %+v", tok)
		}
		wantContains(t, "stdout", out, "valid until "+exp.Format(time.RFC3339)+" for 1 activation")
		c, err := db.Activate(ctx, auth.HashToken(plain), time.Now(), store.Computer{}, func(store.ActivationToken) (store.Computer, error) {
			return store.Computer{GUID: "g-1", Hostname: "one"}, nil
		})
		if err != nil || c.RelayGroup != store.DefaultRelayGroup || c.PolicyID != "" {
			t.Fatalf("activation: %+v %v", c, err)
		}
		if _, err := db.Activate(ctx, auth.HashToken(plain), time.Now(), store.Computer{}, func(store.ActivationToken) (store.Computer, error) {
			return store.Computer{GUID: "g-2", Hostname: "two"}, nil
		}); !errors.Is(err, store.ErrTokenInvalid) {
			t.Errorf("second use of a one-use token: %v", err)
		}
	})
	t.Run("json, uses, days, group, policy", func(t *testing.T) {
		start := time.Now()
		var got ops.Token
		okJSON(t, dir, &got, "-action", "createactivationtoken", "-expires", "3d", "-uses", "2", "-relaygroup", "Branch Office", "-policyid", "web servers")
		exp, err := time.Parse(time.RFC3339Nano, got.ExpiresAt)
		if err != nil {
			t.Fatal(err)
		}
		if d := exp.Sub(start); d < 72*time.Hour-2*time.Second || d > 72*time.Hour+2*time.Second {
			t.Errorf("expires %v after creation, want 72h", d)
		}
		if exp.Location() != time.UTC || got.Uses != 2 || got.Fingerprint != ca.Fingerprint() || got.RelayGroup != "Branch Office" || got.PolicyID != "web servers" {
			t.Errorf("%+v", got)
		}
		if want := fmt.Sprintf("dsa_control -a dsm://%s:4120/ token:%s -fingerprint %s", host, got.Token, ca.Fingerprint()); got.Command != want {
			t.Errorf("command %q, want %q", got.Command, want)
		}
		var raw map[string]any
		_ = json.Unmarshal([]byte(ok(t, dir, "-action", "createactivationtoken", "-output", "json")), &raw)
		for _, k := range []string{"token", "expires_at", "uses", "fingerprint", "command"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("JSON has no %q: %v", k, raw)
			}
		}
		if tok := tokenRow(t, got.Token); tok != (store.ActivationToken{ExpiresAt: got.ExpiresAt, UsesLeft: 2, PolicyID: "web servers", RelayGroup: "Branch Office"}) {
			t.Errorf("stored %+v", tok)
		}
		for i := range 3 {
			c, err := db.Activate(ctx, auth.HashToken(got.Token), time.Now(), store.Computer{}, func(tok store.ActivationToken) (store.Computer, error) {
				return store.Computer{GUID: fmt.Sprint("g-bo-", i), Hostname: "bo", PolicyID: tok.PolicyID, RelayGroup: tok.RelayGroup}, nil
			})
			switch {
			case i < 2 && (err != nil || c.RelayGroup != "Branch Office" || c.PolicyID != "web servers"):
				t.Errorf("use %d: %+v %v", i+1, c, err)
			case i == 2 && !errors.Is(err, store.ErrTokenInvalid):
				t.Errorf("third use of a two-use token: %v", err)
			}
		}
	})
	t.Run("go duration and text with group", func(t *testing.T) {
		out := ok(t, dir, "-action", "createactivationtoken", "-expires", "90m", "-uses", "100000", "-relaygroup", "Branch Office")
		wantContains(t, "stdout", out, "for 100000 activations", `relay group "Branch Office"`)
	})
	t.Run("en dashes", func(t *testing.T) {
		code, stdout, stderr := dsmc(t, "--dir", dir, "\u2013action", "createactivationtoken", "\u2013uses", "5", "\u2013expires", "1d")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		wantContains(t, "stderr", stderr, `read "–uses" as "-uses"`, `read "–expires" as "-expires"`)
		wantContains(t, "stdout", stdout, "for 5 activations")
	})
	t.Run("no fleet CA: nothing stored", func(t *testing.T) {
		dir2, db2 := newInstall(t)
		if err := os.Remove(filepath.Join(dir2, pki.CAFile)); err != nil {
			t.Fatal(err)
		}
		before := takeSnapshot(t, db2, dir2)
		code, stdout, stderr := dsmc(t, "--dir", dir2, "-action", "createactivationtoken")
		if code != ExitFailure || stdout != "" {
			t.Errorf("exit %d, stdout %q", code, stdout)
		}
		wantContains(t, "stderr", stderr, "fleet CA certificate")
		if diff := cmp.Diff(before, takeSnapshot(t, db2, dir2)); diff != "" {
			t.Errorf("the database changed:\n%s", diff)
		}
	})
}

func TestListComputers(t *testing.T) {
	dir, db := newInstall(t)
	t.Run("none", func(t *testing.T) {
		wantContains(t, "stdout", ok(t, dir, "-action", "listcomputers"), "No computers are activated yet", "createactivationtoken")
		if out := ok(t, dir, "-action", "listcomputers", "-output", "json"); strings.TrimSpace(out) != "[]" {
			t.Errorf("json %q, want []", out)
		}
	})
	now := time.Now()
	addComputer(t, db, store.Computer{GUID: "g-a", Hostname: "a-online"})
	addComputer(t, db, store.Computer{GUID: "g-b", Hostname: "b-offline"})
	addComputer(t, db, store.Computer{GUID: "g-c", Hostname: "c-never"})
	addComputer(t, db, store.Computer{GUID: "g-d", Hostname: "d-off"})
	addComputer(t, db, store.Computer{GUID: "g-e", Hostname: "e-\x1b[31mevil"})
	if err := db.SetRelay(t.Context(), "g-a", true); err != nil {
		t.Fatal(err)
	}
	releaseAll(t, db)
	a, _ := computer(t, db, "g-a")
	checkIn(t, db, "g-a", now.Add(-5*time.Minute), "10.0.0.1:4122", a.PolicySent) // acked
	checkIn(t, db, "g-b", now.Add(-2*time.Hour), "", "")                          // pending
	checkIn(t, db, "g-d", now, "", "")
	if err := db.SetDeactivated(t.Context(), "g-d", true); err != nil {
		t.Fatal(err)
	}
	// The deactivation changed the relay's policy (its denied list): release it, and the relay acks it.
	releaseAll(t, db)
	a, _ = computer(t, db, "g-a")
	checkIn(t, db, "g-a", now.Add(-5*time.Minute), "10.0.0.1:4122", a.PolicySent)

	out := ok(t, dir, "-action", "listcomputers")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	header := strings.Fields(lines[0])
	wantHeader := []string{"GUID", "HOSTNAME", "RELAY", "GROUP", "LAST", "SEEN", "STATUS", "TLS", "VERSION", "POLICY", "SENT", "POLICY", "ACKED", "PENDING"}
	if !cmp.Equal(header, wantHeader) {
		t.Errorf("header %q", lines[0])
	}
	if len(lines) != 1+5+2 {
		t.Fatalf("want header, 5 rows, blank and a note:\n%s", out)
	}
	col := func(row, name string) string {
		i := strings.Index(lines[0], name)
		return strings.Fields(row[i:])[0]
	}
	want := []struct{ guid, relay, status, pending string }{
		{"g-a", "yes", "online", "no"}, {"g-b", "no", "offline", "yes"}, {"g-c", "no", "never", "yes"}, {"g-d", "no", "deactivated", "yes"}, {"g-e", "no", "never", "yes"},
	}
	for i, w := range want {
		row := lines[1+i]
		if got := []string{col(row, "GUID"), col(row, "RELAY"), col(row, "STATUS"), col(row, "PENDING")}; !cmp.Equal(got, []string{w.guid, w.relay, w.status, w.pending}) {
			t.Errorf("row %d = %q: got %q, want %+v", i, row, got, w)
		}
	}
	wantContains(t, "stdout", out, "never seen", a.PolicySent[:12]+"  "+a.PolicySent[:12], store.DefaultRelayGroup, `e-\x1b[31mevil`, "TLSv1.3", "(the interval of each computer's policy: 600 s)")
	if strings.Contains(out, a.PolicySent[:13]) || strings.Contains(out, "\x1b") {
		t.Errorf("fingerprints not cut to 12, or an escape reached the terminal:\n%s", out)
	}

	var views []map[string]any
	okJSON(t, dir, &views, "-action", "listcomputers")
	if len(views) != 5 {
		t.Fatalf("%d computers", len(views))
	}
	wantStatus := []string{"online", "offline", "never seen", "deactivated", "never seen"}
	for i, v := range views {
		if v["status"] != wantStatus[i] || v["policy_pending"] != (i != 0) {
			t.Errorf("%d: status %v pending %v", i, v["status"], v["policy_pending"])
		}
		for _, k := range []string{"guid", "hostname", "relay", "relay_group", "deactivated", "policy_sent"} {
			if _, ok := v[k]; !ok {
				t.Errorf("%d has no %q: %v", i, k, v)
			}
		}
		if _, ok := v["PolicyJSON"]; ok {
			t.Errorf("the policy document is in the listing: %v", v)
		}
	}
	if views[0]["relay"] != true || views[0]["policy_sent"] != a.PolicySent || views[0]["negotiated_tls"] != "TLSv1.3" {
		t.Errorf("%v", views[0])
	}

	// A longer heartbeat period makes the computer seen 2 h ago online.
	ok(t, dir, "-action", "changesetting", "-name", heartbeat, "-value", "60")
	okJSON(t, dir, &views, "-action", "listcomputers")
	if views[1]["status"] != "online" {
		t.Errorf("seen 2 h ago with a 60 min heartbeat: %v", views[1]["status"])
	}
}

func TestDeactivate(t *testing.T) {
	dir, db := fleetInstall(t)
	_, webBefore := computer(t, db, "web-1")
	if !cmp.Equal(webBefore.Relays, []string{"10.0.0.1:4122"}) {
		t.Fatalf("web-1's relays before: %q", webBefore.Relays)
	}
	out := ok(t, dir, "-action", "deactivate", "-name", "relay-1")
	wantContains(t, "stdout", out, "relay-1 (g-relay-1): deactivated", "Released a new policy to 3 computers", "web-1", "g-twin-a", "g-twin-b")
	if c, _ := computer(t, db, "relay-1"); !c.Deactivated {
		t.Error("not deactivated")
	}
	// The other computers of its group lost it from their relays.
	if _, p := computer(t, db, "web-1"); len(p.Relays) != 0 || p.Serial <= webBefore.Serial {
		t.Errorf("web-1's policy after: %+v", p)
	}
	before := takeSnapshot(t, db, dir)
	if out := ok(t, dir, "-action", "deactivate", "-name", "g-relay-1"); out != "relay-1 (g-relay-1): already deactivated (unchanged)\n" {
		t.Errorf("again: %q", out)
	}
	if diff := cmp.Diff(before, takeSnapshot(t, db, dir)); diff != "" {
		t.Errorf("an unchanged deactivation changed the database:\n%s", diff)
	}

	var res map[string]any
	okJSON(t, dir, &res, "-action", "reactivate", "-name", "RELAY-1")
	if res["guid"] != "g-relay-1" || res["deactivated"] != false || res["changed"] != true || len(res["released"].([]any)) != 3 {
		t.Errorf("reactivate json: %v", res)
	}
	if c, _ := computer(t, db, "relay-1"); c.Deactivated {
		t.Error("still deactivated")
	}
	if _, p := computer(t, db, "web-1"); !cmp.Equal(p.Relays, []string{"10.0.0.1:4122"}) {
		t.Errorf("web-1's relays after reactivation: %q", p.Relays)
	}
	if out := ok(t, dir, "-action", "reactivate", "-name", "web-1"); out != "web-1 (g-web-1): not deactivated (unchanged)\n" {
		t.Errorf("reactivate an active computer: %q", out)
	}
	// By GUID, when host names are shared.
	wantContains(t, "stdout", ok(t, dir, "-action", "deactivate", "-name", "g-twin-a"), "twin (g-twin-a): deactivated")
}

func TestSetRelay(t *testing.T) {
	dir, db := fleetInstall(t)
	web0, p0 := computer(t, db, "web-1")
	if p0.Relay != nil {
		t.Fatal("web-1 is a relay already")
	}
	out := ok(t, dir, "-action", "setrelay", "-name", "web-1", "-value", "TRUE")
	wantContains(t, "stdout", out, `web-1 (g-web-1): relay role on (relay group "Default Relay Group")`, "Released a new policy to 1 computer ", "a running Manager pushes it now")
	web1, p1 := computer(t, db, "web-1")
	if web1.PolicySent == web0.PolicySent || p1.Relay == nil || p1.Relay.TLS.MinVersion != "TLSv1.2" || p1.Relay.Group != store.DefaultRelayGroup ||
		p1.Relay.Port != tlspolicy.PortRelay || !web1.Relay {
		t.Fatalf("web-1 after setrelay true: relay %v, policy %+v (relay %+v)", web1.Relay, p1, p1.Relay)
	}
	wantContains(t, "stdout", out, web1.PolicySent[:12])
	// The page's relay procedure: restrictRelayMinimumTLSProtocol goes out to the relays by itself.
	relay0, _ := computer(t, db, "relay-1")
	out = ok(t, dir, "-action", "changesetting", "-name", relay, "-value", "TLSv1.3")
	wantContains(t, "stdout", out, relay+": TLSv1.2 -> TLSv1.3\n", "Released a new policy to 2 computers", "relay-1", "web-1")
	for _, name := range []string{"relay-1", "web-1"} {
		if _, p := computer(t, db, name); p.Relay == nil || p.Relay.TLS.MinVersion != "TLSv1.3" {
			t.Errorf("%s: relay policy %+v, want TLSv1.3", name, p.Relay)
		}
	}
	if c, _ := computer(t, db, "relay-1"); c.PolicySent == relay0.PolicySent {
		t.Error("relay-1's policy did not change")
	}
	// Agents' policies do not hold the relay minimum: unchanged.
	if strings.Contains(out, "g-twin-a") {
		t.Errorf("an agent got a new policy for a relay setting:\n%s", out)
	}

	// Unchanged.
	before := takeSnapshot(t, db, dir)
	if out := ok(t, dir, "-action", "setrelay", "-name", "web-1", "-value", "true"); out != "web-1 (g-web-1): already a relay (unchanged)\n" {
		t.Errorf("%q", out)
	}
	if diff := cmp.Diff(before, takeSnapshot(t, db, dir)); diff != "" {
		t.Errorf("the database changed:\n%s", diff)
	}

	res := ops.ComputerChange{}
	okJSON(t, dir, &res, "-action", "setrelay", "-name", "web-1", "-value", "false")
	if res.GUID != "g-web-1" || res.Relay == nil || *res.Relay || !res.Changed || len(res.Released) != 1 || res.Released[0].GUID != "g-web-1" || !res.AutoSend {
		t.Errorf("json: %+v", res)
	}
	if c, p := computer(t, db, "web-1"); c.Relay || p.Relay != nil || res.Released[0].Fingerprint != c.PolicySent {
		t.Errorf("web-1 after setrelay false: %v %+v", c.Relay, p.Relay)
	}
}

func TestAssignRelayGroup(t *testing.T) {
	dir, db := fleetInstall(t)
	out := ok(t, dir, "-action", "assignrelaygroup", "-name", "web-1", "-value", "Branch Office")
	wantContains(t, "stdout", out, `web-1 (g-web-1): relay group "Default Relay Group" -> "Branch Office"`, "Released a new policy to 1 computer")
	c, p := computer(t, db, "web-1")
	if c.RelayGroup != "Branch Office" || len(p.Relays) != 0 {
		t.Errorf("web-1: group %q, relays %q", c.RelayGroup, p.Relays)
	}
	// Moving the relay there gives web-1 its relay and the relay a policy for its new group.
	res := ops.ComputerChange{}
	okJSON(t, dir, &res, "-action", "assignrelaygroup", "-name", "relay-1", "-value", "Branch Office")
	var got []string
	for _, e := range res.Released {
		got = append(got, e.Hostname)
	}
	slices.Sort(got)
	if res.RelayGroup != "Branch Office" || !cmp.Equal(got, []string{"relay-1", "twin", "twin", "web-1"}) {
		t.Errorf("json: %+v (released %q)", res, got)
	}
	if _, p := computer(t, db, "web-1"); !cmp.Equal(p.Relays, []string{"10.0.0.1:4122"}) {
		t.Errorf("web-1's relays: %q", p.Relays)
	}
	if _, p := computer(t, db, "relay-1"); p.Relay == nil || p.Relay.Group != "Branch Office" {
		t.Errorf("relay-1's relay policy: %+v", p.Relay)
	}
	if _, p := computer(t, db, "g-twin-a"); len(p.Relays) != 0 {
		t.Errorf("twin kept the relay that left its group: %q", p.Relays)
	}
	if out := ok(t, dir, "-action", "assignrelaygroup", "-name", "web-1", "-value", "Branch Office"); out != "web-1 (g-web-1): already in relay group \"Branch Office\" (unchanged)\n" {
		t.Errorf("%q", out)
	}
}

func TestRelayGroups(t *testing.T) {
	dir, db := fleetInstall(t)
	out := ok(t, dir, "-action", "createrelaygroup", "-name", " Site B ")
	wantContains(t, "stdout", out, `Relay group "Site B" created`, `assignrelaygroup -name C -value "Site B"`)
	if g, _ := db.RelayGroups(t.Context()); !cmp.Equal(g, []string{"Branch Office", store.DefaultRelayGroup, "Site B"}) {
		t.Errorf("groups %q", g)
	}
	var created map[string]any
	okJSON(t, dir, &created, "-action", "createrelaygroup", "-name", "Zürich – 2")
	if created["name"] != "Zürich – 2" || created["created"] != true {
		t.Errorf("%v", created)
	}
	ok(t, dir, "-action", "assignrelaygroup", "-name", "g-twin-a", "-value", "Site B")

	out = ok(t, dir, "-action", "listrelaygroups")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 || !cmp.Equal(strings.Fields(lines[0]), []string{"GROUP", "COMPUTERS", "RELAYS"}) {
		t.Fatalf("%s", out)
	}
	wantContains(t, "stdout", out, "Default Relay Group  3          relay-1\n", "Site B               1          -\n", "Branch Office        0          -\n")
	var views []ops.GroupView
	okJSON(t, dir, &views, "-action", "listrelaygroups")
	want := []ops.GroupView{{Name: "Branch Office", Relays: []string{}}, {Name: store.DefaultRelayGroup, Relays: []string{"relay-1"}, Computers: 3},
		{Name: "Site B", Relays: []string{}, Computers: 1}, {Name: "Zürich – 2", Relays: []string{}}}
	if diff := cmp.Diff(want, views); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSendPolicyAndAutoSendOff(t *testing.T) {
	dir, db := fleetInstall(t)
	// automaticallySendPolicy false: changes wait for send policy.
	wantContains(t, "stdout", ok(t, dir, "-action", "changesetting", "-name", autoSend, "-value", "false"), autoSend+": true -> false\n", "No computer's policy changed.")
	relay0, _ := computer(t, db, "relay-1")
	web0, _ := computer(t, db, "web-1")

	out := ok(t, dir, "-action", "changesetting", "-name", relay, "-value", "TLSv1.3")
	wantContains(t, "stdout", out, autoSend+" is false: 1 computer has a changed policy that was not sent:", "relay-1", "Send it with: dsm_c -action sendpolicy -name relay-1")
	if c, p := computer(t, db, "relay-1"); c.PolicySent != relay0.PolicySent || p.Relay.TLS.MinVersion != "TLSv1.2" {
		t.Fatalf("released although automaticallySendPolicy is false: %+v", p.Relay)
	}
	// The relay acknowledged the policy it was sent, but its policy changed since: it is pending.
	checkIn(t, db, "g-relay-1", time.Now(), "10.0.0.1:4122", relay0.PolicySent)
	var views []ops.ComputerView
	okJSON(t, dir, &views, "-action", "listcomputers")
	for _, v := range views {
		if v.Hostname == "relay-1" && (!v.Pending || !v.Unsent || v.PolicyAcked != v.PolicySent) {
			t.Errorf("relay-1 with an unsent change: pending %v unsent %v, sent %s acked %s; want pending", v.Pending, v.Unsent, v.PolicySent, v.PolicyAcked)
		}
	}
	if row := lineWith(ok(t, dir, "-action", "listcomputers"), "relay-1"); !strings.HasSuffix(strings.TrimSpace(row), "yes") {
		t.Errorf("listcomputers row of relay-1 with an unsent change, PENDING not yes: %q", row)
	}

	// A relay role change stays unsent too; the hint names every relay.
	res := ops.ComputerChange{}
	okJSON(t, dir, &res, "-action", "setrelay", "-name", "web-1", "-value", "true")
	if res.AutoSend || len(res.Released) != 0 || len(res.Unsent) != 2 {
		t.Errorf("setrelay json with automaticallySendPolicy false: %+v", res)
	}
	if c, _ := computer(t, db, "web-1"); c.PolicySent != web0.PolicySent {
		t.Error("setrelay released although automaticallySendPolicy is false")
	}
	out = ok(t, dir, "-action", "changesetting", "-name", strong, "-value", "true")
	wantContains(t, "stdout", out, autoSend+" is false: 4 computers have a changed policy that was not sent:", "Send it with: dsm_c -action sendpolicy -name C for each computer")

	// A new computer still gets its first policy.
	addComputer(t, db, store.Computer{GUID: "g-new", Hostname: "new"})
	wantContains(t, "stdout", ok(t, dir, "-action", "changesetting", "-name", heartbeat, "-value", "15"), "Released a new policy to 1 computer", "new")
	if c, _ := computer(t, db, "new"); c.PolicySent == "" {
		t.Error("the new computer got no policy")
	}

	// sendpolicy -relaygroup sends to the group's relays only.
	out = ok(t, dir, "-action", "sendpolicy", "-relaygroup", "Branch Office")
	if out != "No relays in relay group \"Branch Office\": no policy to send (dsm_c -action setrelay -name C -value true makes a relay).\n" {
		t.Errorf("%q", out)
	}
	out = ok(t, dir, "-action", "sendpolicy", "-relaygroup", store.DefaultRelayGroup)
	relay1, p := computer(t, db, "relay-1")
	if relay1.PolicySent == relay0.PolicySent || p.Relay.TLS.MinVersion != "TLSv1.3" || !p.Agent.StrongCiphers {
		t.Errorf("relay-1 after sendpolicy: %+v", p)
	}
	web1, pw := computer(t, db, "web-1")
	if pw.Relay == nil || pw.Relay.TLS.MinVersion != "TLSv1.3" {
		t.Errorf("web-1 after sendpolicy: %+v", pw.Relay)
	}
	wantContains(t, "stdout", out, fmt.Sprintf("relay-1 (g-relay-1): released policy %s (serial %d)\n", relay1.PolicySent, p.Serial),
		fmt.Sprintf("web-1 (g-web-1): released policy %s", web1.PolicySent), "A running Manager pushes the released policies now")
	if twin, _ := computer(t, db, "g-twin-a"); strings.Contains(out, "twin") || twin.PolicySent == "" {
		t.Errorf("an agent was sent a relay group's policy:\n%s", out)
	}

	// Again: already current.
	out = ok(t, dir, "\u2013action", "sendpolicy", "\u2013allrelays")
	want := fmt.Sprintf("relay-1 (g-relay-1): already current (policy %s)\nweb-1 (g-web-1): already current (policy %s)\n", relay1.PolicySent, web1.PolicySent)
	if out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}

	// One computer, JSON.
	twin0, _ := computer(t, db, "g-twin-b")
	var sent ops.SendResult
	okJSON(t, dir, &sent, "-action", "sendpolicy", "-name", "g-twin-b")
	twin1, tp := computer(t, db, "g-twin-b")
	if len(sent.Released) != 1 || len(sent.Current) != 0 || sent.Released[0].GUID != "g-twin-b" || sent.Released[0].Fingerprint != twin1.PolicySent ||
		twin1.PolicySent == twin0.PolicySent || !tp.Agent.StrongCiphers || tp.HeartbeatSeconds != 15*60 {
		t.Errorf("json %+v, policy %+v", sent, tp)
	}
	okJSON(t, dir, &sent, "-action", "sendpolicy", "-name", "g-twin-b")
	if len(sent.Released) != 0 || len(sent.Current) != 1 {
		t.Errorf("second send: %+v", sent)
	}
	if _, p := computer(t, db, "g-twin-a"); p.Agent.StrongCiphers {
		t.Error("sendpolicy -name released to another computer")
	}

	// Turning automaticallySendPolicy back on sends what is pending.
	out = ok(t, dir, "-action", "changesetting", "-name", autoSend, "-value", "true")
	wantContains(t, "stdout", out, "Released a new policy to 1 computer ", "twin  g-twin-a  policy")
}

func TestPublishBundle(t *testing.T) {
	dir, db := fleetInstall(t)
	data := []byte("tlsfleet agent 2.0 bundle\n")
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	file := filepath.Join(t.TempDir(), "agent-2.0.tar.gz")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	web0, _ := computer(t, db, "web-1")
	out := ok(t, dir, "-action", "publishbundle", "-name", "agent-2.0", "-value", file)
	stored := filepath.Join(dir, "bundles", hexSum)
	wantContains(t, "stdout", out, `Bundle "agent-2.0" published:`, "sha256 "+hexSum, fmt.Sprintf("size   %d bytes", len(data)), stored,
		"Released a new policy to 4 computers")
	got, err := os.ReadFile(stored)
	if err != nil || string(got) != string(data) {
		t.Fatalf("stored bundle: %q %v", got, err)
	}
	if fi, _ := os.Stat(stored); fi.Mode().Perm() != 0o644 {
		t.Errorf("bundle mode %v, want 0644", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Dir(stored)); fi.Mode().Perm() != 0o750 {
		t.Errorf("bundles folder mode %v, want 0750", fi.Mode().Perm())
	}
	if leftovers := listDir(t, filepath.Join(dir, "bundles")); !cmp.Equal(leftovers, []string{hexSum}) {
		t.Errorf("bundles folder holds %q", leftovers)
	}
	bs, _ := db.Bundles(t.Context())
	if !slices.Contains(bs, store.Bundle{SHA256: hexSum, Name: "agent-2.0", Size: int64(len(data))}) {
		t.Errorf("bundles %+v", bs)
	}
	web1, p := computer(t, db, "web-1")
	if web1.PolicySent == web0.PolicySent || !slices.Contains(p.Bundles, fleetapi.Bundle{Name: "agent-2.0", SHA256: hexSum, Size: int64(len(data))}) {
		t.Errorf("web-1's policy bundles: %+v", p.Bundles)
	}

	// Again: unchanged, nothing released.
	before := takeSnapshot(t, db, dir)
	var res ops.BundleResult
	okJSON(t, dir, &res, "-action", "publishbundle", "-name", "agent-2.0", "-value", file)
	if res.Changed || res.SHA256 != hexSum || res.Size != int64(len(data)) || res.Name != "agent-2.0" || res.ReleaseReport != nil {
		t.Errorf("json: %+v", res)
	}
	if diff := cmp.Diff(before, takeSnapshot(t, db, dir)); diff != "" {
		t.Errorf("publishing the same bundle again changed the database:\n%s", diff)
	}
	var raw map[string]any
	_ = json.Unmarshal([]byte(ok(t, dir, "-action", "publishbundle", "-name", "agent-2.0", "-value", file, "-output", "json")), &raw)
	for _, k := range []string{"name", "sha256", "size"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSON has no %q: %v", k, raw)
		}
	}
}

func TestBoolFlagDashes(t *testing.T) {
	// -allrelays takes no value: the argument after it is a flag, and its dash is fixed.
	got := fixDashes([]string{"\u2013allrelays", "\u2013output", "json", "--allrelays", "\u2013name", "\u2013x"}, io.Discard)
	if want := []string{"-allrelays", "-output", "json", "--allrelays", "-name", "\u2013x"}; !cmp.Equal(got, want) {
		t.Errorf("fixDashes = %q, want %q", got, want)
	}
	dir, _ := fleetInstall(t)
	code, stdout, stderr := dsmc(t, "--dir", dir, "-action", "sendpolicy", "-allrelays", "\u2013output", "json")
	var res ops.SendResult
	if err := json.Unmarshal([]byte(stdout), &res); code != ExitOK || err != nil || len(res.Current) != 1 {
		t.Errorf("exit %d, %v: %s%s", code, err, stdout, stderr)
	}
	wantContains(t, "stderr", stderr, `read "–output" as "-output"`)
}

func TestFleetHelp(t *testing.T) {
	out := ok(t, t.TempDir(), "-action", "help")
	wantContains(t, "usage", out, "createactivationtoken [-expires DURATION] [-uses N] [-relaygroup G] [-policyid P]\n", "listcomputers", "deactivate -name C",
		"reactivate -name C", "setrelay -name C -value true|false", "createrelaygroup -name G", "listrelaygroups", "assignrelaygroup -name C -value G",
		"sendpolicy -name C | -relaygroup G | -allrelays", "publishbundle -name NAME -value FILE", "-allrelays     sendpolicy: every relay",
		"-expires D", "-uses N", "-policyid P")
	for _, l := range strings.Split(out, "\n") {
		if len([]rune(l)) > 140 {
			t.Errorf("usage line of %d characters: %q", len([]rune(l)), l)
		}
	}
}

// lineWith is the first line of out that contains substr.
func lineWith(out, substr string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}
