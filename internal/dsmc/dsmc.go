// Package dsmc is dsm_c, the Manager's command-line tool, with the syntax of the product help page:
// `dsm_c [--dir DIR] -action ACTION [-name N] [-value V] [-output json]`. It changes and shows the
// fleet-wide settings, creates API keys, reports which TLS clients still use old protocol versions and
// exports the fleet CA certificate; and it runs the fleet: activation tokens, the computers, relays
// and relay groups, update bundles and send policy (it works with the Manager stopped: a running Manager
// follows the database and pushes what was released). Every input is checked before the database is touched: bad input
// exits 2 with a message that names it and what is allowed, and changes nothing.
package dsmc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"unicode/utf8"

	"tlsfleet/internal/install"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFailure  = 1 // the install folder, the database or a file could not be used
	ExitBadInput = 2 // the command line was wrong; nothing changed
)

// inputError is the caller's fault: Run exits 2 for it.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func bad(format string, a ...any) error { return &inputError{fmt.Sprintf(format, a...)} }

// errNoAction is returned after the usage went to stderr because no action was given.
var errNoAction = errors.New("no -action given")

// Run runs dsm_c with the arguments after the program name and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var act action
	err := run(ctx, args, stdout, stderr, &act)
	var ie *inputError
	oe, isOps := ops.AsInput(err)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ie):
		fmt.Fprintln(stderr, "dsm_c:", ie.msg)
		return ExitBadInput
	case isOps:
		fmt.Fprintln(stderr, "dsm_c:", oe.Render(act.flagFor))
		return ExitBadInput
	case errors.Is(err, errNoAction):
		fmt.Fprintf(stderr, "dsm_c: no -action given; the actions are: %s\n", strings.Join(actionNames(), ", "))
		return ExitBadInput
	default:
		fmt.Fprintln(stderr, "dsm_c:", err)
		return ExitFailure
	}
}

// strFlag is a string flag that remembers whether it was given, and refuses to be given twice (the last
// of two -value flags silently winning would hide a typo).
type strFlag struct {
	val string
	set bool
}

func (f *strFlag) String() string { return f.val }

func (f *strFlag) Set(s string) error {
	if f.set {
		return fmt.Errorf("given twice (first %q); give it once", f.val)
	}
	f.val, f.set = s, true
	return nil
}

// boolFlag is a flag given alone (-allrelays), or as -allrelays=true|false; the action checks the value.
type boolFlag struct{ strFlag }

// IsBoolFlag tells the flag package that the flag takes no separate value.
func (f *boolFlag) IsBoolFlag() bool { return true }

// boolFlags are the flags that take no separate value, as fixDashes must know.
var boolFlags = []string{"allrelays", "activate", "rsa", "ecdsa"}

// options are the parsed flags.
type options struct {
	dir, action, name, value, output, days, port strFlag
	expires, uses, relayGroup, policyID, scope   strFlag
	allRelays, activate                          boolFlag
	rsa, ecdsa                                   boolFlag
}

