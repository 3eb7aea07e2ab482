package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"tlsfleet/internal/pki"
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
	if layers.Cert, err = installCert(*dir); err != nil {
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

// installCert describes the install's own manager.pem (the zero CertInfo, tlspolicy's default ECDSA
// P-256, when the folder has none yet).
func installCert(dir string) (tlspolicy.CertInfo, error) {
	c, err := pki.ReadCertFile(filepath.Join(dir, pki.ServerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return tlspolicy.CertInfo{}, nil
	}
	if err != nil {
		return tlspolicy.CertInfo{}, err
	}
	return tlspolicy.CertInfoOf(tls.Certificate{Certificate: [][]byte{c.Raw}, Leaf: c})
}
