package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/tlspolicy"
)

// Version is the agent version reported to the Manager (ds_agent --report-version overrides it).
const Version = "1.0.0"

// LegacyReportVersion is what the legacy simulator reports by default: an agent from before TLS 1.2.
const LegacyReportVersion = "9.6.0"

// ActivateOptions are dsa_control -a's arguments.
type ActivateOptions struct {
	Dir string
	// URL is the Manager's agent channel: dsm://HOST:4120/ as on the help page (https:// and HOST:PORT
	// work too; the port defaults to 4120).
	URL        string
	Token      string
	PolicyID   string
	RelayGroup string
	// Hostname is reported to the Manager (default: os.Hostname).
	Hostname string
	// Trust, in this order: Fingerprint (SHA-256 of the fleet CA), else Dir/ca.pem placed beforehand,
	// else TrustOnFirstUse (accept the CA the server sends, with a warning).
	Fingerprint     string
	TrustOnFirstUse bool
	AgentVersion    string
	// Warn receives the trust-on-first-use warning (default os.Stderr).
	Warn io.Writer
	// dial, when set, is the HOST:PORT connected to instead of the URL's (an offer's activation dials
	// the host that offered); the URL's host still names the Manager for its certificate and the state.
	dial string
}

// Activation is what Activate did.
type Activation struct {
	GUID              string
	Manager           string // HOST:PORT
	CAFingerprint     string
	PolicyID          string
	RelayGroup        string
	TrustedOnFirstUse bool
	Dir               string
}

// ErrNoTrust is returned when activation has no trust anchor for the Manager.
var ErrNoTrust = fmt.Errorf("%w: no trust anchor for the Manager; give one of: -fingerprint SHA256 (the fleet CA's fingerprint, as dsm_c -action exportdsmcert prints it), "+
	"a ca.pem in the state folder (dsm_c -action exportdsmcert -value FILE, copied to STATE/ca.pem), "+
	"or -trust-on-first-use (accept whatever CA the server sends — only on a network you trust)", ErrUsage)

// ParseManagerURL turns dsm://HOST:4120/ (or https://HOST:PORT/, or HOST[:PORT]) into HOST:PORT.
func ParseManagerURL(s string) (string, error) {
	raw := strings.TrimSpace(s)
	if raw == "" {
		return "", fmt.Errorf("%w: no Manager address; use dsm://HOST:4120/", ErrUsage)
	}
	if !strings.Contains(raw, "://") {
		raw = "dsm://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%w: Manager address %q: use dsm://HOST:4120/", ErrUsage, s)
	}
	if u.Scheme != "dsm" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: Manager address %q: scheme %q, use dsm://HOST:4120/", ErrUsage, s, u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = strconv.Itoa(tlspolicy.PortAgentChannel)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%w: Manager address %q: bad port", ErrUsage, s)
	}
	if host == "" {
		return "", fmt.Errorf("%w: Manager address %q names no host", ErrUsage, s)
	}
	return net.JoinHostPort(host, port), nil
}

// trustAnchor is how activation decides whether the server is the Manager.
type trustAnchor struct {
	fingerprint []byte            // -fingerprint
	ca          *x509.Certificate // STATE/ca.pem
	tofu        bool
}

