package main

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

const agentUsage = `tlsfleet agent --dir STATE [flags] — run the agent (activate it first: dsa_control -a)

  --dir STATE              the agent's state folder (required)
  --listen ADDR            the agent port, where the Manager pushes policies (default :4118; closed while
                           the policy says agent-initiated)
  --relay-listen ADDR      the relay port when the policy makes this agent a relay (default :PORT of the policy)
  --legacy-max-tls V       legacy simulator: the agent's client speaks at most V (TLSv1 or TLSv1.1), as agents
                           from before TLS 1.2 did, reports Legacy and, unless --report-version says otherwise,
                           version 9.6.0; every log line says "legacy simulator"
  --report-version V       the agent version reported to the Manager (default 1.0.0)
  --max-conns N            connections each of the agent's ports holds open at once, 1 to 1000000
                           (default 256 on the agent port, 16384 on the relay port)
  --max-conns-per-address N
                           connections one client address may hold on each port, at most --max-conns
                           (default 64 on the agent port, 4096 on the relay port: agents behind one NAT)
  --log-json               log JSON lines instead of text

It runs until interrupted; the log goes to stderr.
`

// runAgent runs the agent until ctx ends.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tlsfleet agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, agentUsage) }
	var o agent.Options
	fs.StringVar(&o.Dir, "dir", "", "the agent's state folder")
	fs.StringVar(&o.Listen, "listen", "", "the agent port's address (default :4118)")
	fs.StringVar(&o.RelayListen, "relay-listen", "", "the relay port's address (default :PORT of the policy)")
	fs.StringVar(&o.LegacyMaxTLS, "legacy-max-tls", "", "legacy simulator: speak at most this TLS version (TLSv1 or TLSv1.1)")
	fs.StringVar(&o.ReportVersion, "report-version", "", "the agent version to report")
	fs.StringVar(&o.ActivationFingerprint, "activation-fingerprint", "", "let a Manager whose fleet CA has this SHA-256 activate this agent (dsm_c addcomputer -activate)")
	fs.BoolVar(&o.AcceptAnyActivation, "accept-any-activation", false, "let the first Manager that offers activate this agent (trust on first use)")
	fs.Var(listener.LimitFlag(&o.MaxConns), "max-conns", "connections each port holds open at once")
	fs.Var(listener.LimitFlag(&o.MaxConnsPerAddress), "max-conns-per-address", "connections one client address may hold on each port")
	logJSON := fs.Bool("log-json", false, "log JSON lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.Dir == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, agentUsage)
		return fmt.Errorf("%w: tlsfleet agent --dir STATE [--listen ADDR] [--relay-listen ADDR] [--legacy-max-tls TLSv1|TLSv1.1] [--report-version V]", errUsage)
	}
	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if *logJSON {
		h = slog.NewJSONHandler(stderr, nil)
	}
	o.Logger = slog.New(h)
	a, err := agent.Start(ctx, o)
	if errors.Is(err, agent.ErrUsage) {
		return fmt.Errorf("%w: %s", errUsage, strings.TrimPrefix(err.Error(), agent.ErrUsage.Error()+": "))
	}
	if err != nil {
		return err
	}
	what := "tlsfleet agent"
	if o.LegacyMaxTLS != "" {
		what = "tlsfleet agent (legacy simulator, at most " + o.LegacyMaxTLS + ")"
	}
	if guid := a.GUID(); guid != "" {
		st, _ := agent.ReadStatus(o.Dir)
		listen := a.AgentAddr()
		if listen == "" {
			listen = "closed (agent-initiated)"
		}
		fmt.Fprintf(stdout, "%s is running.\n  GUID:          %s\n  Manager:       %s\n  agent port:    %s\n  state folder:  %s\nStop with Ctrl-C.\n",
			what, guid, st.Manager, listen, o.Dir)
	} else {
		fmt.Fprintf(stdout, "%s is running, not activated yet: it waits for dsa_control --dir %s -a dsm://HOST:4120/ token:TOKEN\n", what, o.Dir)
	}
	<-ctx.Done()
	return a.Close()
}
