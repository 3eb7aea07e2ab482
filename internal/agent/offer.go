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
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
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
	from := "the host that offers"
	if a.o.ActivationManager != "" {
		from = a.o.ActivationManager
	}
	a.info("waiting for an activation: dsa_control -a here, or the Manager's addcomputer -activate on "+ln.Addr().String(), "manager", from)
	var once sync.Once
	return func() { once.Do(func() { srv.Close() }) }
}

// Answers to offers: whoever can reach the agent port may post one, so the answers say nothing about
// why (not which fleet CA the agent trusts, not what dialling failed); the agent's log does.
const (
	offerMalformed = "an activation offer is JSON with url, token and fingerprint"
	offerRefused   = "this agent refused the activation offer; its log says why"
	offerFailed    = "the activation with the offered Manager failed; the agent's log says why"
)

// acceptOffer activates with the offered Manager, token and CA fingerprint. It takes only offers that
// name the fleet CA it was told to trust (a pre-bound ca.pem, or ActivationFingerprint), unless
// AcceptAnyActivation says to trust the first one, and it connects only to the Manager it was told
// about (offerTarget): an offer cannot make it dial anywhere else.
func (a *Agent) acceptOffer(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	answer := func(code int, public, reason string, args ...any) {
		if ok, n := a.offerLog.allow(time.Now()); ok {
			a.warn("activation offer refused", append([]any{"from", r.RemoteAddr, "reason", reason, "not_logged_before", n}, args...)...)
		}
		fleetapi.WriteError(w, code, "%s", public)
	}
	var offer fleetapi.ActivationOffer
	if err := fleetapi.DecodeJSON(w, r, 64<<10, &offer); err != nil || offer.URL == "" || offer.Token == "" || offer.Fingerprint == "" {
		answer(http.StatusBadRequest, offerMalformed, "the offer is not JSON with url, token and fingerprint", "err", err)
		return
	}
	if _, err := LoadState(a.o.Dir); err == nil {
		answer(http.StatusForbidden, offerRefused, "already activated: reset it first with dsa_control -r")
		return
	}
	manager, dial, err := a.offerTarget(offer.URL, r.RemoteAddr)
	if err != nil {
		answer(http.StatusForbidden, offerRefused, err.Error())
		return
	}
	opts, err := a.offerTrust(offer)
	if err != nil {
		answer(http.StatusForbidden, offerRefused, err.Error())
		return
	}
	opts.URL, opts.dial = "dsm://"+manager+"/", dial
	act, err := Activate(ctx, opts)
	if err != nil {
		answer(http.StatusBadGateway, offerFailed, "activation with the offered Manager failed", "manager", manager, "dialled", dial, "err", err)
		return
	}
	a.info("activated by the Manager", "guid", act.GUID, "manager", manager)
	fleetapi.WriteJSON(w, http.StatusOK, fleetapi.ActivationOfferResult{GUID: act.GUID})
}

// offerTarget decides where an offer's activation goes: manager is the Manager as the agent will know
// it (HOST:PORT), dial the address it connects to. With ActivationManager, only that Manager: an offer
// naming another is refused. Without it, only the address the offer came from, at the offered port
// (the offer's host name is checked against the Manager's certificate): the agent never dials a third
// host for whoever reached its port.
func (a *Agent) offerTarget(offered, remote string) (manager, dial string, err error) {
	manager, err = ParseManagerURL(offered)
	if err != nil {
		return "", "", fmt.Errorf("the offer's url: %w", err)
	}
	if a.o.ActivationManager != "" {
		told, err := ParseManagerURL(a.o.ActivationManager)
		if err != nil {
			return "", "", fmt.Errorf("--activation-manager: %w", err)
		}
		if !strings.EqualFold(told, manager) {
			return "", "", fmt.Errorf("the offer names the Manager %s; this agent takes activations only from %s (--activation-manager)", manager, told)
		}
		return told, told, nil
	}
	host, port, _ := net.SplitHostPort(manager)
	caller, _, err := net.SplitHostPort(remote)
	if err != nil {
		return "", "", fmt.Errorf("the offer's source address %q: %w", remote, err)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.Equal(net.ParseIP(caller)) {
		return "", "", fmt.Errorf("the offer names the Manager %s, but came from %s: without --activation-manager, this agent activates only with the host that offers", manager, caller)
	}
	return manager, net.JoinHostPort(caller, port), nil
}

// offerTrust checks the offer's fleet CA fingerprint against what this agent was told to trust, and
// returns the activation's options with the trust anchor set.
func (a *Agent) offerTrust(offer fleetapi.ActivationOffer) (ActivateOptions, error) {
	opts := ActivateOptions{Dir: a.o.Dir, Token: offer.Token, Fingerprint: offer.Fingerprint, Warn: io.Discard, AgentVersion: a.version}
	want, err := ParseFingerprint(offer.Fingerprint)
	if err != nil {
		return opts, fmt.Errorf("the offer's fingerprint: %w", err)
	}
	if a.o.ActivationFingerprint != "" {
		mine, err := ParseFingerprint(a.o.ActivationFingerprint)
		if err != nil || !bytes.Equal(mine, want) {
			return opts, fmt.Errorf("this agent takes activations only from the fleet CA %s; the offer names %s", a.o.ActivationFingerprint, offer.Fingerprint)
		}
	}
	if ca, err := readCA(filepath.Join(a.o.Dir, CAFile)); err == nil {
		sum := sha256.Sum256(ca.Raw)
		if !bytes.Equal(sum[:], want) {
			return opts, fmt.Errorf("this agent is pre-bound to another fleet CA (its ca.pem); the offer names %s", offer.Fingerprint)
		}
		opts.Fingerprint = "" // the pre-bound ca.pem is the anchor
	}
	return opts, nil
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

// offerLimit lets one refused-offer line per offerLogEvery reach the log: whoever can reach an
// unactivated agent's port may post offers, and must not be able to fill its log.
type offerLimit struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const offerLogEvery = 10 * time.Second

// allow reports whether a line may be logged now, and how many were not since the last one.
func (l *offerLimit) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < offerLogEvery {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}