func (o *ActivateOptions) anchor() (trustAnchor, error) {
	var a trustAnchor
	prebound, err := readCA(filepath.Join(o.Dir, CAFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		prebound = nil
	case err != nil:
		return a, err
	}
	if o.Fingerprint != "" {
		fp, err := ParseFingerprint(o.Fingerprint)
		if err != nil {
			return a, err
		}
		if prebound != nil && !bytes.Equal(sha256Of(prebound), fp) {
			return a, fmt.Errorf("%w: %s (fingerprint %s) and -fingerprint %s name different CAs: remove the file or fix the fingerprint",
				ErrUsage, filepath.Join(o.Dir, CAFile), pki.Fingerprint(prebound), o.Fingerprint)
		}
		a.fingerprint = fp
		return a, nil
	}
	if prebound != nil {
		a.ca = prebound
		return a, nil
	}
	if o.TrustOnFirstUse {
		a.tofu = true
		return a, nil
	}
	return a, ErrNoTrust
}

// check verifies the Manager's chain during the handshake and returns the fleet CA it ends in.
func (a trustAnchor) check(peers []*x509.Certificate, host string) (*x509.Certificate, error) {
	if len(peers) == 0 {
		return nil, errors.New("the server sent no certificate")
	}
	last := peers[len(peers)-1]
	switch {
	case a.fingerprint != nil:
		if !last.IsCA {
			return nil, fmt.Errorf("the server at %s sent no CA certificate at the end of its chain (a tlsfleet Manager sends [its certificate, fleet CA]), so -fingerprint cannot be checked", host)
		}
		if !bytes.Equal(sha256Of(last), a.fingerprint) {
			return nil, fmt.Errorf("the server at %s is not the Manager you pinned: its certificate chain ends in %q with SHA-256 %s, "+
				"but -fingerprint is %s (check the value with dsm_c -action exportdsmcert on the Manager; a mismatch can mean a man in the middle)",
				host, last.Subject.CommonName, pki.Fingerprint(last), formatFP(a.fingerprint))
		}
		if err := verifyChainTo(peers, last, host, x509.ExtKeyUsageServerAuth); err != nil {
			return nil, fmt.Errorf("the Manager's certificate does not verify against the pinned fleet CA for %q: %w", host, err)
		}
		return last, nil
	case a.ca != nil:
		if err := verifyChainTo(peers, a.ca, host, x509.ExtKeyUsageServerAuth); err != nil {
			return nil, fmt.Errorf("the server at %s is not the Manager of the fleet CA in ca.pem (SHA-256 %s): %w", host, pki.Fingerprint(a.ca), err)
		}
		return a.ca, nil
	default: // trust on first use
		if !last.IsCA || last.CheckSignatureFrom(last) != nil {
			return nil, fmt.Errorf("trust on first use: the server at %s sent no self-signed CA at the end of its chain (it must send [leaf, fleet CA])", host)
		}
		if err := verifyChainTo(peers, last, host, x509.ExtKeyUsageServerAuth); err != nil {
			return nil, fmt.Errorf("trust on first use: the server's certificate does not verify against the CA it sent for %q: %w", host, err)
		}
		return last, nil
	}
}

func formatFP(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", c)
	}
	return sb.String()
}

// Activate registers the agent with the Manager: it checks the Manager against the trust anchor, makes
// a key and CSR, posts the token, and writes key, certificate, fleet CA and state. On any failure it
// writes nothing (not even the state folder).
func Activate(ctx context.Context, o ActivateOptions) (*Activation, error) {
	manager, anchor, err := o.prepare()
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ar, fleetCA, err := o.request(ctx, manager, anchor, key)
	if err != nil {
		return nil, err
	}
	cert, err := checkIssued(ar, fleetCA, key)
	if err != nil {
		return nil, fmt.Errorf("activation with %s: %w", manager, err)
	}
	if anchor.tofu {
		fmt.Fprintf(o.Warn, "WARNING: trust on first use: this agent now trusts the fleet CA that %s sent, %q with SHA-256\n"+
			"WARNING:   %s\n"+
			"WARNING: compare it with `dsm_c -action exportdsmcert` on the Manager; if it differs, run dsa_control -r at once.\n",
			manager, fleetCA.Subject.CommonName, pki.Fingerprint(fleetCA))
	}
	st := &State{GUID: ar.GUID, Manager: manager, PolicyID: ar.PolicyID, RelayGroup: ar.RelayGroup, CAFingerprint: pki.Fingerprint(fleetCA),
		ActivatedAt: time.Now().UTC()}
	if err := saveActivation(ctx, o.Dir, st, key, cert, fleetCA); err != nil {
		return nil, err
	}
	return &Activation{GUID: ar.GUID, Manager: manager, CAFingerprint: st.CAFingerprint, PolicyID: ar.PolicyID, RelayGroup: ar.RelayGroup,
		TrustedOnFirstUse: anchor.tofu, Dir: o.Dir}, nil
}