// flagList is the flags, as the error for an unknown one lists them.
const flagList = "--dir DIR, -action ACTION, -name N, -value V, -output text|json, -days N, -port N, " +
	"-expires DURATION, -uses N, -relaygroup G, -policyid P, -scope S, -allrelays, -activate, -rsa, -ecdsa"

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("dsm_c", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&o.dir, "dir", "the Manager's install folder")
	fs.Var(&o.action, "action", "what to do")
	fs.Var(&o.name, "name", "the setting, API key or port")
	fs.Var(&o.value, "value", "the new value, days or path")
	fs.Var(&o.output, "output", "text or json")
	fs.Var(&o.days, "days", "tlsclients: the same as -value DAYS")
	fs.Var(&o.port, "port", "tlsclients: the same as -name PORT")
	fs.Var(&o.expires, "expires", "createactivationtoken, createapikey: how long the token or key is valid")
	fs.Var(&o.uses, "uses", "createactivationtoken: how many activations the token allows")
	fs.Var(&o.relayGroup, "relaygroup", "a relay group")
	fs.Var(&o.policyID, "policyid", "createactivationtoken: the policy ID of the computers it activates")
	fs.Var(&o.scope, "scope", "createapikey: admin or read-only")
	fs.Var(&o.allRelays, "allrelays", "sendpolicy: every relay")
	fs.Var(&o.activate, "activate", "addcomputer: activate it now")
	fs.Var(&o.rsa, "rsa", "rotatecert: an RSA-2048 key")
	fs.Var(&o.ecdsa, "ecdsa", "rotatecert: an ECDSA P-256 key")
	if err := fs.Parse(fixDashes(args, stderr)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, bad("%v; the flags are: %s (see dsm_c -action help)", err, flagList)
	}
	if fs.NArg() > 0 {
		if _, err := strconv.ParseBool(fs.Arg(0)); err == nil {
			for _, f := range []struct {
				name string
				v    *boolFlag
			}{{"allrelays", &o.allRelays}, {"activate", &o.activate}, {"rsa", &o.rsa}, {"ecdsa", &o.ecdsa}} {
				if f.v.set {
					return nil, bad("unexpected argument %q: -%s takes no value; write -%s alone (or -%s=%s)", fs.Arg(0), f.name, f.name, f.name, fs.Arg(0))
				}
			}
		}
		return nil, bad("unexpected argument %q: every input is a flag (quote a value that has spaces); the flags are: %s",
			fs.Arg(0), flagList)
	}
	for _, f := range []struct {
		flag string
		v    *strFlag
	}{{"-name", &o.name}, {"-value", &o.value}, {"-days", &o.days}, {"-port", &o.port}, {"-action", &o.action},
		{"-expires", &o.expires}, {"-uses", &o.uses}, {"-relaygroup", &o.relayGroup}, {"-policyid", &o.policyID}, {"-scope", &o.scope}} {
		if s, ok := stripCurlyQuotes(f.v.val); ok {
			fmt.Fprintf(stderr, "dsm_c: warning: read %s %s as %q: typographic quotes, as copied from the help page, are not part of the value\n", f.flag, f.v.val, s)
			f.v.val = s
		}
	}
	return o, nil
}

// isDash reports whether r is a dash that a web page or a word processor puts where a command has "-".
func isDash(r rune) bool {
	switch r {
	case '-', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212':
		return true
	}
	return false
}

func dashName(r rune) string {
	switch r {
	case '\u2013':
		return "an en dash (U+2013)"
	case '\u2014':
		return "an em dash (U+2014)"
	case '\u2212':
		return "a minus sign (U+2212)"
	}
	return fmt.Sprintf("a typographic dash (%U)", r)
}

// fixDash rewrites "–name", "—name", "–-name", "-–name" and the like to "-name". It reports the
// typographic dash it replaced.
func fixDash(a string) (fixed string, dash rune, ok bool) {
	rest := a
	for n := 0; n < 2; n++ {
		r, size := utf8.DecodeRuneInString(rest)
		if !isDash(r) {
			break
		}
		if r != '-' && dash == 0 {
			dash = r
		}
		rest = rest[size:]
	}
	if dash == 0 || rest == "" {
		return a, 0, false
	}
	return "-" + rest, dash, true
}

// fixDashes applies fixDash to the arguments in flag position (not to the value after a flag), warning
// about each one: the product help page prints "–name" with an en dash, and users paste from it.
func fixDashes(args []string, stderr io.Writer) []string {
	out := append([]string(nil), args...)
	value := false // the previous argument was a flag whose value is this one
	for i, a := range out {
		if a == "--" {
			break
		}
		if value {
			value = false
			continue
		}
		if f, dash, ok := fixDash(a); ok {
			fmt.Fprintf(stderr, "dsm_c: warning: read %q as %q: it starts with %s, as copied from the help page; type a plain \"-\"\n",
				a, f, dashName(dash))
			out[i], a = f, f
		}
		// Every dsm_c flag but the bool ones takes a value; with no "=" it is the next argument.
		value = strings.HasPrefix(a, "-") && len(a) > 1 && !strings.Contains(a, "=") &&
			!containsString(boolFlags, strings.TrimLeft(a, "-"))
	}
	return out
}

