// Package agentcmd is the agent daemon's command line, the one copy behind ds_agent (the agent's own
// binary) and its alias `tlsfleet agent`: the flags, the usage text made from them, the startup lines
// and the exit statuses. Like internal/agent it never links the Manager, its database or console
// (cmd/ds_agent/deps_test.go checks).
//
// A new flag is one line in Options.Flags: its usage line is made from its help text.
package agentcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"tlsfleet/internal/agent"
	"tlsfleet/internal/listener"
)

// Binary is the agent daemon's own binary; `tlsfleet agent` runs the same code.
const Binary = "ds_agent"

// ErrUsage marks command lines that a different command line fixes; the binaries exit 2 for it. It is
// agent.ErrUsage, so agent.Start's complaints about its options are usage errors too.
var ErrUsage = agent.ErrUsage

// Options are the agent daemon's command-line options.
type Options struct {
	// Agent is what agent.Start takes; Run sets its Logger from LogJSON.
	Agent agent.Options
	// LogJSON logs JSON lines instead of text.
	LogJSON bool
}

// Flags defines the daemon's flags on fs, filling o. A back-quoted word in a help text is the flag's
// placeholder in the usage (flag.UnquoteUsage).
func (o *Options) Flags(fs *flag.FlagSet) {
	a := &o.Agent
	fs.StringVar(&a.Dir, "dir", "", "the agent's state folder `STATE` (required)")
	fs.StringVar(&a.Listen, "listen", "", "the agent port `ADDR`, where the Manager pushes policies and offers activations "+
		"(default :4118; closed while the policy says agent-initiated)")
	fs.StringVar(&a.RelayListen, "relay-listen", "", "the relay port `ADDR` when the policy makes this agent a relay (default :PORT of the policy)")
	fs.StringVar(&a.LegacyMaxTLS, "legacy-max-tls", "", "legacy simulator: the agent's client speaks at most `V` (TLSv1 or TLSv1.1), "+
		"as agents from before TLS 1.2 did, reports Legacy and, unless --report-version says otherwise, version "+
		agent.LegacyReportVersion+`; every log line says "legacy simulator"`)
	fs.StringVar(&a.ReportVersion, "report-version", "", "the agent version `V` reported to the Manager (default "+agent.Version+")")
	fs.StringVar(&a.ActivationFingerprint, "activation-fingerprint", "", "let a Manager whose fleet CA has this SHA-256 `FINGERPRINT` "+
		"activate this agent (dsm_c -action addcomputer -activate; a ca.pem placed in STATE does the same)")
	fs.StringVar(&a.ActivationManager, "activation-manager", "", "the Manager `dsm://HOST:4120/` whose offers this agent takes "+
		"(others are refused; default: the host that offers, at the offered port)")
	fs.BoolVar(&a.AcceptAnyActivation, "accept-any-activation", false, "let the first Manager that offers activate this agent "+
		"(trust on first use: only on a network you trust)")
	fs.Var(listener.LimitFlag(&a.MaxConns), "max-conns", "connections `N` each of the agent's ports holds open at once, 1 to 1000000 "+
		"(default 256 on the agent port, 16384 on the relay port)")
	fs.Var(listener.LimitFlag(&a.MaxConnsPerAddress), "max-conns-per-address", "connections `N` one client address may hold on each port, "+
		"at most --max-conns (default 64 on the agent port, 4096 on the relay port: agents behind one NAT)")
	fs.BoolVar(&o.LogJSON, "log-json", false, "log JSON lines instead of text")
}

// newFlagSet is the named command's flag set, filling o; errors and --help are the caller's to print.
func newFlagSet(name string, o *Options) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	o.Flags(fs)
	return fs
}

