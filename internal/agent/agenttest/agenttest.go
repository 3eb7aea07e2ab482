// Package agenttest is a small fake of the Manager's agent channel for the agent's tests: a real TLS
// server on loopback with its own fleet CA, implementing activation, heartbeats and bundles as
// internal/fleetapi describes them, and a client that calls an agent's port 4118 with a "tlsfleet
// manager" certificate. It is a test double of the contract only; the real Manager lives in
// internal/manager.
package agenttest

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
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
)

// Options tune the fake Manager.
type Options struct {
	// MinVersion is the oldest TLS version the agent channel accepts (default TLS 1.2).
	MinVersion uint16
}

// Computer is the fake Manager's record of one activated agent.
type Computer struct {
	GUID, Hostname, PolicyID, RelayGroup string
	AgentVersion                         string
	TLSVersions                          []string // from the activation request
	LastSeq                              uint64
	Heartbeats                           []fleetapi.Heartbeat
	// Negotiated is the TLS version of each accepted heartbeat.
	Negotiated  []uint16
	Policy      *fleetapi.Policy
	Commands    []string
	Deactivated bool
}

// Manager is the fake agent channel.
type Manager struct {
	CA   *pki.CA
	Cert tls.Certificate // [leaf, CA], CommonName "tlsfleet manager", usable as client certificate too
	Addr string          // 127.0.0.1:PORT

	srv        *httptest.Server
	conns      atomic.Int64
	handshakes atomic.Int64
	resumed    atomic.Int64

	mu            sync.Mutex
	tokens        map[string]int // token → uses left
	computers     map[string]*Computer
	defaultPolicy *fleetapi.Policy
	bundles       map[string][]byte // what GET PathBundles serves, by SHA-256
	bundleGets    map[string]int
	activations   int
}

// NewManager starts a fake Manager until the test ends.
func NewManager(t testing.TB, o Options) *Manager {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.LoadOrCreateServer(dir, pki.ECDSAP256, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{CA: ca, Cert: cert, tokens: map[string]int{}, computers: map[string]*Computer{}, bundles: map[string][]byte{}, bundleGets: map[string]int{}}
	if o.MinVersion == 0 {
		o.MinVersion = tls.VersionTLS12
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+fleetapi.PathActivate, m.activate)
	mux.HandleFunc("POST "+fleetapi.PathHeartbeat, m.heartbeat)
	mux.HandleFunc("GET "+fleetapi.PathBundles+"{sha}", m.bundle)
	m.srv = httptest.NewUnstartedServer(mux)
	m.srv.TLS = &tls.Config{
		MinVersion:   o.MinVersion,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
		NextProtos:   []string{"http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			m.handshakes.Add(1)
			if cs.DidResume {
				m.resumed.Add(1)
			}
			return nil
		},
	}
	m.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	m.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			m.conns.Add(1)
		}
	}
	m.srv.StartTLS()
	m.Addr = m.srv.Listener.Addr().String()
	t.Cleanup(m.srv.Close)
	return m
}

// URL is the agent channel as dsa_control -a takes it.
func (m *Manager) URL() string { return "dsm://" + m.Addr + "/" }

// Fingerprint is the fleet CA's SHA-256.
func (m *Manager) Fingerprint() string { return m.CA.Fingerprint() }

// CAPEM is the fleet CA certificate (what dsm_c -action exportdsmcert writes).
func (m *Manager) CAPEM() []byte { return pki.PEM(m.CA.Cert) }

// Conns counts TCP connections accepted; Handshakes counts TLS handshakes and how many resumed a session.
func (m *Manager) Conns() int64 { return m.conns.Load() }
func (m *Manager) Handshakes() (full, resumed int64) {
	return m.handshakes.Load() - m.resumed.Load(), m.resumed.Load()
}

// CloseClientConnections drops every connection (agents must reconnect, and may resume).
func (m *Manager) CloseClientConnections() { m.srv.CloseClientConnections() }

// AddToken makes an activation token good for uses activations.
func (m *Manager) AddToken(token string, uses int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[token] = uses
}

// SetDefaultPolicy is sent to every computer that has no policy of its own.
func (m *Manager) SetDefaultPolicy(p *fleetapi.Policy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.defaultPolicy = p
}

// SetPolicy assigns a computer its policy (sent at its next heartbeat).
func (m *Manager) SetPolicy(guid string, p *fleetapi.Policy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.computer(guid).Policy = p
}

// QueueCommand adds a command to a computer's next heartbeat answer.
func (m *Manager) QueueCommand(guid, cmd string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.computer(guid)
	c.Commands = append(c.Commands, cmd)
}

// Deactivate makes the Manager refuse the computer (403).
func (m *Manager) Deactivate(guid string, off bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.computer(guid).Deactivated = off
}

// SetLastSeq pretends the Manager accepted a heartbeat with this Seq.
func (m *Manager) SetLastSeq(guid string, seq uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.computer(guid).LastSeq = seq
}

func (m *Manager) computer(guid string) *Computer {
	c := m.computers[guid]
	if c == nil {
		c = &Computer{GUID: guid}
		m.computers[guid] = c
	}
	return c
}

// Computer returns a copy of a computer's record (zero value when unknown).
func (m *Manager) Computer(guid string) Computer {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.computers[guid]
	if c == nil {
		return Computer{}
	}
	cp := *c
	cp.Heartbeats = slices.Clone(c.Heartbeats)
	cp.Negotiated = slices.Clone(c.Negotiated)
	return cp
}

