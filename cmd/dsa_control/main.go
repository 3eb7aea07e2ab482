// Command dsa_control is the agent's command-line tool, with the syntax of the product help page:
//
//	dsa_control [--dir STATE] -a dsm://HOST:4120/ token:TOKEN [policyid:ID] [relaygroupid:ID] [hostname:NAME]
//	            [-fingerprint SHA256 | -trust-on-first-use]
//	dsa_control [--dir STATE] -m                 check in now (one heartbeat)
//	dsa_control [--dir STATE] -r                 reset: forget the activation
//	dsa_control [--dir STATE] -s [-output json]  status
//
// It exits 0 on success, 1 on failure and 2 on a usage error. Everything is in internal/agent; `tlsfleet
// agent --dir STATE` runs the agent itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"tlsfleet/internal/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `dsa_control — the tlsfleet agent's control tool

Usage:
  dsa_control [--dir STATE] -a dsm://HOST:4120/ token:TOKEN [policyid:ID] [relaygroupid:ID] [hostname:NAME]
              [-fingerprint SHA256 | -trust-on-first-use]
        activate this agent with the Manager. The Manager is trusted through, in this order:
          -fingerprint SHA256     the fleet CA's SHA-256 (dsm_c -action exportdsmcert prints it; colons optional)
          STATE/ca.pem            the fleet CA copied there beforehand (dsm_c -action exportdsmcert -value FILE)
          -trust-on-first-use     accept the CA the server sends (warns; only on a network you trust)
  dsa_control [--dir STATE] -m                 check in now: one heartbeat, printed
  dsa_control [--dir STATE] -r                 reset: remove key, certificate, fleet CA, state and bundles
  dsa_control [--dir STATE] -s [-output json]  status: activation, GUID, Manager, last heartbeat, policy, TLS, last error

  --dir STATE   the agent's state folder (default var/agent)

