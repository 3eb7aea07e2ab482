package manager

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"

	"tlsfleet/internal/listener"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/tlspolicy"
)

// The Manager's own certificate changes without a restart (dsm_c -action rotatecert, POST
// /api/managercert/rotate): the listeners and the pusher read the current one at every handshake. A new
// key type changes the suites a port can offer (ECDHE_RSA or ECDHE_ECDSA), so a port's policy server is
// rebuilt for the new certificate and swapped whole. Agents pin the fleet CA, not this leaf.

// managerCert is the certificate in force.
type managerCert struct {
	p atomic.Pointer[tls.Certificate]
}

func (c *managerCert) set(cert tls.Certificate) { c.p.Store(&cert) }

func (c *managerCert) get() tls.Certificate { return *c.p.Load() }

// clientCert is the pusher's tls.Config.GetClientCertificate: calls to agents' 4118 present the
// current certificate.
func (c *managerCert) clientCert(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return c.p.Load(), nil
}

// tlsPort is one port's policy server, swapped whole when the certificate changes; its TLSConfig
// reads the one in force at every handshake.
type tlsPort struct {
	opts tlspolicy.ServerOptions // without the certificate
	cur  atomic.Pointer[portState]
}

type portState struct {
	srv *tlspolicy.Server
	cfg *tls.Config // srv.TLSConfig(), made once
}

func newTLSPort(p *tlspolicy.Policy, cert tls.Certificate, opts tlspolicy.ServerOptions) (*tlsPort, error) {
	t := &tlsPort{opts: opts}
	st, err := t.build(p, cert)
	if err != nil {
		return nil, err
	}
	t.cur.Store(st)
	return t, nil
}

func (t *tlsPort) build(p *tlspolicy.Policy, cert tls.Certificate) (*portState, error) {
	o := t.opts
	o.Certificate = cert
	srv, err := tlspolicy.NewServer(p, o)
	if err != nil {
		return nil, err
	}
	return &portState{srv: srv, cfg: srv.TLSConfig()}, nil
}

// Policy, Cert and Update are the policy server's in force.
func (t *tlsPort) Policy() *tlspolicy.Policy        { return t.cur.Load().srv.Policy() }
func (t *tlsPort) Cert() tlspolicy.CertInfo         { return t.cur.Load().srv.Cert() }
func (t *tlsPort) Update(p *tlspolicy.Policy) error { return t.cur.Load().srv.Update(p) }

// TLSConfig is the listener's configuration: each handshake goes to the policy server in force.
func (t *tlsPort) TLSConfig() *tls.Config {
	first := t.cur.Load().cfg
	return &tls.Config{
		MinVersion:   tls.VersionTLS10,
		Certificates: first.Certificates,
		NextProtos:   first.NextProtos,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load().cfg.GetConfigForClient(hello)
		},
	}
}

// loadCert reads the server certificate from the install folder and reports whether it is not the
// one in force. A pair that does not load (a rotation between its key and its certificate) keeps the
// one in force; the next change of the files tries again.
func (m *Manager) loadCert() (tls.Certificate, bool, error) {
	cur := m.cert.get()
	cert, err := m.ca.LoadServer(m.folder.Dir)
	if err != nil {
		return cur, false, err
	}
	if cert.Leaf.CheckSignatureFrom(m.ca.Cert) != nil {
		return cur, false, fmt.Errorf("%s is not signed by the fleet CA (%s): agents would refuse it; make a new one with dsm_c -action rotatecert", m.folder.Path(pki.ServerFile), pki.CAFile)
	}
	return cert, !bytes.Equal(cert.Certificate[0], cur.Certificate[0]), nil
}

// swapCert puts a new certificate in force on both ports and in the pusher, with policies computed
// for it; a port that could complete no handshake with it keeps everything as it was. The caller
// holds m.mu.
func (m *Manager) swapCert(cert tls.Certificate, layers tlspolicy.Layers) error {
	info, err := tlspolicy.CertInfoOf(cert)
	if err != nil {
		return err
	}
	layers.Cert = info
	ports := []*tlsPort{m.console, m.agents}
	listeners := []tlspolicy.Listener{m.consoleListener(), m.agentListener()}
	if err := ops.CheckPortsServe(listeners, layers); err != nil {
		return err
	}
	next := make([]*portState, len(ports))
	for i, p := range ports {
		if next[i], err = p.build(tlspolicy.Effective(listeners[i], layers), cert); err != nil {
			return err
		}
	}
	for i, p := range ports {
		p.cur.Store(next[i])
	}
	m.cert.set(cert)
	m.log.Info("manager certificate applied", "key", info.String(), "sha256", pki.Fingerprint(cert.Leaf), "not_after", cert.Leaf.NotAfter)
	for _, ln := range []*listener.Listener{m.consoleLn, m.agentLn} {
		if ln != nil {
			ln.Enforce() // the policies computed for the new key may forbid what open connections negotiated
		}
	}
	return nil
}

// certInForce says why the certificate in the install folder is not the one the ports serve (nil when
// it is): a rotation is done only once the running Manager applied it.
func (m *Manager) certInForce() error {
	m.mu.Lock()
	why := m.certErr
	m.mu.Unlock()
	cur := m.cert.get()
	disk, err := pki.ReadCertFile(m.folder.Path(pki.ServerFile))
	switch {
	case err != nil:
		return err
	case bytes.Equal(disk.Raw, cur.Certificate[0]):
		return nil
	case why == "":
		why = "the ports still serve the previous certificate"
	}
	return errors.New(why)
}