// stripCurlyQuotes removes typographic quotes around a value ("“TLSv1.2”"), which the shell keeps.
func stripCurlyQuotes(s string) (string, bool) {
	const quotes = "\u201c\u201d\u2018\u2019\u201e\u00ab\u00bb"
	first, fs := utf8.DecodeRuneInString(s)
	last, ls := utf8.DecodeLastRuneInString(s)
	if len(s) < fs+ls || !strings.ContainsRune(quotes, first) || !strings.ContainsRune(quotes, last) {
		return s, false
	}
	return s[fs : len(s)-ls], true
}

// session is what an action works with.
type session struct {
	folder *install.Folder
	ops    *ops.Ops // without a store for actions that do not need the database
	stdout io.Writer
	stderr io.Writer
	json   bool
}

// action is one -action.
type action struct {
	name     string
	synopsis string
	help     string
	flags    []string // the flags it takes besides --dir and -output, without their dash
	// fields maps the operations' request fields to this action's flags where they differ from the
	// default (defaultFlags): assignrelaygroup's relay_group is -value, say.
	fields  map[string]string
	needsDB bool
	// prepare checks the flags and returns the work; it runs before anything is opened.
	prepare func(o *options) (func(ctx context.Context, s *session) error, error)
}

var actions []action

func init() {
	actions = []action{
		{name: "changesetting", synopsis: "-name N -value V", flags: []string{"name", "value"}, needsDB: true, prepare: prepareChangeSetting,
			help: "change a fleet-wide setting; a running Manager applies it within 2 s"},
		{name: "viewsetting", synopsis: "[-name N]", flags: []string{"name"}, needsDB: true, prepare: prepareViewSetting,
			help: "show one setting or all, with default and allowed values"},
		{name: "createapikey", synopsis: "-name N [-expires 30d|RFC3339] [-scope admin|read-only]", flags: []string{"name", "expires", "scope"},
			needsDB: true, prepare: prepareCreateAPIKey, help: "create an API key for the REST API (shown once)"},
		{name: "listapikeys", needsDB: true, prepare: prepareListAPIKeys,
			help: "the API keys: prefix, scope, created, expires, last used, status (never their secrets)"},
		{name: "revokeapikey", synopsis: "-name N", flags: []string{"name"}, needsDB: true, prepare: prepareRevokeAPIKey,
			help: "revoke an API key: every Manager node refuses it from its next request on"},
		{name: "tlsclients", synopsis: "[-value DAYS] [-name PORT]", flags: []string{"name", "value", "days", "port"}, needsDB: true, prepare: prepareTLSClients,
			help: "the TLS clients seen in the last DAYS days (7), on one port or all"},
		{name: "exportdsmcert", synopsis: "[-value PATH]", flags: []string{"value"}, prepare: prepareExportCert,
			help: "print the fleet CA certificate (PEM), or write it to PATH"},
		{name: "createactivationtoken", synopsis: "[-expires DURATION] [-uses N] [-relaygroup G] [-policyid P]",
			flags: []string{"expires", "uses", "relaygroup", "policyid"}, needsDB: true, prepare: prepareCreateActivationToken,
			help: "create a token for dsa_control -a (shown once) and print the activation command"},
		{name: "listcomputers", needsDB: true, prepare: prepareListComputers,
			help: "the activated computers: relay role, group, last seen, status, TLS, version and policy"},
		{name: "deactivate", synopsis: "-name C", flags: []string{"name"}, needsDB: true, prepare: prepareSetDeactivated(true),
			help: "deactivate a computer (host name or GUID): the Manager refuses it and sends it no policy"},
		{name: "reactivate", synopsis: "-name C", flags: []string{"name"}, needsDB: true, prepare: prepareSetDeactivated(false),
			help: "undo deactivate"},
		{name: "setrelay", synopsis: "-name C -value true|false", flags: []string{"name", "value"}, needsDB: true, prepare: prepareSetRelay,
			help: "turn a computer's relay role on or off (a policy change)"},
		{name: "createrelaygroup", synopsis: "-name G", flags: []string{"name"}, needsDB: true, prepare: prepareCreateRelayGroup,
			help: "create a relay group"},
		{name: "listrelaygroups", needsDB: true, prepare: prepareListRelayGroups,
			help: "the relay groups, with their relays and computers"},
		{name: "listmanagernodes", needsDB: true, prepare: prepareListManagerNodes,
			help: "the Manager nodes sharing this database: addresses, version, started, last seen, online/offline"},
		{name: "assignrelaygroup", synopsis: "-name C -value G", flags: []string{"name", "value"}, fields: map[string]string{"relay_group": "-value"}, needsDB: true, prepare: prepareAssignRelayGroup,
			help: "put a computer in a relay group (a policy change)"},
		{name: "sendpolicy", synopsis: "-name C | -relaygroup G | -allrelays", flags: []string{"name", "relaygroup", "allrelays"}, needsDB: true,
			prepare: prepareSendPolicy, help: "release the current policy to a computer, a group's relays or all relays"},
		{name: "publishbundle", synopsis: "-name NAME -value FILE", flags: []string{"name", "value"}, needsDB: true, prepare: preparePublishBundle,
			help: "publish an update bundle (at most 256 MiB) for the relays to mirror (a policy change)"},
		{name: "addcomputer", synopsis: "-name HOST:4118 -activate [-value dsm://MANAGER:4120/]", flags: []string{"name", "activate", "value", "relaygroup", "policyid"},
			needsDB: true, prepare: prepareAddComputer,
			help: "activate an agent waiting on HOST:4118 (Manager-initiated)"},
		{name: "rotatecert", synopsis: "[-rsa | -ecdsa]", flags: []string{"rsa", "ecdsa"}, fields: map[string]string{"key": "-rsa or -ecdsa"}, needsDB: true,
			prepare: prepareRotateCert, help: "a new Manager certificate from the fleet CA (same names), in force without a restart"},
		{name: "help", help: "this text"},
	}
}

