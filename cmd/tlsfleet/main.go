// Command tlsfleet is the Manager's binary: `tlsfleet manager` runs the Manager, `tlsfleet policy`
// explains the TLS policy of a Manager's install folder, `tlsfleet scan` enumerates what a TLS server
// accepts. `tlsfleet agent` is an alias of ds_agent, the agent's own (smaller) binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// errUsage marks errors that are the caller's fault; main exits 2 for them.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	code, msg := exitStatus(err)
	if msg != "" {
		fmt.Fprintln(os.Stderr, msg)
	}
	os.Exit(code)
}

// exitStatus maps run's error to the exit status and the line for stderr ("" for none): 2 for usage
// errors, tlsfleet scan's own statuses (scanExitCodes), 1 for any other error.
func exitStatus(err error) (int, string) {
	switch {
	case err == nil:
		return 0, ""
	case errors.Is(err, flag.ErrHelp):
		return 2, ""
	case errors.Is(err, errUsage):
		return 2, "tlsfleet: " + err.Error()
	}
	for _, s := range []struct {
		err  error
		code int
	}{{errNoTLS, 3}, {errFindings, 1}} {
		if errors.Is(err, s.err) {
			return s.code, "tlsfleet scan: " + strings.TrimPrefix(err.Error(), s.err.Error()+":\n  ")
		}
	}
	return 1, "tlsfleet: " + err.Error()
}

const usage = `tlsfleet — a TLS-enforcing security-fleet control plane

Usage:
  tlsfleet policy --dir DIR [--port N] [--json]   effective TLS policy of a Manager install folder
  tlsfleet scan [flags] HOST:PORT...              enumerate versions, suites, groups (like nmap ssl-enum-ciphers)
  tlsfleet manager --dir DIR [flags]              run the Manager (console/API 4119, agent channel 4120)
  tlsfleet agent --dir STATE [flags]              run an agent (4118; a relay on 4122 when its policy says so);
                                                  an alias of ds_agent, the agent hosts' own binary
  tlsfleet legacy-client --max-tls TLSv1 URL      legacy API client simulator (old TLS only)
  tlsfleet version                                print the version
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	switch args[0] {
	case "policy":
		return runPolicy(ctx, args[1:], stdout, stderr)
	case "scan":
		return runScan(ctx, args[1:], stdout, stderr)
	case "manager":
		return runManager(ctx, args[1:], stdout, stderr)
	case "agent":
		return runAgent(ctx, args[1:], stdout, stderr)
	case "legacy-client":
		return runLegacyClient(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "tlsfleet", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}
