package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"tlsfleet/internal/install"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/tlspolicy"
)

func runPolicy(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tlsfleet policy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "the Manager's install folder (holds java.security, configuration.properties and manager.pem)")
	port := fs.Int("port", 0, fmt.Sprintf("show only this port (the install's console and agent-channel ports, by default %d and %d; %d relay, %d agent)",
		tlspolicy.PortConsole, tlspolicy.PortAgentChannel, tlspolicy.PortRelay, tlspolicy.PortAgent))
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	layers, err := tlspolicy.LoadDir(*dir)
	if err != nil {
		return err
	}
	listeners, err := installListeners(*dir, layers.Config != nil)
	if err != nil {
		return err
	}
	if *port != 0 {
		l, err := tlspolicy.ListenerForPort(*port, listeners)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		listeners = []tlspolicy.Listener{l}
	}
	rep := tlspolicy.Report{Warnings: tlspolicy.GODEBUGWarnings(os.Getenv("GODEBUG"))}
	if layers.Cert, rep.Certificate, err = installCert(*dir); err != nil {
		return err
	}
	var lockouts []error
	for _, l := range listeners {
		ex := tlspolicy.Explain(l, layers)
		rep.Ports = append(rep.Ports, tlspolicy.NewPortReport(ex))
		if err := ex.LockOut(); err != nil {
			lockouts = append(lockouts, err)
		}
	}
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	// The Manager would refuse this policy on these ports (it keeps the last good one): exit non-zero
	// with the text it logs.
	return errors.Join(lockouts...)
}

// installListeners returns the Manager's two listeners with the ports the install's
// configuration.properties gives them (port=, managerPort=), or the default ports without the file.
func installListeners(dir string, hasConfig bool) ([]tlspolicy.Listener, error) {
	if !hasConfig {
		return tlspolicy.ManagerListeners, nil
	}
	f, err := install.Open(dir)
	if err != nil {
		return nil, err
	}
	return []tlspolicy.Listener{{Port: f.ConsolePort, Role: tlspolicy.RoleConsole}, {Port: f.HeartbeatPort, Role: tlspolicy.RoleAgentChannel}}, nil
}

// installCert describes the Manager's certificate (manager.pem) and says where it came from; without the
// file, the key a new install creates (ECDSA P-256) is assumed.
func installCert(dir string) (tlspolicy.CertInfo, string, error) {
	path := filepath.Join(dir, pki.ServerFile)
	ci, err := tlspolicy.LoadCertFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ci = tlspolicy.DefaultCert
		return ci, fmt.Sprintf("%s (assumed: %s does not exist yet; `tlsfleet manager` creates an ECDSA P-256 certificate there on first start, RSA 2048 with --rsa)", ci, path), nil
	case err != nil:
		return ci, "", err
	}
	return ci, fmt.Sprintf("%s, %s key of %d bits, signed %s", path, ci.KeyAlgorithm, ci.KeyBits, ci.SignatureAlgorithm), nil
}
