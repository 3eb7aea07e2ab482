package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"tlsfleet/internal/install"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/manager"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/tlspolicy"
)

func runManager(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tlsfleet manager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o manager.Options
	fs.StringVar(&o.Dir, "dir", "", "the install folder (created on first start)")
	fs.IntVar(&o.ConsolePort, "console-port", 0, fmt.Sprintf("console and REST API port (default: configuration.properties, else %d)", tlspolicy.PortConsole))
	fs.IntVar(&o.HeartbeatPort, "heartbeat-port", 0, fmt.Sprintf("agent channel port (default: configuration.properties, else %d)", tlspolicy.PortAgentChannel))
	fs.StringVar(&o.Listen, "listen", "", "address to listen on (default: all interfaces)")
	fs.IntVar(&o.HeartbeatSeconds, "heartbeat-seconds", 0, "agents' heartbeat interval in seconds, overriding defaultHeartbeatPeriod (for tests and demonstrations)")
	con, ag := listener.DefaultLimits(tlspolicy.RoleConsole), listener.DefaultLimits(tlspolicy.RoleAgentChannel)
	fs.Var(listener.LimitFlag(&o.MaxConns), "max-conns", fmt.Sprintf("connections each port holds open at once, 1 to %d (default: configuration.properties' %s, else %d on the console port and %d on the agent channel)",
		listener.MaxLimit, install.KeyMaxConnections, con.Total, ag.Total))
	fs.Var(listener.LimitFlag(&o.MaxConnsPerAddress), "max-conns-per-address", fmt.Sprintf("connections one client address may hold on each port, 1 to --max-conns (default: %s, else %d and %d)",
		install.KeyMaxConnectionsPerAddress, con.PerAddress, ag.PerAddress))
	fs.BoolVar(&o.NewFleet, "new-fleet", false, "start although the install folder had agents and its fleet CA or database is gone: make a new CA or database (every agent must be activated again)")
	rsa := fs.Bool("rsa", false, "make the server certificate RSA-2048 instead of ECDSA P-256 (first start only)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.Dir == "" || fs.NArg() > 0 {
		return fmt.Errorf("%w: tlsfleet manager --dir DIR [--console-port N] [--heartbeat-port N] [--listen ADDR] [--max-conns N] [--max-conns-per-address N] [--rsa] [--new-fleet]", errUsage)
	}
	if o.MaxConns != 0 && o.MaxConnsPerAddress != 0 {
		// Refused before the install folder is touched; limits that involve configuration.properties are
		// checked by the Manager, before it opens the database.
		if _, err := con.Apply("each port", listener.Override{Value: o.MaxConns, Name: "--max-conns"},
			listener.Override{Value: o.MaxConnsPerAddress, Name: "--max-conns-per-address"}); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if *rsa {
		o.KeyType = pki.RSA2048
	}
	o.Version = version
	m, err := manager.Start(ctx, o)
	if err != nil {
		return err
	}
	host := o.Listen
	if host == "" {
		host = "localhost"
	}
	fmt.Fprintf(stdout, "tlsfleet Manager is running.\n  console and API: https://%s:%d/\n  agent channel:   https://%s:%d/\n  install folder:  %s\n",
		host, m.Folder().ConsolePort, host, m.Folder().HeartbeatPort, m.Dir())
	if m.InitialPasswordFile != "" {
		fmt.Fprintf(stdout, "First sign-in: user admin, one-time password in %s (readable by you only; delete it after use).\n", m.InitialPasswordFile)
	}
	fmt.Fprintf(stdout, "The browser will warn about the certificate: it is signed by this Manager's own CA (%s, SHA-256 %s).\n", pki.CAFile, m.CA().Fingerprint())
	fmt.Fprintf(stdout, "Change settings with: dsm_c --dir %s -action changesetting -name NAME -value VALUE\nStop with Ctrl-C.\n", m.Dir())
	<-ctx.Done()
	return m.Close()
}