// prepare fills the defaults and checks what activation needs before anything leaves the machine.
func (o *ActivateOptions) prepare() (manager string, a trustAnchor, err error) {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Token == "" {
		return "", a, fmt.Errorf("%w: activation needs a token: dsa_control -a dsm://HOST:4120/ token:TOKEN (dsm_c -action createactivationtoken makes one)", ErrUsage)
	}
	if manager, err = ParseManagerURL(o.URL); err != nil {
		return "", a, err
	}
	if st, err := LoadState(o.Dir); err == nil {
		return "", a, fmt.Errorf("already activated as %s with the Manager %s: reset first with dsa_control -r", st.GUID, st.Manager)
	}
	if a, err = o.anchor(); err != nil {
		return "", a, err
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.AgentVersion == "" {
		o.AgentVersion = Version
	}
	if o.Warn == nil {
		o.Warn = os.Stderr
	}
	return manager, a, nil
}

// request sends the token and a CSR for key to the Manager over TLS checked against the anchor, and
// returns the answer and the fleet CA the Manager's chain ended in.
func (o *ActivateOptions) request(ctx context.Context, manager string, anchor trustAnchor, key *ecdsa.PrivateKey) (fleetapi.ActivateResponse, *x509.Certificate, error) {
	var ar fleetapi.ActivateResponse
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: o.Hostname}}, key)
	if err != nil {
		return ar, nil, err
	}
	host, _, _ := net.SplitHostPort(manager)
	var fleetCA *x509.Certificate
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is checked by VerifyConnection against the anchor (a fingerprint or ca.pem), not
		// against the system roots.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			ca, err := anchor.check(cs.PeerCertificates, host)
			if err != nil {
				return err
			}
			fleetCA = ca
			return nil
		},
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	tr := &http.Transport{TLSClientConfig: cfg, TLSHandshakeTimeout: 10 * time.Second}
	if o.dial != "" {
		d := &net.Dialer{Timeout: 10 * time.Second}
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, o.dial)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	defer client.CloseIdleConnections()
	body, _ := json.Marshal(fleetapi.ActivateRequest{
		Token: o.Token, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})),
		Hostname: o.Hostname, Platform: runtime.GOOS + "/" + runtime.GOARCH, AgentVersion: o.AgentVersion,
		TLSVersions: []string{"TLSv1.2", "TLSv1.3"}, PolicyID: o.PolicyID, RelayGroup: o.RelayGroup,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+manager+fleetapi.PathActivate, bytes.NewReader(body))
	if err != nil {
		return ar, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return ar, nil, fmt.Errorf("activation with %s: %w", manager, unwrapURL(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, fleetapi.MaxBody+1))
	if err != nil {
		return ar, nil, fmt.Errorf("activation with %s: %w", manager, err)
	}
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return ar, nil, fmt.Errorf("the Manager refused the activation: %s", errorMessage(raw))
	case resp.StatusCode != http.StatusOK:
		return ar, nil, fmt.Errorf("activation with %s failed: %s: %s", manager, resp.Status, errorMessage(raw))
	case len(raw) > fleetapi.MaxBody:
		return ar, nil, fmt.Errorf("activation with %s: the answer exceeds %d bytes", manager, fleetapi.MaxBody)
	}
	if err := json.Unmarshal(raw, &ar); err != nil {
		return ar, nil, fmt.Errorf("activation with %s: bad answer: %w", manager, err)
	}
	if fleetCA == nil {
		return ar, nil, errors.New("activation: the Manager's chain was never checked")
	}
	return ar, fleetCA, nil
}

// saveActivation writes key, certificate, CA, then state.json (whose presence means "activated"),
// under the state folder's lock.
func saveActivation(ctx context.Context, dir string, st *State, key *ecdsa.PrivateKey, cert, fleetCA *x509.Certificate) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return err
	}
	defer unlock()
	if cur, err := LoadState(dir); err == nil {
		return fmt.Errorf("activated meanwhile as %s: reset first with dsa_control -r", cur.GUID)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600},
		{CertFile, pki.PEM(cert), 0o644},
		{CAFile, pki.PEM(fleetCA), 0o644},
	} {
		if err := pki.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return st.save(dir)
}

// checkIssued checks the activation answer: the certificate is ours, from the CA the TLS chain ended in,
// named after the GUID.
func checkIssued(ar fleetapi.ActivateResponse, fleetCA *x509.Certificate, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	if ar.GUID == "" {
		return nil, errors.New("the answer has no GUID")
	}
	if ar.CA != "" {
		ca, err := parseCAPEM("the answer's CA", []byte(ar.CA))
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(ca.Raw, fleetCA.Raw) {
			return nil, fmt.Errorf("the answer names the CA %s, but the TLS chain ended in %s", pki.Fingerprint(ca), pki.Fingerprint(fleetCA))
		}
	}
	block, _ := pem.Decode([]byte(ar.Certificate))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("the answer's certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the issued certificate is not for this agent's key")
	}
	if cert.Subject.CommonName != ar.GUID {
		return nil, fmt.Errorf("the issued certificate names %q, not the GUID %q", cert.Subject.CommonName, ar.GUID)
	}
	if err := verifyChainTo([]*x509.Certificate{cert}, fleetCA, "", x509.ExtKeyUsageClientAuth); err != nil {
		return nil, fmt.Errorf("the issued certificate does not verify against the fleet CA: %w", err)
	}
	return cert, nil
}

// unwrapURL drops net/http's `Post "URL":` prefix, which repeats what the caller says.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorMessage extracts {"error": "..."} from an answer, or returns the body's first line.
func errorMessage(raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(raw))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(no message)"
	}
	return s
}
