package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
)

// Renewal: at two thirds of its certificate's lifetime (by Options.Clock) the agent makes a new key and
// asks the Manager for a certificate over mutual TLS with the current one (POST PathRenew). The new pair
// is written beside the old (KeyFile+nextSuffix, CertFile+nextSuffix) and renamed over it, key first;
// recoverRenewal finishes or drops a half-done swap at the next load. The session then restarts with
// the new identity; its first heartbeat tells the Manager to revoke the old certificate. A failed
// renewal leaves the current certificate in use and is retried before the next heartbeat.

// nextSuffix names the renewed key and certificate before they replace the current ones.
const nextSuffix = ".next"

// renewAt is when a certificate is due for renewal: two thirds into its lifetime.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// now is the agent's clock (Options.Clock), consulted once per renewal check.
func (a *Agent) now() time.Time {
	if a.o.Clock != nil {
		return a.o.Clock()
	}
	return time.Now()
}

// maybeRenew renews the certificate when it is due; it reports whether the session must restart with
// the renewed identity.
func (s *session) maybeRenew(ctx context.Context) bool {
	leaf := s.id.client.Leaf
	if leaf == nil || s.a.now().Before(renewAt(leaf)) {
		return false
	}
	serial, err := s.renew(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.a.warn("certificate renewal failed: the current certificate stays in use; retrying before the next heartbeat",
				"expires", leaf.NotAfter.UTC().Format(time.RFC3339), "err", err)
		}
		return false
	}
	s.a.info("certificate renewed: restarting with it", "old_serial", leaf.SerialNumber.Text(16), "serial", serial)
	return true
}

// renew asks the Manager for a new certificate and stores it with its key.
func (s *session) renew(ctx context.Context) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: s.id.guid}}, key)
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(fleetapi.RenewRequest{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))})
	rctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, "https://"+s.managerAddr()+fleetapi.PathRenew, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", unwrapURL(err)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, fleetapi.MaxBody))
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the Manager answered %s: %s", resp.Status, errorMessage(raw))
	}
	var rr fleetapi.RenewResponse
	if err := json.Unmarshal(raw, &rr); err != nil {
		return "", fmt.Errorf("bad answer: %w", err)
	}
	cert, err := checkIssued(fleetapi.ActivateResponse{GUID: s.id.guid, Certificate: rr.Certificate}, s.id.ca, key)
	if err != nil {
		return "", err
	}
	unlock, err := lockDir(ctx, s.a.o.Dir)
	if err != nil {
		return "", err
	}
	defer unlock()
	if st, err := LoadState(s.a.o.Dir); err != nil || st.GUID != s.id.guid {
		return "", errReset
	}
	if err := storeRenewed(s.a.o.Dir, key, cert); err != nil {
		return "", err
	}
	return cert.SerialNumber.Text(16), nil
}

// storeRenewed writes the renewed pair beside the current one, then renames it over it, key first.
func storeRenewed(dir string, key *ecdsa.PrivateKey, cert *x509.Certificate) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyPath, certPath := filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile)
	if err := pki.WriteFile(keyPath+nextSuffix, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	if err := pki.WriteFile(certPath+nextSuffix, pki.PEM(cert), 0o644); err != nil {
		return err
	}
	return recoverRenewal(dir)
}

// recoverRenewal finishes a renewal that was stored (the next certificate exists: its key is renamed
// over the current one if not yet, then the certificate) or drops one whose certificate never reached
// the disk (a lone next key).
func recoverRenewal(dir string) error {
	keyPath, certPath := filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile)
	if _, err := os.Stat(certPath + nextSuffix); errors.Is(err, fs.ErrNotExist) {
		if err := os.Remove(keyPath + nextSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.Rename(keyPath+nextSuffix, keyPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(certPath+nextSuffix, certPath)
}
