package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"tlsfleet/internal/tlspolicy"
)

func runPolicy(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tlsfleet policy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "the Manager's install folder (holds java.security and configuration.properties)")
	port := fs.Int("port", 0, fmt.Sprintf("show only this port (%d console, %d agent channel, %d relay, %d agent)",
		tlspolicy.PortConsole, tlspolicy.PortAgentChannel, tlspolicy.PortRelay, tlspolicy.PortAgent))
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	listeners := tlspolicy.ManagerListeners
	if *port != 0 {
		l, err := tlspolicy.ListenerForPort(*port)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		listeners = []tlspolicy.Listener{l}
	}
	layers, err := tlspolicy.LoadDir(*dir)
	if err != nil {
		return err
	}
	rep := tlspolicy.Report{Warnings: tlspolicy.GODEBUGWarnings(os.Getenv("GODEBUG"))}
	for _, l := range listeners {
		rep.Ports = append(rep.Ports, tlspolicy.NewPortReport(tlspolicy.Explain(l, layers)))
	}
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteText(stdout)
}