Run the agent with: tlsfleet agent --dir STATE
Exit status: 0 success, 1 failure, 2 usage error.
`

// usageError marks command lines that a different command line fixes.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func bad(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

type options struct {
	dir, mode, url, output string
	act                    agent.ActivateOptions
}

// dashes maps the dashes a copied web page may carry to the ASCII one.
var dashes = strings.NewReplacer("\u2013", "-", "\u2014", "-", "\u2212", "-")

// parse reads a command line: its switches, then the activation arguments (token:... and the like), then
// the checks that need both.
func parse(args []string, stderr io.Writer) (*options, error) {
	o, positional, err := parseSwitches(args, stderr)
	if err != nil {
		return nil, err
	}
	if o.mode == "help" {
		return o, nil
	}
	if o.mode == "" {
		return nil, bad("say what to do: -a dsm://HOST:4120/ token:TOKEN (activate), -m (check in), -r (reset) or -s (status)")
	}
	if o.mode != "a" {
		if len(positional) > 0 {
			return nil, bad("%q: arguments like token:... go with -a", positional[0])
		}
		if o.act.Fingerprint != "" || o.act.TrustOnFirstUse {
			return nil, bad("-fingerprint and -trust-on-first-use go with -a")
		}
	}
	if err := o.activationArgs(positional, stderr); err != nil {
		return nil, err
	}
	if o.mode == "a" && o.act.Token == "" {
		return nil, bad("-a needs a token: dsa_control -a %s token:TOKEN (dsm_c -action createactivationtoken makes one)", o.url)
	}
	if o.act.Fingerprint != "" && o.act.TrustOnFirstUse {
		return nil, bad("-fingerprint and -trust-on-first-use contradict each other: the fingerprint already says whom to trust")
	}
	return o, nil
}

// parseSwitches reads the switches (-a URL, -m, --dir STATE, ...) into options, and returns the other
// arguments in their order. -h stops it: the mode is then "help".
func parseSwitches(args []string, stderr io.Writer) (*options, []string, error) {
	o := &options{dir: agent.DefaultDir, output: "text"}
	setMode := func(m string) error {
		if o.mode != "" && o.mode != m {
			return bad("-%s and -%s do not go together: give one of -a, -m, -r, -s", o.mode, m)
		}
		o.mode = m
		return nil
	}
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if fixed := dashes.Replace(arg); fixed != arg && strings.HasPrefix(fixed, "-") && !strings.HasPrefix(arg, "-") {
			fmt.Fprintf(stderr, "dsa_control: warning: %q starts with a typographic dash (copied from a web page?); read as %q\n", arg, fixed)
			arg = fixed
		}
		if !strings.HasPrefix(arg, "-") {
			positional = append(positional, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		needValue := func() (string, error) {
			if hasValue {
				return value, nil
			}
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				return "", bad("%s needs a value", arg)
			}
			i++
			return args[i], nil
		}
		var err error
		switch strings.ToLower(name) {
		case "h", "help":
			o.mode = "help"
			return o, positional, nil
		case "a", "activate":
			if err = setMode("a"); err == nil {
				o.url, err = needValue()
				if err != nil {
					err = bad("-a needs the Manager's address: dsa_control -a dsm://HOST:4120/ token:TOKEN")
				}
			}
		case "m":
			err = setMode("m")
		case "r", "reset":
			err = setMode("r")
		case "s", "status":
			err = setMode("s")
		case "dir":
			o.dir, err = needValue()
		case "fingerprint":
			o.act.Fingerprint, err = needValue()
		case "trust-on-first-use":
			o.act.TrustOnFirstUse = true
		case "output":
			o.output, err = needValue()
			if err == nil && o.output != "json" && o.output != "text" {
				err = bad("-output %q: use -output json (or text)", o.output)
			}
		default:
			err = bad("unknown switch %s: dsa_control -h lists them", arg)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return o, positional, nil
}

// activationArgs reads -a's arguments: token:TOKEN, policyid:ID, relaygroupid:ID and hostname:NAME.
func (o *options) activationArgs(positional []string, stderr io.Writer) error {
	for _, p := range positional {
		key, value, ok := strings.Cut(p, ":")
		if !ok {
			return bad("%q: expected token:TOKEN, policyid:ID, relaygroupid:ID or hostname:NAME", p)
		}
		switch strings.ToLower(key) {
		case "token":
			o.act.Token = value
		case "policyid":
			o.act.PolicyID = value
		case "relaygroupid":
			o.act.RelayGroup = value
		case "hostname":
			o.act.Hostname = value
		case "tenantid", "tenantpassword":
			fmt.Fprintf(stderr, "dsa_control: warning: %s: tlsfleet has no tenants; ignored\n", key)
		default:
			return bad("%q: unknown activation argument %q; use token:, policyid:, relaygroupid: or hostname:", p, key)
		}
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err == nil && o.mode == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err == nil {
		err = do(ctx, o, stdout, stderr)
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue), errors.Is(err, agent.ErrUsage):
		fmt.Fprintln(stderr, "dsa_control:", strings.TrimPrefix(err.Error(), agent.ErrUsage.Error()+": "))
		return 2
	default:
		fmt.Fprintln(stderr, "dsa_control:", err)
		return 1
	}
}

func do(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	switch o.mode {
	case "a":
		o.act.Dir, o.act.URL, o.act.Warn = o.dir, o.url, stderr
		act, err := agent.Activate(ctx, o.act)
		if err != nil {
			return err
		}
		trust := "-fingerprint"
		switch {
		case act.TrustedOnFirstUse:
			trust = "trust on first use"
		case o.act.Fingerprint == "":
			trust = filepath.Join(o.dir, agent.CAFile) + ", placed beforehand"
		}
		fmt.Fprintf(stdout, "Activated. GUID %s\n  Manager:      %s\n  fleet CA:     %s (trusted by %s)\n", act.GUID, act.Manager, act.CAFingerprint, trust)
		if act.PolicyID != "" || act.RelayGroup != "" {
			fmt.Fprintf(stdout, "  policy:       %s\n  relay group:  %s\n", orNone(act.PolicyID), orNone(act.RelayGroup))
		}
		fmt.Fprintf(stdout, "  state folder: %s\nRun the agent with: tlsfleet agent --dir %s\n", o.dir, o.dir)
		return nil
	case "m":
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		res, err := agent.CheckIn(ctx, o.dir, agent.CheckInOptions{})
		if o.output == "json" && res != nil {
			writeJSON(stdout, checkInJSON(res, err))
		}
		if err != nil {
			if res != nil && res.Seq > 0 {
				return fmt.Errorf("heartbeat %d to %s failed: %w", res.Seq, res.Manager, err)
			}
			return err
		}
		if o.output == "json" {
			return nil
		}
		fmt.Fprintf(stdout, "Heartbeat %d accepted by %s over %s.\n", res.Seq, res.Manager, res.TLSVersion)
		switch p := res.Policy; {
		case p == nil:
			fmt.Fprintln(stdout, "  policy:   none yet")
		case res.PolicyChanged:
			fmt.Fprintf(stdout, "  policy:   %s serial %d (%s) — new: stored; a running agent applies it within seconds\n", p.PolicyID, p.Serial, p.Fingerprint())
		default:
			fmt.Fprintf(stdout, "  policy:   %s serial %d (%s), unchanged\n", p.PolicyID, p.Serial, p.Fingerprint())
		}
		if n := res.Response.IntervalSeconds; n > 0 {
			fmt.Fprintf(stdout, "  interval: %d s\n", n)
		}
		if len(res.Response.Commands) > 0 {
			fmt.Fprintf(stdout, "  commands: %s\n", strings.Join(res.Response.Commands, ", "))
		}
		return nil
	case "r":
		removed, err := agent.Reset(ctx, o.dir)
		if err != nil {
			return err
		}
		if len(removed) == 0 {
			fmt.Fprintf(stdout, "Nothing to reset in %s: the agent is not activated.\n", o.dir)
			return nil
		}
		var names []string
		for _, p := range removed {
			names = append(names, filepath.Base(p))
		}
		fmt.Fprintf(stdout, "Reset: removed %s from %s.\nThe agent is no longer activated; a running agent closes its ports. Activate again with dsa_control -a.\n", strings.Join(names, ", "), o.dir)
		return nil
	case "s":
		st, err := agent.ReadStatus(o.dir)
		if err != nil {
			return err
		}
		if o.output == "json" {
			writeJSON(stdout, st)
			return nil
		}
		printStatus(stdout, st)
		return nil
	}
	return bad("unknown mode %q", o.mode)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

type checkInOut struct {
	Seq           uint64   `json:"seq"`
	Manager       string   `json:"manager"`
	Accepted      bool     `json:"accepted"`
	TLSVersion    string   `json:"tls_version,omitempty"`
	PolicyID      string   `json:"policy_id,omitempty"`
	PolicySerial  int64    `json:"policy_serial,omitempty"`
	PolicyChanged bool     `json:"policy_changed"`
	Interval      int      `json:"interval_seconds,omitempty"`
	Commands      []string `json:"commands,omitempty"`
	Error         string   `json:"error,omitempty"`
}

func checkInJSON(res *agent.CheckInResult, err error) checkInOut {
	out := checkInOut{Seq: res.Seq, Manager: res.Manager, Accepted: res.Accepted, TLSVersion: res.TLSVersion, PolicyChanged: res.PolicyChanged,
		Interval: res.Response.IntervalSeconds, Commands: res.Response.Commands}
	if res.Policy != nil {
		out.PolicyID, out.PolicySerial = res.Policy.PolicyID, res.Policy.Serial
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

func printStatus(w io.Writer, st *agent.LocalStatus) {
	row := func(k, v string) { fmt.Fprintf(w, "%-17s %s\n", k+":", v) }
	row("State folder", st.Dir)
	if !st.Activated {
		row("Activated", "no — activate with dsa_control -a dsm://HOST:4120/ token:TOKEN")
		if st.PreboundCA != "" {
			row("Fleet CA", st.PreboundCA+" (ca.pem placed beforehand: activation will trust it)")
		}
		return
	}
	row("Activated", "yes")
	row("GUID", st.GUID)
	row("Manager", st.Manager)
	row("Fleet CA", st.CAFingerprint)
	hb := "never"
	if st.LastHeartbeat != "" {
		hb = st.LastHeartbeat
	}
	row("Last heartbeat", fmt.Sprintf("%s (seq %d)", hb, st.Seq))
	row("Negotiated TLS", orNone(st.NegotiatedTLS))
	if st.PolicyFingerprint == "" {
		row("Policy", "none yet")
	} else {
		row("Policy", fmt.Sprintf("%s, serial %d, fingerprint %s", orNone(st.PolicyID), st.PolicySerial, st.PolicyFingerprint))
		row("Direction", st.Direction)
	}
	relay := "no"
	if st.Relay {
		relay = "yes"
	}
	row("Relay", relay)
	if st.Listen != "" {
		row("Agent port", st.Listen)
	}
	if st.Legacy {
		row("Legacy simulator", "yes (the running agent speaks only old TLS versions)")
	}
	lastErr := "none"
	if st.LastError != "" {
		lastErr = st.LastError + " (" + st.LastErrorAt + ")"
	}
	row("Last error", lastErr)
}
