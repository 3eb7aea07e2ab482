package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
	"tlsfleet/internal/install"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/tlspolicy"
)

// Policy watching: the Manager re-reads java.security, configuration.properties and the settings when
// any of them changes and swaps the listeners' policies without a restart.

// loadLayers reads the files and the settings.
func (m *Manager) loadLayers(ctx context.Context) (tlspolicy.Layers, error) {
	var l tlspolicy.Layers
	js, err := tlspolicy.LoadJavaSecurity(m.folder.Path(install.JavaSecurityFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return l, err
	case !js.Defined:
		// An empty or cut file (an editor mid-write, a full disk) must not open every version: keep the
		// policy in force until the file says what it means.
		return l, fmt.Errorf("%s defines no %s; write the line (jdk.tls.disabledAlgorithms= with nothing after it disables nothing)", js.Path, tlspolicy.DisabledAlgorithmsKey)
	default:
		l.JavaSecurity = js
	}
	cp, err := tlspolicy.LoadConfigProperties(m.folder.Path(install.ConfigFile))
	if err != nil {
		return l, err
	}
	l.Config = cp
	vals, err := m.db.Settings(ctx)
	if err != nil {
		return l, err
	}
	l.Settings = settings.Values(vals).Policy()
	return l, nil
}

// stamp identifies the current contents of the watched files.
func (m *Manager) stamp() string {
	s := ""
	for _, f := range []string{install.JavaSecurityFile, install.ConfigFile, pki.ServerFile, pki.ServerKeyFile} {
		st, err := os.Stat(m.folder.Path(f))
		if err != nil {
			s += f + ":missing;"
			continue
		}
		s += fmt.Sprintf("%s:%d:%d;", f, st.Size(), st.ModTime().UnixNano())
	}
	return s
}

// watch re-applies the policy when a file or the settings change, and prunes old handshake counts.
func (m *Manager) watch(ctx context.Context) {
	pending := ""
	lastPrune := time.Time{}
	t := time.NewTicker(m.opts.PollInterval)
	defer t.Stop()
	changes := m.opts.Notifier.Changes(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changes: // another node or process changed the database: read it now
		}
		if time.Since(lastPrune) > pruneEvery {
			lastPrune = time.Now()
			if n, err := m.db.PruneObservations(ctx, time.Now().Add(-TelemetryRetention).UTC().Format(time.RFC3339Nano)); err == nil && n > 0 {
				m.log.Info("old handshake counts removed", "rows", n, "retention", TelemetryRetention)
			}
		}
		if !m.checkHealth() {
			m.polls.Add(1)
			continue // the files are gone: keep the policy in force
		}
		st := m.stamp()
		ver, err := m.db.SettingsVersion(ctx)
		if err != nil {
			m.log.Warn("reading the settings version", "err", err)
			continue
		}
		if st == m.fileStamp && ver == m.settingsVer {
			m.polls.Add(1)
			continue
		}
		if st != m.fileStamp && st != pending {
			// A file changed: wait one more poll for it to settle (an editor may still be writing it).
			pending = st
			m.polls.Add(1)
			continue
		}
		settingsChanged := ver != m.settingsVer
		m.fileStamp, m.settingsVer = st, ver
		m.Reload(ctx)
		if settingsChanged {
			m.release(ctx)
		}
		m.polls.Add(1)
	}
}

// Reload recomputes both listeners' policies now, and puts a new server certificate in force when
// manager.pem changed. A malformed file leaves the policy in force as it was, and the error is logged
// and shown by /api/policy; so does, port by port, a policy under which the port could complete no
// handshake (the last good policy stays on that port).
func (m *Manager) Reload(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	layers, err := m.loadLayers(ctx)
	if err != nil {
		m.policyErr = err.Error()
		m.certErr = "the TLS policy files have an error, so no policy can be computed for a new certificate: " + err.Error()
		m.log.Error("TLS policy not changed: the new configuration has an error", "err", err)
		return
	}
	m.policyErr, m.certErr = "", ""
	switch cert, changed, err := m.loadCert(); {
	case err != nil:
		m.certErr = err.Error()
		m.log.Error("manager certificate not changed: the one in the install folder does not load", "file", m.folder.Path(pki.ServerFile), "err", err)
	case changed:
		if err := m.swapCert(cert, layers); err != nil {
			m.certErr = err.Error()
			m.log.Error("manager certificate not changed", "file", m.folder.Path(pki.ServerFile), "err", err)
		} else {
			return // both ports got policies computed for it
		}
	}
	layers.Cert = m.console.Cert()
	for _, x := range []struct {
		srv *tlsPort
		l   tlspolicy.Listener
		ln  *listener.Listener
	}{{m.console, m.consoleListener(), m.consoleLn}, {m.agents, m.agentListener(), m.agentLn}} {
		ex, err := m.explain(x.l, layers)
		if err != nil {
			m.policyErr = strings.TrimPrefix(m.policyErr+"\n"+err.Error(), "\n")
			m.log.Error("TLS policy not applied: the port keeps its last good policy", "port", x.l.Port, "files", m.policyFiles(), "err", err)
			continue
		}
		if old := x.srv.Policy(); ex.Policy.MinVersion() < old.MinVersion() && len(ex.Policy.Versions) > 0 {
			m.log.Warn("TLS policy weakened: the port now accepts an older TLS version", "port", x.l.Port, "was", old.MinVersion().String(), "now", ex.Policy.MinVersion().String())
		}
		if err := x.srv.Update(ex.Policy); err != nil {
			m.log.Error("TLS policy update", "port", x.l.Port, "err", err)
			continue
		}
		vs := ""
		for _, v := range ex.Policy.Versions {
			vs += v.String() + " "
		}
		m.log.Info("TLS policy applied", "port", x.l.Port, "versions", vs, "suites", len(ex.Policy.Suites))
		if x.ln != nil {
			x.ln.Enforce() // connections negotiated under the old policy: it logs how many it closed
		}
	}
}

// explain computes a port's policy; one under which the port could complete no handshake is an error
// (tlspolicy.LockOutError, the text `tlsfleet policy` exits with).
func (m *Manager) explain(l tlspolicy.Listener, layers tlspolicy.Layers) (*tlspolicy.Explanation, error) {
	ex := tlspolicy.Explain(l, layers)
	if err := ex.LockOut(); err != nil {
		return nil, err
	}
	return ex, nil
}

// policyFiles are the files the policy is read from, for log lines.
func (m *Manager) policyFiles() string {
	return m.folder.Path(install.JavaSecurityFile) + ", " + m.folder.Path(install.ConfigFile)
}