// defaultFlags are the flags that carry the operations' request fields.
var defaultFlags = map[string]string{"name": "-name", "value": "-value", "relay_group": "-relaygroup", "policy_id": "-policyid",
	"expires": "-expires", "uses": "-uses", "days": "-value (or -days)", "port": "-name (or -port)", "computers": "-name",
	"address": "-name", "manager_url": "-value", "file": "-value", "target": "-action sendpolicy"}

// flagFor names a request field as this action's flag, for the operations' error messages.
func (a action) flagFor(field string) string {
	if f, ok := a.fields[field]; ok {
		return f
	}
	if f, ok := defaultFlags[field]; ok {
		return f
	}
	return "-" + field
}

func actionNames() []string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = a.name
	}
	return out
}

func findAction(name string) (action, bool) {
	for _, a := range actions {
		if strings.EqualFold(a.name, strings.TrimSpace(name)) {
			return a, true
		}
	}
	return action{}, false
}

func usage() string {
	var b strings.Builder
	b.WriteString(`dsm_c — the tlsfleet Manager's command-line tool

Usage:
  dsm_c [--dir DIR] -action ACTION [-name N] [-value V] [-output json]

Actions:
`)
	for _, a := range actions {
		if syn := strings.TrimSpace(a.name + " " + a.synopsis); len(syn) <= 42 {
			fmt.Fprintf(&b, "  %-42s %s\n", syn, a.help)
		} else {
			fmt.Fprintf(&b, "  %s\n  %-42s %s\n", syn, "", a.help)
		}
	}
	b.WriteString(`
Flags:
  --dir DIR      the Manager's install folder; default $TLSFLEET_DIR, else this binary's folder
                 when it holds configuration.properties
  -output json   JSON instead of text (text is the default)
  -days N        tlsclients: the same as -value N
  -port N        tlsclients: the same as -name N
  -expires D     createactivationtoken: a Go duration (72h, 90m) or days (3d), 1m to 365d; 24h
                 createapikey: days (30d), a Go duration or an RFC 3339 time, up to 3650d; never
  -uses N        createactivationtoken: activations the token allows, 1 to 100000; 1
  -relaygroup G  createactivationtoken: the relay group of the computers it activates;
                 sendpolicy: the relays of group G
  -policyid P    createactivationtoken: the policy ID of the computers it activates
  -scope S       createapikey: admin (every action; the default) or read-only (GET and HEAD only)
  -allrelays     sendpolicy: every relay (a flag without a value)
  -activate      addcomputer: activate the computer now (a flag without a value)
  -rsa, -ecdsa   rotatecert: the new key's type (RSA-2048 or ECDSA P-256); neither keeps the current one

Computers are named by host name or GUID (-name C). A change of relay role, relay group, deactivation,
bundle or setting goes out by itself when settings.configuration.automaticallySendPolicy is true;
otherwise send it with -action sendpolicy. dsm_c writes released policies to the database: a running
Manager pushes them at once, and a computer that is offline gets its policy at its next heartbeat.

Settings (dsm_c -action viewsetting shows their values):
`)
	for _, s := range settings.Registry {
		fmt.Fprintf(&b, "  %s\n", s.Name)
	}
	b.WriteString(`
Flags take one dash or two (-name, --name). The help page's en dash (–name) is read as -name, with
a warning. Exit status: 0 done; 2 bad input, nothing changed; 1 the install folder, the database
or a file could not be used.
`)
	return b.String()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, chosen *action) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage())
		return nil
	}
	if err != nil {
		return err
	}
	if strings.TrimSpace(o.action.val) == "" {
		fmt.Fprint(stderr, usage())
		return errNoAction
	}
	act, ok := findAction(o.action.val)
	if !ok {
		return bad("-action %q is not an action; the actions are: %s", o.action.val, strings.Join(actionNames(), ", "))
	}
	*chosen = act
	if act.name == "help" {
		fmt.Fprint(stdout, usage())
		return nil
	}
	asJSON, err := parseOutput(o.output)
	if err != nil {
		return err
	}
	if err := checkFlagsUsed(act, o); err != nil {
		return err
	}
	work, err := act.prepare(o)
	if err != nil {
		return err
	}

	dir, err := install.Find(o.dir.val)
	if err != nil {
		return err
	}
	folder, err := install.Open(dir)
	if err != nil {
		return err
	}
	s := &session{folder: folder, stdout: stdout, stderr: stderr, json: asJSON}
	if act.needsDB {
		db, err := store.OpenDatabase(ctx, folder.Database)
		if err != nil {
			return err
		}
		defer db.Close()
		s.ops = ops.New(db, folder, nil)
	} else {
		s.ops = ops.New(nil, folder, nil)
	}
	return work(ctx, s)
}