// GUIDs lists the activated computers.
func (m *Manager) GUIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for g := range m.computers {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// AddBundle publishes a bundle and returns its policy entry.
func (m *Manager) AddBundle(name string, data []byte) fleetapi.Bundle {
	sum := sha256.Sum256(data)
	b := fleetapi.Bundle{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bundles[b.SHA256] = data
	return b
}

// ServeBundleAs makes the Manager serve other bytes under a bundle's SHA-256 (a corrupted download).
func (m *Manager) ServeBundleAs(sha string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bundles[sha] = data
}

// BundleGets counts GET PathBundles+sha.
func (m *Manager) BundleGets(sha string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bundleGets[sha]
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:])
}

func (m *Manager) activate(w http.ResponseWriter, r *http.Request) {
	var req fleetapi.ActivateRequest
	if err := fleetapi.DecodeJSON(w, r, 64<<10, &req); err != nil {
		writeError(w, http.StatusBadRequest, "activation request: %v", err)
		return
	}
	if req.Token == "" || req.CSR == "" || req.Hostname == "" {
		writeError(w, http.StatusBadRequest, "activation request needs token, csr and hostname")
		return
	}
	block, _ := pem.Decode([]byte(req.CSR))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		writeError(w, http.StatusBadRequest, "csr must be a PEM CERTIFICATE REQUEST")
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tokens[req.Token] <= 0 {
		writeError(w, http.StatusForbidden, "activation token is invalid, expired or used up: ask the administrator for a new one (dsm_c -action createactivationtoken)")
		return
	}
	guid := newGUID()
	crt, err := m.CA.IssueAgent(block.Bytes, guid)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	m.tokens[req.Token]--
	m.activations++
	c := m.computer(guid)
	c.Hostname, c.PolicyID, c.RelayGroup, c.AgentVersion, c.TLSVersions = req.Hostname, req.PolicyID, req.RelayGroup, req.AgentVersion, req.TLSVersions
	writeJSON(w, http.StatusOK, fleetapi.ActivateResponse{GUID: guid, Certificate: string(pki.PEM(crt)), CA: string(pki.PEM(m.CA.Cert)), PolicyID: req.PolicyID, RelayGroup: req.RelayGroup})
}

// peerGUID is the GUID of a verified client certificate.
func peerGUID(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return ""
	}
	return r.TLS.PeerCertificates[0].Subject.CommonName
}

func (m *Manager) heartbeat(w http.ResponseWriter, r *http.Request) {
	guid := peerGUID(r)
	var hb fleetapi.Heartbeat
	if err := fleetapi.DecodeJSON(w, r, fleetapi.MaxBody, &hb); err != nil {
		writeError(w, http.StatusBadRequest, "heartbeat: %v", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.computers[guid]
	switch {
	case guid == "":
		writeError(w, http.StatusForbidden, "heartbeats need the agent certificate")
		return
	case c == nil:
		writeError(w, http.StatusForbidden, "computer %s is unknown to this Manager: activate it again", guid)
		return
	case c.Deactivated:
		writeError(w, http.StatusForbidden, "computer %s is deactivated", guid)
		return
	case hb.Seq <= c.LastSeq:
		writeError(w, http.StatusConflict, "heartbeat seq %d is not above %d (a replay)", hb.Seq, c.LastSeq)
		return
	}
	c.LastSeq = hb.Seq
	c.Heartbeats = append(c.Heartbeats, hb)
	c.Negotiated = append(c.Negotiated, r.TLS.Version)
	p := c.Policy
	if p == nil {
		p = m.defaultPolicy
	}
	resp := fleetapi.HeartbeatResponse{IntervalSeconds: fleetapi.DefaultHeartbeatS, Commands: c.Commands}
	c.Commands = nil
	if p != nil {
		resp.IntervalSeconds = p.HeartbeatSeconds
		if hb.PolicyFingerprint != p.Fingerprint() {
			resp.Policy = p
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (m *Manager) bundle(w http.ResponseWriter, r *http.Request) {
	if peerGUID(r) == "" {
		writeError(w, http.StatusForbidden, "bundles need the agent certificate")
		return
	}
	sha := r.PathValue("sha")
	m.mu.Lock()
	data, ok := m.bundles[sha]
	m.bundleGets[sha]++
	m.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "no bundle %s", sha)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(data)
}

// AgentClient calls an agent's port 4118 as the Manager does: with the Manager's certificate, checking
// the agent's certificate against the fleet CA for its GUID.
func (m *Manager) AgentClient(guid string) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(m.CA.Cert)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: guid, Certificates: []tls.Certificate{m.Cert}, MinVersion: tls.VersionTLS12,
	}}}
}

// PushPolicy PUTs a policy to an agent's port 4118 and returns the status and body.
func (m *Manager) PushPolicy(ctx context.Context, addr, guid string, p any) (int, string, error) {
	var body []byte
	switch v := p.(type) {
	case []byte:
		body = v
	case string:
		body = []byte(v)
	default:
		body, _ = json.Marshal(v)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "https://"+addr+fleetapi.PathPolicy, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	c := m.AgentClient(guid)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(raw)), nil
}

// IssueCert issues a certificate from the fleet CA for a fresh key (a fake relay, another agent).
func (m *Manager) IssueCert(t testing.TB, guid string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: guid}}, key)
	if err != nil {
		t.Fatal(err)
	}
	crt, err := m.CA.IssueAgent(csr, guid)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{crt.Raw, m.CA.Cert.Raw}, PrivateKey: key, Leaf: crt}
}

// Eventually polls cond every 10 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
