package manager

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/ops"
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
// and the spending, the certificate and the inventory row are one transaction. A source that keeps
// sending wrong tokens is throttled (throttle.go) before its request is read.
func (m *Manager) activate(w http.ResponseWriter, r *http.Request) {
	if err := m.Writable(); err != nil {
		writeError(w, http.StatusServiceUnavailable, "the Manager cannot activate agents now: %v", err)
		return
	}
	source := throttleKey(r.RemoteAddr)
	if wait, blocked := m.throttle.blocked(source); blocked {
		secs := int(math.Ceil(wait.Seconds()))
		if ok, n := m.throttle.mayLog(source); ok {
			m.log.Warn("activation throttled: too many wrong tokens", "client", source, "retry_after_s", secs, "not_logged", n)
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, "too many activations with wrong tokens from %s: try again in %d s with a valid token (dsm_c -action createactivationtoken)", source, secs)
		return
	}
	var req fleetapi.ActivateRequest
	if err := fleetapi.DecodeJSON(w, r, 64<<10, &req); err != nil {
		writeError(w, bodyErrorStatus(err), "activation request: %v", err)
		return
	}
	if err := ops.CheckActivation(req); err != nil {
		writeError(w, http.StatusBadRequest, "activation request: %v", err)
		return
	}
	if req.RelayGroup != "" {
		groups, err := m.db.RelayGroups(r.Context())
		if err != nil || !slices.Contains(groups, req.RelayGroup) {
			writeError(w, http.StatusBadRequest, "relay group %q does not exist", req.RelayGroup)
			return
		}
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
		m.throttle.failed(source)
		if ok, n := m.throttle.mayLog(source); ok {
			m.log.Warn("activation refused", "client", source, "hostname", ops.Cell(req.Hostname), "reason", err, "not_logged", n)
		}
		writeError(w, http.StatusForbidden, "%v: ask the administrator for a new one (dsm_c -action createactivationtoken)", err)
		return
	case err != nil && (errors.Is(err, pki.ErrWeakKey) || strings.Contains(err.Error(), "certificate request")):
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "activation: %v", err)
		return
	}
	m.throttle.succeeded(source)
	m.log.Info("agent activated", "guid", c.GUID, "hostname", ops.Cell(c.Hostname), "client", r.RemoteAddr)
	m.markFleet()
	m.release(r.Context()) // its first policy, for its first heartbeat
	writeJSON(w, http.StatusOK, fleetapi.ActivateResponse{GUID: c.GUID, Certificate: string(cert), CA: string(pki.PEM(m.ca.Cert)), PolicyID: c.PolicyID, RelayGroup: c.RelayGroup})
}

// bodyErrorStatus is 413 for a body over its limit, else 400.
func bodyErrorStatus(err error) int {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}
