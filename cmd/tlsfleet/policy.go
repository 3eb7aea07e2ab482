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
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	folder, err := openInstall(*dir, layers.Config != nil)
	if err != nil {
		return err
	}
	listeners := tlspolicy.ManagerListeners
	if folder != nil {
		listeners = tlspolicy.ManagerListenersOn(folder.ConsolePort, folder.HeartbeatPort)
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
	var conn *store.ConnTLS
	if layers.Settings, rep.SettingsSource, conn, err = installSettings(ctx, *dir, folder); err != nil {
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
	if conn != nil {
		rep.DatabaseTLS, rep.DatabaseBlocker = conn.String(), conn.Blocker(lowestVersion(rep.Ports))
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

// openInstall reads the install's configuration.properties for its ports (port=, managerPort=) and
// database; nil when the folder has none yet (the default ports apply).
func openInstall(dir string, hasConfig bool) (*install.Folder, error) {
	if !hasConfig {
		return nil, nil
	}
	return install.Open(dir)
}

// installSettings reads the fleet settings from the install's database, as the running Manager does;
// without a database (a folder the Manager never started in) the defaults apply, and the report says so.
// It also returns the database connection's TLS state (nil without a database).
func installSettings(ctx context.Context, dir string, folder *install.Folder) (tlspolicy.Settings, string, *store.ConnTLS, error) {
	if folder == nil {
		return tlspolicy.DefaultSettings(), "the defaults (no configuration.properties, so no database)", nil, nil
	}
	shown := folder.Database.String()
	if folder.DBPath != "" {
		shown = folder.DBPath // as the caller named the folder
		if rel, err := filepath.Rel(folder.Dir, folder.DBPath); err == nil && filepath.IsLocal(rel) {
			shown = filepath.Join(dir, rel)
		}
		if _, err := os.Stat(folder.DBPath); errors.Is(err, fs.ErrNotExist) {
			return tlspolicy.DefaultSettings(), fmt.Sprintf("the defaults (%s does not exist yet)", shown), nil, nil
		}
	}
	db, err := store.OpenDatabase(ctx, folder.Database)
	if err != nil {
		return tlspolicy.Settings{}, "", nil, err
	}
	defer db.Close()
	vals, err := db.Settings(ctx)
	if err != nil {
		return tlspolicy.Settings{}, "", nil, fmt.Errorf("reading the settings from %s: %w", shown, err)
	}
	conn := db.ConnTLS()
	return settings.Values(vals).Policy(), shown, &conn, nil
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

// lowestVersion is the oldest TLS version any reported port accepts (TLSv1.2 when none accepts any):
// the minimum the Manager enforces, which its database connection must meet too.
func lowestVersion(ports []tlspolicy.PortReport) tlspolicy.Version {
	low := tlspolicy.TLSv1_2
	found := false
	for _, p := range ports {
		for _, name := range p.Versions {
			if v, err := tlspolicy.ParseVersion(name); err == nil && (!found || v < low) {
				low, found = v, true
			}
		}
	}
	return low
}
