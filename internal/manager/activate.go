package manager

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/store"
)

func newGUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:]), nil
}

// activate issues an agent certificate for a valid token. Every check happens before the token is spent,
// and the spending, the certificate and the inventory row are one transaction.
func (m *Manager) activate(w http.ResponseWriter, r *http.Request) {
	if err := m.Writable(); err != nil {
		writeError(w, http.StatusServiceUnavailable, "the Manager cannot activate agents now: %v", err)
		return
	}
	var req fleetapi.ActivateRequest
	if err := fleetapi.DecodeJSON(w, r, 64<<10, &req); err != nil {
		writeError(w, http.StatusBadRequest, "activation request: %v", err)
		return
	}
	for _, f := range []struct{ name, v string }{{"policy_id", req.PolicyID}, {"relay_group", req.RelayGroup}, {"platform", req.Platform}, {"agent_version", req.AgentVersion}} {
		if len(f.v) > 64 || !utf8.ValidString(f.v) || strings.ContainsFunc(f.v, unicode.IsControl) {
			writeError(w, http.StatusBadRequest, "%s: at most 64 printable characters", f.name)
			return
		}
	}
	if req.RelayGroup != "" {
		groups, err := m.db.RelayGroups(r.Context())
		if err != nil || !slices.Contains(groups, req.RelayGroup) {
			writeError(w, http.StatusBadRequest, "relay group %q does not exist", req.RelayGroup)
			return
		}
	}
	if req.Token == "" || req.CSR == "" || req.Hostname == "" {
		writeError(w, http.StatusBadRequest, "activation request needs token, csr and hostname")
		return
	}
	if len(req.Hostname) > 253 || strings.ContainsAny(req.Hostname, " \t\r\n/") {
		writeError(w, http.StatusBadRequest, "hostname %q is not a host name", req.Hostname)
		return
	}
	block, _ := pem.Decode([]byte(req.CSR))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		writeError(w, http.StatusBadRequest, "csr must be a PEM CERTIFICATE REQUEST")
		return
	}
	guid, err := newGUID()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	var cert []byte
	c, err := m.db.Activate(r.Context(), auth.HashToken(req.Token), time.Now(), store.Computer{
		GUID: guid, Hostname: req.Hostname, Platform: req.Platform, AgentVersion: req.AgentVersion, TLSVersions: strings.Join(req.TLSVersions, ","),
	}, func(tok store.ActivationToken) (store.Computer, error) {
		crt, err := m.ca.IssueAgent(block.Bytes, guid)
		if err != nil {
			return store.Computer{}, err
		}
		cert = pki.PEM(crt)
		policyID, group := tok.PolicyID, tok.RelayGroup
		if req.PolicyID != "" {
			policyID = req.PolicyID
		}
		if req.RelayGroup != "" {
			group = req.RelayGroup
		}
		return store.Computer{GUID: guid, Hostname: req.Hostname, Platform: req.Platform, AgentVersion: req.AgentVersion,
			TLSVersions: strings.Join(req.TLSVersions, ","), CertSerial: crt.SerialNumber.Text(16),
			CertExpires: crt.NotAfter.UTC().Format(time.RFC3339), PolicyID: policyID, RelayGroup: group}, nil
	})
	switch {
	case errors.Is(err, store.ErrTokenInvalid):
		m.log.Warn("activation refused", "client", r.RemoteAddr, "hostname", req.Hostname, "reason", err)
		writeError(w, http.StatusForbidden, "%v: ask the administrator for a new one (dsm_c -action createactivationtoken)", err)
		return
	case err != nil && (errors.Is(err, pki.ErrWeakKey) || strings.Contains(err.Error(), "certificate request")):
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "activation: %v", err)
		return
	}
	m.log.Info("agent activated", "guid", c.GUID, "hostname", c.Hostname, "client", r.RemoteAddr)
	m.markFleet()
	m.release(r.Context()) // its first policy, for its first heartbeat
	writeJSON(w, http.StatusOK, fleetapi.ActivateResponse{GUID: c.GUID, Certificate: string(cert), CA: string(pki.PEM(m.ca.Cert)), PolicyID: c.PolicyID, RelayGroup: c.RelayGroup})
}
