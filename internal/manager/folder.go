package manager

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"strconv"

	"tlsfleet/internal/install"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

// The install folder under the Manager: one Manager per folder (an flock on install.LockFile), never a
// new fleet CA or database over a folder that had agents (install.FleetState.Check), and no write
// acknowledged once the folder or the database is gone from under the running Manager (Writable).

// prepareFolder locks the install folder and writes its files on first start; nothing else of the
// folder is touched before the lock is held.
func (m *Manager) prepareFolder() error {
	o := m.opts
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return fmt.Errorf("install folder %s: %w", o.Dir, err)
	}
	var err error
	if m.lock, err = install.LockFolder(o.Dir); err != nil {
		return err
	}
	cp, hp := cmp.Or(o.ConsolePort, DefaultConsolePort), cmp.Or(o.HeartbeatPort, DefaultAgentPort)
	created, err := install.InitFiles(o.Dir, cp, hp)
	if err != nil {
		return fmt.Errorf("install folder %s: %w", o.Dir, err)
	}
	m.FirstStart = created
	if m.folder, err = install.Open(o.Dir); err != nil {
		return err
	}
	if o.ConsolePort != 0 {
		m.folder.ConsolePort = o.ConsolePort
	}
	if o.HeartbeatPort != 0 {
		m.folder.HeartbeatPort = o.HeartbeatPort
	}
	m.limits, err = m.portLimits() // before the database or a port is touched
	return err
}

// openStore checks the fleet, opens the database, makes or loads the fleet CA and the server
// certificate, and makes the first admin (and, for tests and demonstrations, stores the heartbeat
// interval given by --heartbeat-seconds).
func (m *Manager) openStore(ctx context.Context) error {
	st, err := m.folder.ReadFleetState()
	if err != nil {
		return err
	}
	if !st.DBPresent {
		if err := st.Check(m.opts.NewFleet); err != nil {
			return err // before a new database is created
		}
	}
	db, err := store.OpenDatabase(ctx, m.folder.Database)
	if err != nil {
		return err
	}
	m.db = db
	if st.Computers, err = db.ComputerCount(ctx); err != nil {
		return err
	}
	if err := st.Check(m.opts.NewFleet); err != nil {
		return err
	}
	if err := m.loadCerts(); err != nil {
		return err
	}
	if st.CAFingerprint != m.ca.Fingerprint() && (st.Computers > 0 || st.Marker != "") {
		m.log.Warn("a new fleet CA was made (--new-fleet): every agent must be activated again", "dir", m.folder.Dir, "computers", st.Computers, "ca_sha256", m.ca.Fingerprint())
	}
	if st.Marker != "" && st.Marker != m.ca.Fingerprint() {
		// Only --new-fleet gets here: the marker named the old fleet's CA.
		if err := os.Remove(m.folder.Path(install.FleetMarkerFile)); err != nil {
			return err
		}
	}
	if st.Computers > 0 {
		m.markFleet()
	}
	if m.ident, err = m.folder.Pin(); err != nil {
		return err
	}
	if err = m.bootstrapAdmin(ctx); err == nil && m.opts.HeartbeatSeconds > 0 {
		_, _, err = m.db.SetSetting(ctx, settings.HeartbeatSeconds, strconv.Itoa(m.opts.HeartbeatSeconds), "tlsfleet manager --heartbeat-seconds")
	}
	return err
}

// loadCerts loads or makes the fleet CA and the server certificate.
func (m *Manager) loadCerts() error {
	var err error
	if m.ca, err = pki.LoadOrCreateCA(m.folder.Dir); err != nil {
		return err
	}
	hosts := []string{}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	if m.opts.Listen != "" {
		hosts = append(hosts, m.opts.Listen)
	}
	cert, err := m.ca.LoadOrCreateServer(m.folder.Dir, m.opts.KeyType, hosts)
	if err != nil {
		return err
	}
	if cert.Leaf.CheckSignatureFrom(m.ca.Cert) != nil {
		if !m.opts.NewFleet {
			return fmt.Errorf("%s is not signed by the fleet CA %s: agents would refuse it; put back the CA that signed it, or start with %s to make a new certificate from this CA",
				m.folder.Path(pki.ServerFile), m.folder.Path(pki.CAFile), install.NewFleetFlag)
		}
		sc, err := m.ca.RotateServer(m.folder.Dir, m.opts.KeyType)
		if err == nil {
			err = sc.Write(m.folder.Dir)
		}
		if err != nil {
			return fmt.Errorf("a manager certificate from the new fleet CA: %w", err)
		}
		cert = sc.TLS
	}
	m.cert.set(cert)
	return nil
}

// markFleet writes the fleet marker once the folder has agents (a failure is logged: the agent is
// activated all the same, and the next start writes it).
func (m *Manager) markFleet() {
	if m.marked.Load() {
		return
	}
	if err := m.folder.MarkFleet(m.ca.Fingerprint()); err != nil {
		m.log.Error("the fleet marker could not be written", "file", m.folder.Path(install.FleetMarkerFile), "err", err)
		return
	}
	m.marked.Store(true)
}

// Writable says why the Manager must not take changes now (its install folder or database was removed
// or replaced under it), or nil.
func (m *Manager) Writable() error { return m.ident.Check() }

// checkHealth logs when the install folder goes missing or comes back, and reports whether it is in
// place; the watch loop calls it at every poll.
func (m *Manager) checkHealth() bool {
	err := m.Writable()
	m.mu.Lock()
	was := m.healthErr
	m.healthErr = ""
	if err != nil {
		m.healthErr = err.Error()
	}
	m.mu.Unlock()
	switch {
	case err != nil && was == "":
		m.log.Error("install folder lost: the Manager reports unhealthy and refuses changes", "err", err)
	case err == nil && was != "":
		m.log.Info("install folder back in place: the Manager takes changes again", "dir", m.folder.Dir)
	}
	return err == nil
}