func parseOutput(f strFlag) (bool, error) {
	switch v := strings.ToLower(strings.TrimSpace(f.val)); {
	case !f.set || v == "text":
		return false, nil
	case v == "json":
		return true, nil
	}
	return false, bad("-output %q is not an output format; use -output json, or leave it out (or -output text) for text", f.val)
}

// checkFlagsUsed refuses a flag the action does not read: `-action viewsetting -name X -value Y` was
// meant as a changesetting.
func checkFlagsUsed(act action, o *options) error {
	for _, f := range []struct {
		name string
		v    *strFlag
	}{{"name", &o.name}, {"value", &o.value}, {"days", &o.days}, {"port", &o.port}, {"expires", &o.expires}, {"uses", &o.uses},
		{"relaygroup", &o.relayGroup}, {"policyid", &o.policyID}, {"scope", &o.scope}, {"allrelays", &o.allRelays.strFlag}, {"activate", &o.activate.strFlag},
		{"rsa", &o.rsa.strFlag}, {"ecdsa", &o.ecdsa.strFlag}} {
		if f.v.set && !containsString(act.flags, f.name) {
			takes := "no flags besides --dir and -output"
			if act.synopsis != "" {
				takes = act.synopsis + " (and --dir, -output)"
			}
			return bad("-action %s does not use -%s; it takes %s", act.name, f.name, takes)
		}
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// actor names who made a change, as the setting events record it: "dsm_c:" and the OS user.
func actor() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		name = "uid" + strconv.Itoa(os.Getuid())
	}
	return "dsm_c:" + name
}
