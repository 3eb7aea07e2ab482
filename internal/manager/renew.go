package manager

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/store"
)

// Renewal: an agent asks, over mutual TLS with its current certificate, for a new certificate for a new
// key (POST PathRenew). The old certificate stays valid until the agent heartbeats with the new one, so
// a renewal whose answer never reached the agent's disk costs nothing: the agent goes on with its old
// certificate and renews again (the unused certificate is superseded then).

// ownsCert reports whether a verified client certificate is the computer's current one, or the one it
// renewed with while the renewal is unconfirmed. Computers recorded without a serial (older tests,
// imports) are not checked.
func ownsCert(c store.Computer, leaf *x509.Certificate) bool {
	sn := leaf.SerialNumber.Text(16)
	return c.CertSerial == "" || sn == c.CertSerial || sn == c.CertPrevSerial
}

// renew issues a renewed certificate. Bad input (no PEM CSR, a bad signature, a weak or unknown key, a
// CommonName other than the GUID) gets a 400 and stores nothing.
func (m *Manager) renew(w http.ResponseWriter, r *http.Request) {
	if err := m.Writable(); err != nil {
		// A certificate issued into a database that is no longer the Manager's would strand the agent.
		writeError(w, http.StatusServiceUnavailable, "the Manager cannot renew certificates now (the current one stays valid; retried later): %v", err)
		return
	}
	if _, ok := m.agentIdentity(w, r); !ok {
		return
	}
	leaf := r.TLS.PeerCertificates[0]
	guid, presented := leaf.Subject.CommonName, leaf.SerialNumber.Text(16)
	var req fleetapi.RenewRequest
	if err := fleetapi.DecodeJSON(w, r, 64<<10, &req); err != nil {
		writeError(w, http.StatusBadRequest, "renewal request: %v", err)
		return
	}
	csr, err := renewalCSR(req.CSR, guid)
	if err != nil {
		writeError(w, http.StatusBadRequest, "renewal request: %v", err)
		return
	}
	var cert *x509.Certificate
	err = m.db.Renew(r.Context(), guid, presented, func() (string, string, error) {
		crt, err := m.ca.IssueAgent(csr.Raw, guid)
		if err != nil {
			return "", "", err
		}
		cert = crt
		return crt.SerialNumber.Text(16), crt.NotAfter.UTC().Format(time.RFC3339), nil
	})
	switch {
	case errors.Is(err, pki.ErrWeakKey):
		writeError(w, http.StatusBadRequest, "renewal request: csr: %v", err)
		return
	case errors.Is(err, store.ErrCertNotCurrent):
		writeError(w, http.StatusForbidden, "renewal refused: %v", err)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "renewal: %v", err)
		return
	}
	m.log.Info("agent certificate renewed", "guid", guid, "old_serial", presented, "serial", cert.SerialNumber.Text(16),
		"expires", cert.NotAfter.UTC().Format(time.RFC3339))
	m.refreshFleet(r.Context())    // the new serial, for this agent's next heartbeat
	m.certsChanged(m.runCtx, true) // an unused earlier renewal may have been superseded
	writeJSON(w, http.StatusOK, fleetapi.RenewResponse{Certificate: string(pki.PEM(cert))})
}

// renewalCSR parses a renewal's CSR: PEM, a valid signature, and no CommonName but the GUID's.
func renewalCSR(p, guid string) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("csr must be a PEM CERTIFICATE REQUEST (the agent makes one for its new key)")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, errors.New("csr: " + err.Error())
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, errors.New("csr signature: " + err.Error())
	}
	if cn := csr.Subject.CommonName; cn != "" && cn != guid {
		return nil, errors.New("csr names " + strconv.Quote(cn) + ": a renewal keeps the computer's GUID " + guid + " (leave the CommonName empty or give the GUID)")
	}
	return csr, nil
}

// confirmRenewal supersedes a computer's previous certificate once it heartbeats with the renewed one.
func (m *Manager) confirmRenewal(ctx context.Context, guid, serial string) {
	changed, err := m.db.ConfirmCert(ctx, guid, serial)
	if err != nil {
		m.log.Error("recording a renewed certificate in use; retried at the next heartbeat", "guid", guid, "serial", serial, "err", err)
		return
	}
	m.fleet.mu.Lock()
	if cur := m.fleet.comps[guid]; cur != nil && cur.c.CertSerial == serial {
		cur.c.CertPrevSerial = ""
	}
	m.fleet.mu.Unlock()
	if changed {
		m.log.Info("renewed certificate in use: the previous one is revoked", "guid", guid, "serial", serial)
		m.certsChanged(m.runCtx, true)
	}
}
