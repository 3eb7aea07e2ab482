// Command dsm_c is the Manager's command-line tool, with the syntax of the product help page:
//
//	dsm_c [--dir DIR] -action ACTION [-name N] [-value V] [-output json]
//
// The actions are changesetting, viewsetting, createapikey, tlsclients, exportdsmcert, the fleet's
// createactivationtoken, listcomputers, deactivate, reactivate, setrelay, createrelaygroup,
// listrelaygroups, assignrelaygroup, sendpolicy and publishbundle, and help; run `dsm_c -action help`
// for the details. Everything is in internal/dsmc.
package main

import (
	"context"
	"os"
	"os/signal"

	"tlsfleet/internal/dsmc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := dsmc.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
