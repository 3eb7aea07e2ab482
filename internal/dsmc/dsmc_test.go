package dsmc

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/install"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/store/storetest"
	"tlsfleet/internal/tlspolicy"
)

const (
	relay     = settings.RelayMinimumTLS
	strong    = settings.StrongCiphers
	heartbeat = settings.HeartbeatPeriod
)

// newInstall makes an install folder with its database, and returns the folder and an open handle on
// the database (the test's view, like a running Manager's).
func newInstall(t *testing.T) (string, *store.DB) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "manager")
	if _, err := install.Init(dir, 4119, 4120); err != nil {
		t.Fatal(err)
	}
	f, err := install.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.Context(), f.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return dir, db
}

// dsmc runs Run in-process.
func dsmc(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// snapshot is everything dsm_c could change in the database.
type snapshot struct {
	Settings map[string]string
	Events   []store.SettingEvent
	Version  int64
	Rows     map[string][]string // every row of every table, as text
}

func takeSnapshot(t *testing.T, db *store.DB, dir string) snapshot {
	t.Helper()
	ctx := t.Context()
	var s snapshot
	var err error
	if s.Settings, err = db.Settings(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Events, err = db.SettingEvents(ctx, "", 1000); err != nil {
		t.Fatal(err)
	}
	if s.Version, err = db.SettingsVersion(ctx); err != nil {
		t.Fatal(err)
	}
	s.Rows = dumpTables(t, filepath.Join(dir, install.DefaultDBFile))
	return s
}

// dumpTables reads every row of every table with plain SQL.
func dumpTables(t *testing.T, path string) map[string][]string {
	return storetest.Dump(t, path, storetest.Options{})
}

func wantContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	dir, db := newInstall(t)
	ctx := t.Context()
	// Some state that bad input must leave alone.
	if _, _, err := db.SetSetting(ctx, relay, "TLSv1.1", "test"); err != nil {
		t.Fatal(err)
	}
	if err := db.InsertAPIKey(ctx, "taken", "aaaaaaaaaaaa", "hash"); err != nil {
		t.Fatal(err)
	}
	// java.security without TLS 1.3: a Manager minimum of TLSv1.3 would leave the Manager's ports nothing.
	js := filepath.Join(dir, tlspolicy.JavaSecurityFile)
	data, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(js, []byte(strings.Replace(string(data), "TLSv1, TLSv1.1, ", "TLSv1, TLSv1.1, TLSv1.3, ", 1)), 0o640); err != nil {
		t.Fatal(err)
	}
	allNames := strings.Join(settings.Names(), ", ")
	allActions := "changesetting, viewsetting, createapikey, listapikeys, revokeapikey, tlsclients, exportdsmcert, createactivationtoken, listcomputers, deactivate, " +
		"reactivate, setrelay, createrelaygroup, listrelaygroups, listmanagernodes, assignrelaygroup, sendpolicy, publishbundle, addcomputer, rotatecert, help"
	tests := []struct {
		name   string
		args   []string
		want   []string // in stderr
		noDir  bool     // leave --dir out
		stdout string   // the expected stdout ("" unless said)
	}{
		{name: "unknown action", args: []string{"-action", "changesettings"}, want: []string{`"changesettings" is not an action`, allActions}},
		{name: "unknown action without install folder", args: []string{"-action", "frobnicate"}, noDir: true, want: []string{`"frobnicate"`, allActions}},
		{name: "unknown setting", args: []string{"-action", "changesetting", "-name", "restrictRelayMinimum", "-value", "TLSv1.2"},
			want: []string{`"restrictRelayMinimum" is not a setting`, allNames}},
		{name: "setting without prefix gets a hint", args: []string{"-action", "changesetting", "-name", "enableStrongCiphers", "-value", "true"},
			want: []string{"did you mean " + strong}},
		{name: "bad enum value", args: []string{"-action", "changesetting", "-name", relay, "-value", "TLSv1.4"},
			want: []string{`"TLSv1.4" is not allowed`, "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"}},
		{name: "bad bool value", args: []string{"-action", "changesetting", "-name", strong, "-value", "yes"},
			want: []string{`"yes"`, "true, false"}},
		{name: "bad int value", args: []string{"-action", "changesetting", "-name", heartbeat, "-value", "0"},
			want: []string{`"0" is not allowed`, "from 1 to 1440"}},
		{name: "missing -name", args: []string{"-action", "changesetting", "-value", "TLSv1.2"}, want: []string{"needs -name", allNames}},
		{name: "missing -value", args: []string{"-action", "changesetting", "-name", relay},
			want: []string{"needs -value", relay, "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"}},
		{name: "empty -value", args: []string{"-action", "changesetting", "-name", relay, "-value", " "}, want: []string{"needs -value"}},
		{name: "flag without its value", args: []string{"-action", "changesetting", "-name"},
			want: []string{"flag needs an argument: -name", "-action ACTION"}},
		{name: "unknown setting in viewsetting", args: []string{"-action", "viewsetting", "-name", "nope"}, want: []string{`"nope" is not a setting`, allNames}},
		{name: "missing key name", args: []string{"-action", "createapikey"}, want: []string{"needs -name", "ASCII letters, digits"}},
		{name: "bad key name", args: []string{"-action", "createapikey", "-name", "ci/bot"}, want: []string{`"ci/bot"`, `'/'`, "ASCII letters, digits"}},
		{name: "long key name", args: []string{"-action", "createapikey", "-name", strings.Repeat("k", 65)}, want: []string{"65 characters", "up to 64"}},
		{name: "duplicate key name", args: []string{"-action", "createapikey", "-name", "taken"}, want: []string{`"taken"`, "exists already", "choose another name"}},
		{name: "unknown key scope", args: []string{"-action", "createapikey", "-name", "k", "-scope", "root"},
			want: []string{`-scope "root" is not a scope`, "admin", "read-only"}},
		{name: "unreadable key expiry", args: []string{"-action", "createapikey", "-name", "k", "-expires", "1 month"},
			want: []string{`-expires "1 month"`, "30d", "RFC 3339"}},
		{name: "key expiry in the past", args: []string{"-action", "createapikey", "-name", "k", "-expires", "2001-01-01T00:00:00Z"},
			want: []string{"is not ahead of now", "leave it out for a key that does not expire"}},
		{name: "key expiry too far", args: []string{"-action", "createapikey", "-name", "k", "-expires", "4000d"}, want: []string{"more than 3650 days ahead"}},
		{name: "-scope on another action", args: []string{"-action", "createactivationtoken", "-scope", "admin"},
			want: []string{"createactivationtoken does not use -scope"}},
		{name: "revokeapikey without -name", args: []string{"-action", "revokeapikey"}, want: []string{"needs -name N", "listapikeys"}},
		{name: "revoke an unknown key", args: []string{"-action", "revokeapikey", "-name", "Taken"},
			want: []string{`-name "Taken" is not an API key (did you mean "taken"?)`, `the keys are: "taken"`}},
		{name: "listapikeys takes no -name", args: []string{"-action", "listapikeys", "-name", "taken"}, want: []string{"listapikeys does not use -name"}},
		{name: "non-numeric port", args: []string{"-action", "tlsclients", "-name", "console"}, want: []string{`"console" is not a port number`, "1 to 65535"}},
		{name: "non-numeric -port", args: []string{"-action", "tlsclients", "-port", "x"}, want: []string{`"x" is not a port`}},
		{name: "port out of range", args: []string{"-action", "tlsclients", "-name", "70000"}, want: []string{`"70000"`}},
		{name: "non-numeric days", args: []string{"-action", "tlsclients", "-value", "week"}, want: []string{`"week" is not a whole number`, "1 to 36500"}},
		{name: "zero -days", args: []string{"-action", "tlsclients", "-days", "0"}, want: []string{`"0"`}},
		{name: "-value and -days", args: []string{"-action", "tlsclients", "-value", "1", "-days", "2"}, want: []string{"-value DAYS or -days DAYS, not both"}},
		{name: "bad -output", args: []string{"-action", "viewsetting", "-output", "yaml"}, want: []string{`-output "yaml"`, "json", "text"}},
		{name: "unknown flag", args: []string{"-action", "viewsetting", "-verbose", "1"},
			want: []string{"flag provided but not defined: -verbose", "--dir DIR, -action ACTION, -name N, -value V"}},
		{name: "flag the action does not use", args: []string{"-action", "viewsetting", "-name", relay, "-value", "TLSv1"},
			want: []string{"viewsetting does not use -value", "[-name N]"}},
		{name: "flag given twice", args: []string{"-action", "changesetting", "-name", relay, "-value", "TLSv1", "-value", "TLSv1.3"},
			want: []string{"given twice", `"TLSv1"`}},
		{name: "stray argument", args: []string{"-action", "changesetting", "-name", relay, "TLSv1"}, want: []string{`unexpected argument "TLSv1"`}},
		{name: "empty export path", args: []string{"-action", "exportdsmcert", "-value", ""}, want: []string{"needs a file path"}},
		{name: "no action", args: []string{"-name", relay}, want: []string{"no -action given", allActions, "Usage:"}},
		{name: "no arguments", args: nil, noDir: true, want: []string{"no -action given", "Usage:"}},
		{name: "manager minimum that leaves no version", args: []string{"-action", "changesetting", "-name", settings.ManagerMinimumTLS, "-value", "TLSv1.3"},
			want: []string{settings.ManagerMinimumTLS + "=TLSv1.3 refused, nothing changed", "port 4119 (console) could complete no TLS handshake", "allow TLSv1.2 today", "choose a lower minimum or change java.security"}},
		{name: "rotatecert -rsa and -ecdsa", args: []string{"-action", "rotatecert", "-rsa", "-ecdsa"}, want: []string{"-rsa or -ecdsa, not both"}},
		{name: "rotatecert -rsa=maybe", args: []string{"-action", "rotatecert", "-rsa=maybe"}, want: []string{"-rsa=maybe", "write -rsa alone"}},
		{name: "rotatecert -rsa with a value after it", args: []string{"-action", "rotatecert", "-rsa", "true"}, want: []string{`unexpected argument "true"`, "-rsa=true"}},
		{name: "rotatecert -name", args: []string{"-action", "rotatecert", "-name", "x"}, want: []string{"rotatecert does not use -name", "[-rsa | -ecdsa]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TLSFLEET_DIR", "")
			before := takeSnapshot(t, db, dir)
			args := tt.args
			if !tt.noDir {
				args = append([]string{"--dir", dir}, args...)
			}
			code, stdout, stderr := dsmc(t, args...)
			if code != ExitBadInput {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, ExitBadInput, stderr)
			}
			wantContains(t, "stderr", stderr, tt.want...)
			if stdout != tt.stdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.stdout)
			}
			if diff := cmp.Diff(before, takeSnapshot(t, db, dir)); diff != "" {
				t.Errorf("the database changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestNoInstallFolder(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{name: "nothing given", args: []string{"-action", "viewsetting"}, want: "no install folder: pass --dir DIR, set TLSFLEET_DIR"},
		{name: "--dir not an install folder", args: []string{"--dir", empty, "-action", "viewsetting"}, want: "is not a Manager install folder (no configuration.properties)"},
		{name: "--dir missing", args: []string{"--dir", filepath.Join(empty, "nope"), "-action", "exportdsmcert"}, want: "is not a Manager install folder"},
		{name: "TLSFLEET_DIR not an install folder", env: empty, args: []string{"-action", "changesetting", "-name", relay, "-value", "TLSv1.2"},
			want: "is not a Manager install folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TLSFLEET_DIR", tt.env)
			code, stdout, stderr := dsmc(t, tt.args...)
			if code != ExitFailure {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, ExitFailure, stderr)
			}
			wantContains(t, "stderr", stderr, tt.want)
			if stdout != "" {
				t.Errorf("stdout = %q", stdout)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(empty, install.DefaultDBFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a database was created in a folder that is no install folder: %v", err)
	}
}

func currentActor(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil || u.Username == "" {
		t.Skipf("no OS user name: %v", err)
	}
	return "dsm_c:" + u.Username
}

func TestChangeSetting(t *testing.T) {
	dir, db := newInstall(t)
	ctx := t.Context()
	act := currentActor(t)
	relayScope := "Applies to relays' port 4122, through their policy.\n"
	strongScope := "Applies to relays' port 4122 and agents' port 4118, through their policy; not the Manager's ports 4119 and 4120 (restrict those with java.security, or with ciphers= in configuration.properties for 4119).\n"
	newNode := "settings.configuration.MinimumTLSProtocolNewNode"
	tests := []struct {
		name      string
		args      []string
		stdout    string
		wantValue string // stored afterwards ("" = none)
		event     *store.SettingEvent
	}{
		{name: "change", args: []string{"-action", "changesetting", "-name", relay, "-value", "TLSv1"},
			stdout: relay + ": TLSv1.2 -> TLSv1\n" + relayScope, wantValue: "TLSv1", event: &store.SettingEvent{Name: relay, OldValue: "", NewValue: "TLSv1", Actor: act}},
		{name: "canonical spelling", args: []string{"-action", "changesetting", "-name", relay, "-value", "tlsv1.2"},
			stdout: relay + ": TLSv1 -> TLSv1.2\n" + relayScope, wantValue: "TLSv1.2", event: &store.SettingEvent{Name: relay, OldValue: "TLSv1", NewValue: "TLSv1.2", Actor: act}},
		{name: "same value again", args: []string{"-action", "changesetting", "-name", relay, "-value", "TLSV1.2"},
			stdout: relay + ": already TLSv1.2 (unchanged)\n" + relayScope, wantValue: "TLSv1.2"},
		{name: "default while nothing stored", args: []string{"-action", "changesetting", "-name", strong, "-value", "FALSE"},
			stdout: strong + ": already false (unchanged)\n" + strongScope},
		// The product's strong-cipher script sets it; TLSv1.2 is already the default.
		{name: "the strong-cipher script's MinimumTLSProtocolNewNode", args: []string{"-action", "changesetting", "-name", newNode, "-value", "TLSv1.2"},
			stdout: newNode + ": already TLSv1.2 (unchanged)\nApplies to agents' port 4118, through their policy: the policy a newly activated agent or relay starts with, and the one agents already activated get with their next policy.\n"},
		{name: "MinimumTLSProtocolNewNode changed", args: []string{"-action", "changesetting", "-name", newNode, "-value", "tlsv1.3"},
			stdout:    newNode + ": TLSv1.2 -> TLSv1.3\nApplies to agents' port 4118, through their policy: the policy a newly activated agent or relay starts with, and the one agents already activated get with their next policy.\n",
			wantValue: "TLSv1.3", event: &store.SettingEvent{Name: newNode, OldValue: "", NewValue: "TLSv1.3", Actor: act}},
		{name: "int with spaces", args: []string{"-action", "changesetting", "-name", heartbeat, "-value", " 15 "},
			stdout: heartbeat + ": 10 -> 15\n", wantValue: "15", event: &store.SettingEvent{Name: heartbeat, OldValue: "", NewValue: "15", Actor: act}},
		{name: "double dash flags", args: []string{"--action", "changesetting", "--name", heartbeat, "--value=20"},
			stdout: heartbeat + ": 15 -> 20\n", wantValue: "20", event: &store.SettingEvent{Name: heartbeat, OldValue: "15", NewValue: "20", Actor: act}},
		{name: "action in capitals", args: []string{"-action", "ChangeSetting", "-name", heartbeat, "-value", "20"},
			stdout: heartbeat + ": already 20 (unchanged)\n", wantValue: "20"},
		{name: "json", args: []string{"-action", "changesetting", "-name", strong, "-value", "true", "-output", "json"},
			stdout: "{\n  \"name\": \"" + strong + "\",\n  \"old\": \"false\",\n  \"new\": \"true\",\n  \"changed\": true,\n" +
				"  \"applies\": \"relays' port 4122 and agents' port 4118, through their policy; not the Manager's ports 4119 and 4120 (restrict those with java.security, or with ciphers= in configuration.properties for 4119)\",\n" +
				"  \"automatically_send_policy\": true,\n  \"released\": [],\n  \"unsent\": []\n}\n",
			wantValue: "true", event: &store.SettingEvent{Name: strong, OldValue: "", NewValue: "true", Actor: act}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := db.SettingEvents(ctx, "", 1000)
			v0, _ := db.SettingsVersion(ctx)
			code, stdout, stderr := dsmc(t, append([]string{"--dir", dir}, tt.args...)...)
			if code != ExitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if stdout != tt.stdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.stdout)
			}
			name := tt.args[3]
			if m, _ := db.Settings(ctx); m[name] != tt.wantValue {
				t.Errorf("stored %s = %q, want %q", name, m[name], tt.wantValue)
			}
			after, _ := db.SettingEvents(ctx, "", 1000)
			v1, _ := db.SettingsVersion(ctx)
			if tt.event == nil {
				if len(after) != len(before) || v1 != v0 {
					t.Errorf("an unchanged value recorded an event (%d -> %d) or bumped the version (%d -> %d)", len(before), len(after), v0, v1)
				}
				return
			}
			if len(after) != len(before)+1 || v1 != v0+1 {
				t.Fatalf("events %d -> %d, version %d -> %d; want one more of each", len(before), len(after), v0, v1)
			}
			got := after[0]
			if _, err := time.Parse(time.RFC3339Nano, got.At); err != nil {
				t.Errorf("event time %q: %v", got.At, err)
			}
			got.At = ""
			if diff := cmp.Diff(*tt.event, got); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

// TestChangeSettingBesideRunningManager holds a second connection open, as a running Manager does,
// while dsm_c changes a setting; the Manager's connection sees the value and the bumped counter.
func TestChangeSettingBesideRunningManager(t *testing.T) {
	dir, _ := newInstall(t)
	ctx := t.Context()
	manager, err := store.Open(ctx, filepath.Join(dir, install.DefaultDBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer manager.Close()
	v0, err := manager.SettingsVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := manager.Settings(ctx); len(m) != 0 {
		t.Fatalf("fresh settings: %v", m)
	}
	for i, v := range []string{"TLSv1.3", "TLSv1.1"} {
		code, stdout, stderr := dsmc(t, "--dir", dir, "-action", "changesetting", "-name", settings.ManagerMinimumTLS, "-value", v)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		wantContains(t, "stdout", stdout, "-> "+v)
		if m, _ := manager.Settings(ctx); m[settings.ManagerMinimumTLS] != v {
			t.Errorf("the Manager's connection sees %v, want %s", m, v)
		}
		if v1, _ := manager.SettingsVersion(ctx); v1 != v0+int64(i)+1 {
			t.Errorf("the Manager's connection sees version %d, want %d", v1, v0+int64(i)+1)
		}
	}
	ev, _ := manager.SettingEvents(ctx, settings.ManagerMinimumTLS, 10)
	if len(ev) != 2 || ev[0].OldValue != "TLSv1.3" || !strings.HasPrefix(ev[0].Actor, "dsm_c:") {
		t.Errorf("events = %+v", ev)
	}
}

func TestTypographicDashes(t *testing.T) {
	dir, db := newInstall(t)
	tests := []struct {
		name string
		args []string
		warn []string
	}{
		{name: "en dash name, as on the help page", args: []string{"-action", "changesetting", "\u2013name", relay, "-value", "TLSv1.3"},
			warn: []string{`read "–name" as "-name"`, "en dash (U+2013)"}},
		{name: "en dash on every flag", args: []string{"\u2013action", "changesetting", "\u2013name", relay, "\u2013value", "TLSv1.1"},
			warn: []string{`"–action" as "-action"`, `"–name" as "-name"`, `"–value" as "-value"`}},
		{name: "em dash", args: []string{"-action", "changesetting", "\u2014name", relay, "-value", "TLSv1"},
			warn: []string{`read "—name" as "-name"`, "em dash (U+2014)"}},
		{name: "en dash and hyphen", args: []string{"-action", "changesetting", "\u2013-name=" + relay, "-value", "TLSv1.2"},
			warn: []string{`read "–-name=` + relay + `" as "-name=` + relay + `"`}},
		{name: "typographic quotes", args: []string{"-action", "changesetting", "\u2013name", "\u201c" + relay + "\u201d", "-value", "\u201cTLSv1.3\u201d"},
			warn: []string{`"–name" as "-name"`, "typographic quotes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := dsmc(t, append([]string{"--dir", dir}, tt.args...)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			wantContains(t, "stderr", stderr, tt.warn...)
			wantContains(t, "stdout", stdout, relay+": ")
		})
	}
	if m, _ := db.Settings(t.Context()); m[relay] != "TLSv1.3" {
		t.Errorf("stored %q, want TLSv1.3", m[relay])
	}
	// A dash inside a value is left alone.
	if got := fixDashes([]string{"-name", "\u2013x", "\u2013value", "v"}, io.Discard); !cmp.Equal(got, []string{"-name", "\u2013x", "-value", "v"}) {
		t.Errorf("fixDashes = %q", got)
	}
}

func TestViewSetting(t *testing.T) {
	dir, db := newInstall(t)
	if _, _, err := db.SetSetting(t.Context(), strong, "true", "test"); err != nil {
		t.Fatal(err)
	}
	t.Run("all, text", func(t *testing.T) {
		code, stdout, stderr := dsmc(t, "--dir", dir, "-action", "viewsetting")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != len(settings.Registry) {
			t.Fatalf("%d lines, want %d:\n%s", len(lines), len(settings.Registry), stdout)
		}
		for i, s := range settings.Registry {
			if !strings.HasPrefix(lines[i], s.Name+"=") {
				t.Errorf("line %d = %q, want %s first", i, lines[i], s.Name)
			}
		}
		wantContains(t, "stdout", stdout,
			strong+"=true  (default false; allowed: true, false)\n",
			relay+"=TLSv1.2  (default TLSv1.2; allowed: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)\n",
			heartbeat+"=10  (default 10; allowed: 1-1440 minutes)\n")
	})
	t.Run("one, text", func(t *testing.T) {
		code, stdout, _ := dsmc(t, "--dir", dir, "-action", "viewsetting", "-name", strong)
		st, _ := settings.Lookup(strong)
		want := strong + "=true  (default false; allowed: true, false)\n  " + st.Description + "\n"
		if code != ExitOK || stdout != want {
			t.Errorf("exit %d, stdout %q, want %q", code, stdout, want)
		}
	})
	t.Run("all, json", func(t *testing.T) {
		code, stdout, _ := dsmc(t, "--dir", dir, "-action", "viewsetting", "-output", "json")
		var got []ops.SettingView
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != ExitOK {
			t.Fatalf("exit %d, %v:\n%s", code, err, stdout)
		}
		if len(got) != len(settings.Registry) {
			t.Fatalf("%d settings", len(got))
		}
		for i, s := range settings.Registry {
			g := got[i]
			if g.Name != s.Name || g.Default != s.Default || g.Type != s.Kind || g.Description != s.Description || !cmp.Equal(g.Allowed, s.Allowed) {
				t.Errorf("%d: %+v does not describe %+v", i, g, s)
			}
			wantValue, wantDefault := s.Default, true
			if s.Name == strong {
				wantValue, wantDefault = "true", false
			}
			if g.Value != wantValue || g.IsDefault != wantDefault || g.Stored == wantDefault {
				t.Errorf("%s: value %q is_default %v stored %v", s.Name, g.Value, g.IsDefault, g.Stored)
			}
		}
		var raw []map[string]any
		_ = json.Unmarshal([]byte(stdout), &raw)
		for _, k := range []string{"name", "value", "default", "type", "allowed", "description", "is_default"} {
			if _, ok := raw[0][k]; !ok {
				t.Errorf("JSON object has no %q: %v", k, raw[0])
			}
		}
	})
	t.Run("one int, json", func(t *testing.T) {
		code, stdout, _ := dsmc(t, "--dir", dir, "-action", "viewsetting", "-name", heartbeat, "-output", "JSON")
		var got []map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != ExitOK || len(got) != 1 {
			t.Fatalf("exit %d, %v:\n%s", code, err, stdout)
		}
		if got[0]["min"] != 1.0 || got[0]["max"] != 1440.0 || got[0]["unit"] != "minutes" || got[0]["value"] != "10" {
			t.Errorf("%v", got[0])
		}
	})
}

func TestCreateAPIKey(t *testing.T) {
	dir, db := newInstall(t)
	ctx := t.Context()
	tests := []struct {
		name, key string
		json      bool
	}{
		{name: "text", key: "ci pipeline"},
		{name: "json", key: "backup-job_2.0", json: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--dir", dir, "-action", "createapikey", "-name", tt.key}
			if tt.json {
				args = append(args, "-output", "json")
			}
			code, stdout, stderr := dsmc(t, args...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var plain string
			if tt.json {
				var got ops.NewKey
				if err := json.Unmarshal([]byte(stdout), &got); err != nil {
					t.Fatal(err)
				}
				if got.Name != tt.key {
					t.Errorf("name %q", got.Name)
				}
				plain = got.Key
			} else {
				for _, f := range strings.Fields(stdout) {
					if strings.HasPrefix(f, "tf_") {
						plain = f
						break
					}
				}
				wantContains(t, "stdout", stdout, "cannot be shown again", `curl --cacert `+filepath.Join(dir, pki.CAFile),
					`-H "Authorization: Bearer `+plain+`" https://`, ":4119/api/settings")
				if strings.Count(stdout, plain) != 2 {
					t.Errorf("the key should appear once, and once in the curl line:\n%s", stdout)
				}
			}
			prefix, err := auth.KeyPrefix(plain)
			if err != nil {
				t.Fatalf("%q: %v", plain, err)
			}
			name, hash, err := db.APIKeyHash(ctx, prefix)
			if err != nil || name != tt.key {
				t.Fatalf("stored key: %q %v", name, err)
			}
			if !auth.KeyMatches(plain, hash) {
				t.Error("the printed key does not match the stored hash")
			}
			secret := strings.SplitN(plain, "_", 3)[2] // the base64url secret may itself contain "_"
			for table, rows := range dumpTables(t, filepath.Join(dir, install.DefaultDBFile)) {
				for _, r := range rows {
					if strings.Contains(r, secret) {
						t.Errorf("table %s stores the key's secret: %s", table, r)
					}
				}
			}
			if taken, _ := db.APIKeyNameTaken(ctx, tt.key); !taken {
				t.Error("name not taken afterwards")
			}
		})
	}
}

func TestExportCert(t *testing.T) {
	dir, _ := newInstall(t)
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(t *testing.T, data []byte) *x509.Certificate {
		t.Helper()
		b, rest := pem.Decode(data)
		if b == nil || b.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("not one PEM certificate:\n%s", data)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Equal(ca.Cert) || !c.IsCA {
			t.Fatalf("exported %s, not the fleet CA %s", c.Subject, ca.Cert.Subject)
		}
		return c
	}
	t.Run("stdout", func(t *testing.T) {
		code, stdout, stderr := dsmc(t, "--dir", dir, "-action", "exportdsmcert")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		parse(t, []byte(stdout))
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "fleet-ca.pem")
		code, stdout, stderr := dsmc(t, "--dir", dir, "-action", "exportdsmcert", "-value", path)
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		parse(t, data)
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", fi.Mode().Perm())
		}
		wantContains(t, "stdout", stdout, path, "SHA-256 fingerprint: "+ca.Fingerprint())
	})
	t.Run("json", func(t *testing.T) {
		code, stdout, _ := dsmc(t, "--dir", dir, "-action", "exportdsmcert", "-output", "json")
		var got map[string]string
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != ExitOK {
			t.Fatalf("exit %d, %v: %s", code, err, stdout)
		}
		parse(t, []byte(got["pem"]))
		if got["fingerprint"] != ca.Fingerprint() {
			t.Errorf("fingerprint %q, want %q", got["fingerprint"], ca.Fingerprint())
		}
	})
	t.Run("unwritable path", func(t *testing.T) {
		code, _, stderr := dsmc(t, "--dir", dir, "-action", "exportdsmcert", "-value", filepath.Join(t.TempDir(), "no", "such", "dir", "ca.pem"))
		if code != ExitFailure {
			t.Errorf("exit %d, want 1: %s", code, stderr)
		}
	})
}

func TestTLSClients(t *testing.T) {
	dir, db := newInstall(t)
	ago := func(d time.Duration) string { return time.Now().UTC().Add(-d).Format(time.RFC3339Nano) }
	obs := []store.Observation{
		{Port: 4119, ClientIP: "10.0.0.1", SNI: "manager.example", UserAgent: "curl/8.0", OfferedMax: "TLSv1.3", Version: "TLSv1.3",
			Suite: "TLS_AES_128_GCM_SHA256", Outcome: "accepted", Count: 5, FirstSeen: ago(2 * time.Hour), LastSeen: ago(time.Hour)},
		{Port: 4120, ClientIP: "10.0.0.2", AgentGUID: "agent-7", OfferedMax: "TLSv1.2", Version: "TLSv1", Suite: "TLS_RSA_WITH_AES_128_CBC_SHA",
			Outcome: "accepted", Count: 3, FirstSeen: ago(3 * time.Hour), LastSeen: ago(2 * time.Hour)},
		{Port: 4119, ClientIP: "10.0.0.3", UserAgent: "old\tjava\x1b[31m", OfferedMax: "TLSv1.1", Outcome: "rejected",
			Reason: "TLSv1.1 is disabled", Count: 2, FirstSeen: ago(4 * 24 * time.Hour), LastSeen: ago(3 * 24 * time.Hour)},
		{Port: 4119, ClientIP: "10.0.0.4", OfferedMax: "TLSv1", Outcome: "rejected", Reason: "TLSv1 is disabled", Count: 1,
			FirstSeen: ago(20 * 24 * time.Hour), LastSeen: ago(10 * 24 * time.Hour)},
	}
	if err := db.AddObservations(t.Context(), obs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		clients []string // in the table, newest first
		summary string
	}{
		{name: "default 7 days", args: nil, clients: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"},
			summary: "2 of 3 clients used TLS older than TLSv1.2 in the last 7 days on all ports"},
		{name: "30 days", args: []string{"-value", "30"}, clients: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"},
			summary: "3 of 4 clients used TLS older than TLSv1.2 in the last 30 days on all ports"},
		{name: "-days", args: []string{"-days", "1"}, clients: []string{"10.0.0.1", "10.0.0.2"}, summary: "1 of 2 clients"},
		{name: "port by -name", args: []string{"-name", "4120"}, clients: []string{"10.0.0.2"}, summary: "1 of 1 clients used TLS older than TLSv1.2 in the last 7 days on port 4120"},
		{name: "-port and -days", args: []string{"-port", "4119", "-days", "30"}, clients: []string{"10.0.0.1", "10.0.0.3", "10.0.0.4"},
			summary: "2 of 3 clients"},
		{name: "nothing on the port", args: []string{"-name", "4122"}, summary: "No TLS handshakes recorded in the last 7 days on port 4122."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := dsmc(t, append([]string{"--dir", dir, "-action", "tlsclients"}, tt.args...)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			wantContains(t, "summary", lines[0], tt.summary)
			if len(tt.clients) == 0 {
				if len(lines) != 1 {
					t.Errorf("want the summary only:\n%s", stdout)
				}
				return
			}
			if len(lines) != 3+len(tt.clients) {
				t.Fatalf("%d lines, want summary, blank, header and %d rows:\n%s", len(lines), len(tt.clients), stdout)
			}
			header := strings.Fields(lines[2])
			wantHeader := []string{"LAST", "SEEN", "PORT", "CLIENT", "SNI", "USER-AGENT", "AGENT", "OFFERED", "VERSION", "SUITE", "OUTCOME", "COUNT", "REASON"}
			if !cmp.Equal(header, wantHeader) {
				t.Errorf("header %q", lines[2])
			}
			col := strings.Index(lines[2], "CLIENT")
			for i, c := range tt.clients {
				row := lines[3+i]
				if !strings.HasPrefix(row[col:], c+" ") {
					t.Errorf("row %d = %q, want client %s in the CLIENT column", i, row, c)
				}
			}
		})
	}
	t.Run("text cells", func(t *testing.T) {
		_, stdout, _ := dsmc(t, "--dir", dir, "-action", "tlsclients", "-value", "30")
		wantContains(t, "stdout", stdout, `old\tjava\x1b[31m`, "TLSv1.1 is disabled", "agent-7", "manager.example", "TLS_RSA_WITH_AES_128_CBC_SHA")
		if strings.Contains(stdout, "\x1b") {
			t.Error("a client's escape sequence reached the terminal")
		}
		for _, l := range strings.Split(stdout, "\n") {
			if strings.Contains(l, "10.0.0.1 ") && !strings.HasSuffix(strings.TrimSpace(l), "-") {
				t.Errorf("accepted row has a reason or no %q: %q", "-", l)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		code, stdout, _ := dsmc(t, "--dir", dir, "-action", "tlsclients", "-output", "json", "-value", "30", "-name", "4120")
		var got []store.Observation
		if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != ExitOK {
			t.Fatalf("exit %d, %v: %s", code, err, stdout)
		}
		if diff := cmp.Diff([]store.Observation{obs[1]}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		_, stdout, _ = dsmc(t, "--dir", dir, "-action", "tlsclients", "-output", "json", "-name", "4122")
		if strings.TrimSpace(stdout) != "[]" {
			t.Errorf("no observations: %q, want []", stdout)
		}
	})
}

func TestEnvironmentFolder(t *testing.T) {
	dir, db := newInstall(t)
	t.Setenv("TLSFLEET_DIR", dir)
	code, stdout, stderr := dsmc(t, "-action", "changesetting", "-name", relay, "-value", "TLSv1.3")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantContains(t, "stdout", stdout, "TLSv1.2 -> TLSv1.3")
	if m, _ := db.Settings(t.Context()); m[relay] != "TLSv1.3" {
		t.Errorf("stored %v", m)
	}
	// --dir wins over the environment.
	other, _ := newInstall(t)
	if code, stdout, _ := dsmc(t, "--dir", other, "-action", "viewsetting", "-name", relay); code != ExitOK || !strings.HasPrefix(stdout, relay+"=TLSv1.2 ") {
		t.Errorf("exit %d: %s", code, stdout)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-action", "help"}, {"-h"}, {"--help"}} {
		code, stdout, stderr := dsmc(t, args...)
		if code != ExitOK || stderr != "" {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
		wantContains(t, "usage", stdout, "dsm_c [--dir DIR] -action ACTION", "changesetting -name N -value V", "viewsetting", "createapikey",
			"tlsclients", "exportdsmcert", relay)
	}
}

// --- the real binary ---

var build struct {
	once sync.Once
	path string
	err  error
}

// binary builds cmd/dsm_c once per test run.
func binary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
			if _, err := os.Stat(goTool); err != nil {
				build.err = fmt.Errorf("no go command to build dsm_c with: %v", err)
				return
			}
		}
		dir, err := os.MkdirTemp("", "dsm_c-test-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "dsm_c")
		out, err := exec.Command(goTool, "build", "-o", build.path, "tlsfleet/cmd/dsm_c").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.path != "" {
		os.RemoveAll(filepath.Dir(build.path))
	}
	os.Exit(code)
}

// runBinary runs a dsm_c binary in workDir with TLSFLEET_DIR unset.
func runBinary(t *testing.T, bin, workDir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = workDir
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "TLSFLEET_DIR=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := binary(t)
	dir, db := newInstall(t)
	elsewhere := t.TempDir()

	t.Run("bad setting value", func(t *testing.T) {
		before := takeSnapshot(t, db, dir)
		code, stdout, stderr := runBinary(t, bin, elsewhere, "--dir", dir, "-action", "changesetting", "\u2013name", relay, "-value", "TLSv1.4")
		if code != ExitBadInput {
			t.Errorf("exit %d, want 2", code)
		}
		wantContains(t, "stderr", stderr, `read "–name" as "-name"`, `"TLSv1.4" is not allowed`, "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3")
		if stdout != "" {
			t.Errorf("stdout %q", stdout)
		}
		if diff := cmp.Diff(before, takeSnapshot(t, db, dir)); diff != "" {
			t.Errorf("the database changed:\n%s", diff)
		}
	})
	t.Run("no install folder", func(t *testing.T) {
		code, _, stderr := runBinary(t, bin, elsewhere, "-action", "viewsetting")
		if code != ExitFailure {
			t.Errorf("exit %d, want 1", code)
		}
		wantContains(t, "stderr", stderr, "no install folder")
	})
	t.Run("binary's folder", func(t *testing.T) {
		inFolder := filepath.Join(dir, "dsm_c")
		copyFile(t, bin, inFolder)
		code, stdout, stderr := runBinary(t, inFolder, elsewhere, "-action", "changesetting", "-name", heartbeat, "-value", "30")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if want := heartbeat + ": 10 -> 30\n"; stdout != want {
			t.Errorf("stdout %q, want %q", stdout, want)
		}
		if m, _ := db.Settings(t.Context()); m[heartbeat] != "30" {
			t.Errorf("stored %v", m)
		}
		ev, _ := db.SettingEvents(t.Context(), heartbeat, 1)
		if len(ev) != 1 || ev[0].Actor != currentActor(t) {
			t.Errorf("events %+v", ev)
		}
	})
}
