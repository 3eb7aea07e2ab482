// Command ds_agent is the tlsfleet agent daemon, the binary for agent hosts: heartbeats to the
// Manager, the agent port 4118 and, when its policy says so, the relay port 4122.
//
//	ds_agent --dir STATE [--listen ADDR] [--relay-listen ADDR] [--activation-fingerprint SHA256 |
//	         --accept-any-activation] [--activation-manager dsm://HOST:4120/] [--legacy-max-tls TLSv1|TLSv1.1]
//	         [--report-version V] [--log-json]
//	ds_agent version
//
// It links the agent only, not the Manager, its database or console (deps_test.go checks), so it is
// about half tlsfleet's size; `tlsfleet agent` runs the same code. dsa_control activates it. It exits
// 0 once interrupted, 1 on failure and 2 on a usage error. Everything is in internal/agent/agentcmd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"tlsfleet/internal/agent/agentcmd"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := agentcmd.Main(ctx, version, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
