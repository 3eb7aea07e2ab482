package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
)

// The fleet's revocation list on an agent: the Manager pushes it to a relay's 4118 right after a
// deactivation (PUT PathCRL), and every agent fetches it from 4120 when a heartbeat answer names a newer
// number. Both ports (4118, a relay's 4122) refuse a listed client certificate in the handshake (resumed
// sessions included) and at every request; the list is kept in CRLFile across restarts.

// errOlderCRL refuses a CRL older than the one in force (a replay); errStoreCRL is a failure to store
// one (the disk, not the list).
var (
	errOlderCRL = errors.New("older than the CRL in force")
	errStoreCRL = errors.New("storing the CRL")
)

// loadCRL reads the stored CRL, if any; a file the fleet CA did not sign is ignored (and replaced at the
// next fetch).
func (s *session) loadCRL() {
	der, err := os.ReadFile(filepath.Join(s.a.o.Dir, CRLFile))
	if err != nil {
		return
	}
	crl, err := pki.ParseCRL(der, s.id.ca)
	if err != nil {
		s.a.warn("the stored CRL is unusable: ignored until the Manager sends one", "file", CRLFile, "err", err)
		return
	}
	s.crl.Store(crl)
}

// crlNumber is the number of the CRL in force (-1: none).
func (s *session) crlNumber() int64 {
	if c := s.crl.Load(); c != nil {
		return c.Number
	}
	return -1
}

// installCRL verifies a CRL, stores it and puts it in force; the same number again changes nothing.
func (s *session) installCRL(der []byte, from string) error {
	crl, err := pki.ParseCRL(der, s.id.ca)
	if err != nil {
		return err
	}
	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	cur := s.crl.Load()
	switch {
	case cur != nil && crl.Number < cur.Number:
		return fmt.Errorf("CRL number %d is %w (%d)", crl.Number, errOlderCRL, cur.Number)
	case cur != nil && crl.Number == cur.Number:
		return nil
	}
	if err := pki.WriteFile(filepath.Join(s.a.o.Dir, CRLFile), der, 0o644); err != nil {
		return fmt.Errorf("%w: %v", errStoreCRL, err)
	}
	s.crl.Store(crl)
	s.a.info("fleet CRL in force", "number", crl.Number, "entries", crl.Len(), "from", from)
	return nil
}

// checkRevoked is the ports' VerifyConnection hook and the handlers' second lock.
func (s *session) checkRevoked(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return s.crl.Load().Check(cs.PeerCertificates[0])
}

// certRefused reports whether a handshake failed because the peer refused this agent's certificate
// (the bad_certificate alert, which the fleet's listeners send for a revoked one).
func certRefused(err error) bool {
	a, ok := remoteAlert(err)
	return ok && a == 42
}

// fetchCRL fetches the Manager's CRL when the heartbeat answer names a newer one.
func (s *session) fetchCRL(ctx context.Context, number int64) {
	if number <= s.crlNumber() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	defer cancel()
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+s.managerAddr()+fleetapi.PathCRL, nil)
		if err != nil {
			return err
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return unwrapURL(err)
		}
		defer resp.Body.Close()
		der, err := io.ReadAll(io.LimitReader(resp.Body, fleetapi.MaxCRL+1))
		switch {
		case err != nil:
			return err
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("%s: %s", resp.Status, errorMessage(der))
		case len(der) > fleetapi.MaxCRL:
			return fmt.Errorf("the CRL exceeds %d bytes", fleetapi.MaxCRL)
		}
		return s.installCRL(der, "manager")
	}()
	if err != nil {
		s.a.warn("fetching the fleet CRL failed; retrying at the next heartbeat", "number", number, "err", err)
	}
}

// putCRL is the Manager's push of the CRL to 4118: 204 in force, 400 not the fleet CA's, 409 older than
// the one in force, 413 too large.
func (s *session) putCRL(w http.ResponseWriter, r *http.Request) {
	der, err := io.ReadAll(http.MaxBytesReader(w, r.Body, fleetapi.MaxCRL))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "CRL exceeds %d bytes", fleetapi.MaxCRL)
			return
		}
		writeError(w, http.StatusBadRequest, "reading the CRL: %v", err)
		return
	}
	switch err := s.installCRL(der, "push"); {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, errOlderCRL):
		writeError(w, http.StatusConflict, "%v", err)
	case errors.Is(err, errStoreCRL):
		writeError(w, http.StatusInternalServerError, "%v", err)
	default:
		writeError(w, http.StatusBadRequest, "%v", err)
	}
}