// Usage is the usage text of the agent daemon run as name (Binary, or "tlsfleet agent" for the alias).
func Usage(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s --dir STATE [flags] — run the agent until interrupted (activate it first:\n"+
		"  dsa_control --dir STATE -a dsm://HOST:4120/ token:TOKEN, or let dsm_c -action addcomputer -activate do it)\n", name)
	if name != Binary {
		fmt.Fprintf(&b, "%s is an alias of %s, the agent's own binary (no Manager, database or console in it):\n"+
			"install %s on agent hosts.\n", name, Binary, Binary)
	}
	b.WriteString("\n")
	var o Options
	fs := newFlagSet(name, &o)
	type line struct{ left, help string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		arg, help := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if arg != "" {
			left += " " + arg
		}
		width = max(width, len(left))
		lines = append(lines, line{left, help})
	})
	for _, l := range lines {
		indent := 2 + width + 2
		b.WriteString("  " + l.left + strings.Repeat(" ", width-len(l.left)+2))
		b.WriteString(strings.Join(wrap(l.help, 108-indent), "\n"+strings.Repeat(" ", indent)) + "\n")
	}
	b.WriteString("\nThe log goes to stderr. Exit status: 0 once interrupted, 1 on failure, 2 on a usage error.\n")
	if name == Binary {
		b.WriteString(Binary + " version prints the version.\n")
	}
	return b.String()
}

// wrap breaks s into lines of at most width characters, at spaces.
func wrap(s string, width int) []string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(s) {
		switch {
		case cur == "":
			cur = w
		case len(cur)+1+len(w) > width:
			lines = append(lines, cur)
			cur = w
		default:
			cur += " " + w
		}
	}
	return append(lines, cur)
}

// Parse parses the agent daemon's arguments; name (Binary or "tlsfleet agent") is the command in
// messages. It returns flag.ErrHelp for --help and ErrUsage for a bad command line, having printed
// the usage to stderr for both.
func Parse(name string, args []string, stderr io.Writer) (Options, error) {
	var o Options
	fs := newFlagSet(name, &o)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stderr, Usage(name))
		return o, err
	case err != nil:
		err = fmt.Errorf("%w: %v (%s --help lists the flags)", ErrUsage, err, name)
	case fs.NArg() > 0:
		err = fmt.Errorf("%w: %s takes flags only, not %q: %s --dir STATE [flags]", ErrUsage, name, fs.Arg(0), name)
	case o.Agent.Dir == "":
		err = fmt.Errorf("%w: %s needs --dir STATE, the agent's state folder (the one dsa_control --dir STATE -a activated)", ErrUsage, name)
	default:
		return o, nil
	}
	fmt.Fprint(stderr, Usage(name))
	return o, err
}

// Run runs the agent daemon named name (Binary, or "tlsfleet agent") with args until ctx ends: it
// prints what it runs as to stdout and logs to stderr.
func Run(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	o, err := Parse(name, args, stderr)
	if err != nil {
		return err
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if o.LogJSON {
		h = slog.NewJSONHandler(stderr, nil)
	}
	o.Agent.Logger = slog.New(h)
	a, err := agent.Start(ctx, o.Agent)
	if err != nil {
		return err
	}
	what := name
	if o.Agent.LegacyMaxTLS != "" {
		what = name + " (legacy simulator, at most " + o.Agent.LegacyMaxTLS + ")"
	}
	dir := o.Agent.Dir
	if guid := a.GUID(); guid != "" {
		st, _ := agent.ReadStatus(dir)
		listen := a.AgentAddr()
		if listen == "" {
			listen = "closed (agent-initiated)"
		}
		fmt.Fprintf(stdout, "%s is running.\n  GUID:          %s\n  Manager:       %s\n  agent port:    %s\n  state folder:  %s\nStop with Ctrl-C.\n",
			what, guid, st.Manager, listen, dir)
	} else {
		fmt.Fprintf(stdout, "%s is running, not activated yet: it waits for dsa_control --dir %s -a dsm://HOST:4120/ token:TOKEN\n", what, dir)
	}
	<-ctx.Done()
	return a.Close()
}

// Main is ds_agent's command line: `ds_agent version` (or --version), `ds_agent help`, or Run. It
// returns the exit status: 0, 1 on failure, 2 on a usage error or --help.
func Main(ctx context.Context, version string, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 {
		switch args[0] {
		case "version", "--version", "-version":
			fmt.Fprintf(stdout, "%s %s (reports agent version %s)\n", Binary, version, agent.Version)
			return 0
		case "help":
			fmt.Fprint(stdout, Usage(Binary))
			return 0
		}
	}
	err := Run(ctx, Binary, args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	case errors.Is(err, ErrUsage):
		fmt.Fprintln(stderr, Binary+":", err)
		return 2
	default:
		fmt.Fprintln(stderr, Binary+":", err)
		return 1
	}
}
