package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/listener"
	"tlsfleet/internal/tlspolicy"
)

// serveOffers listens on the agent port while the agent is not activated, for a Manager-initiated
// activation (dsm_c -action addcomputer -activate). It returns a function that stops it.
func (a *Agent) serveOffers(ctx context.Context) func() {
	_, caErr := readCA(filepath.Join(a.o.Dir, CAFile))
	if caErr != nil && a.o.ActivationFingerprint == "" && !a.o.AcceptAnyActivation {
		a.info("Manager-initiated activation is off: pre-bind ca.pem in the state folder or pass --activation-fingerprint (or --accept-any-activation)")
		return func() {}
	}
	cert, err := throwawayCert()
	if err != nil {
		a.warn("no activation-offer listener", "err", err)
		return func() {}
	}
	ln, err := net.Listen("tcp", a.o.Listen)
	if err != nil {
		a.warn("no activation-offer listener: the agent port is taken", "listen", a.o.Listen, "err", err)
		return func() {}
	}
	l, err := listener.New(ln, listener.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Role: tlspolicy.RoleAgent, Limits: a.limits[tlspolicy.RoleAgent], Log: a.log})
	if err != nil {
		ln.Close()
		a.warn("no activation-offer listener", "err", err)
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+fleetapi.PathActivationOffer, func(w http.ResponseWriter, r *http.Request) { a.acceptOffer(ctx, w, r) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	go srv.Serve(l)
	a.info("waiting for an activation: dsa_control -a here, or the Manager's addcomputer -activate on " + ln.Addr().String())
	var once sync.Once
	return func() { once.Do(func() { srv.Close() }) }
}

// acceptOffer activates with the offered Manager, token and CA fingerprint. It takes only offers that
// name the fleet CA it was told to trust (a pre-bound ca.pem, or ActivationFingerprint), unless
// AcceptAnyActivation says to trust the first one.
func (a *Agent) acceptOffer(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	fail := func(code int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		a.warn("activation offer refused", "from", r.RemoteAddr, "reason", msg)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	var offer fleetapi.ActivationOffer
	if err := fleetapi.DecodeJSON(w, r, 64<<10, &offer); err != nil || offer.URL == "" || offer.Token == "" || offer.Fingerprint == "" {
		fail(http.StatusBadRequest, "an activation offer needs url, token and fingerprint (%v)", err)
		return
	}
	if _, err := LoadState(a.o.Dir); err == nil {
		fail(http.StatusConflict, "already activated: reset it first with dsa_control -r")
		return
	}
	want, err := ParseFingerprint(offer.Fingerprint)
	if err != nil {
		fail(http.StatusBadRequest, "fingerprint: %v", err)
		return
	}
	opts := ActivateOptions{Dir: a.o.Dir, URL: offer.URL, Token: offer.Token, Fingerprint: offer.Fingerprint, Warn: io.Discard, AgentVersion: a.version}
	if a.o.ActivationFingerprint != "" {
		mine, err := ParseFingerprint(a.o.ActivationFingerprint)
		if err != nil || !bytes.Equal(mine, want) {
			fail(http.StatusForbidden, "this agent takes activations only from the fleet CA %s; the offer names %s", a.o.ActivationFingerprint, offer.Fingerprint)
			return
		}
	}
	if ca, err := readCA(filepath.Join(a.o.Dir, CAFile)); err == nil {
		sum := sha256.Sum256(ca.Raw)
		if !bytes.Equal(sum[:], want) {
			fail(http.StatusForbidden, "this agent is pre-bound to another fleet CA (its ca.pem); the offer names %s", offer.Fingerprint)
			return
		}
		opts.Fingerprint = "" // the pre-bound ca.pem is the anchor
	}
	act, err := Activate(ctx, opts)
	if err != nil {
		fail(http.StatusBadGateway, "activation with %s failed: %v", offer.URL, err)
		return
	}
	a.info("activated by the Manager", "guid", act.GUID, "manager", offer.URL)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(fleetapi.ActivationOfferResult{GUID: act.GUID})
}

// throwawayCert makes the self-signed certificate an unactivated agent serves offers with.
func throwawayCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tlsfleet agent (not activated)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
