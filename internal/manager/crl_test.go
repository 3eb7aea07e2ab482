package manager

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/store/storetest"
)

// agentClient is a mutual-TLS client of the agent channel with a session cache (it resumes).
func agentClient(m *Manager, cert tls.Certificate, maxVersion uint16) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(m.CA().Cert)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost",
		Certificates: []tls.Certificate{cert}, ClientSessionCache: tls.NewLRUClientSessionCache(4), MaxVersion: maxVersion}}}
}

// postBeat sends a heartbeat with client and returns the status, the answer and whether the TLS session
// was resumed; err is the transport's (a refused handshake).
func postBeat(c *http.Client, m *Manager, seq uint64) (int, fleetapi.HeartbeatResponse, bool, error) {
	b, _ := json.Marshal(fleetapi.Heartbeat{Seq: seq})
	resp, err := c.Post("https://"+m.AgentAddr()+fleetapi.PathHeartbeat, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, fleetapi.HeartbeatResponse{}, false, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var hr fleetapi.HeartbeatResponse
	json.Unmarshal(raw, &hr)
	if resp.StatusCode != http.StatusOK {
		err = &httpError{resp.StatusCode, string(raw)}
	}
	return resp.StatusCode, hr, resp.TLS.DidResume, err
}

type httpError struct {
	code int
	body string
}

func (e *httpError) Error() string { return http.StatusText(e.code) + ": " + e.body }

// fetchCRL reads GET /agent/v1/crl and checks its signature.
func fetchCRL(t *testing.T, m *Manager) *pki.CRL {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(m.CA().Cert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	resp, err := c.Get("https://" + m.AgentAddr() + fleetapi.PathCRL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != fleetapi.CRLContentType {
		t.Fatalf("GET %s: %s %q", fleetapi.PathCRL, resp.Status, resp.Header.Get("Content-Type"))
	}
	crl, err := pki.ParseCRL(der, m.CA().Cert)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func leafOf(t *testing.T, c tls.Certificate) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// A deactivated computer's certificate is on hold in the CRL at once: a connection kept alive is refused
// at its next request, and a session made before cannot be resumed (the handshake is refused); the CRL
// on 4120 lists the certificate and heartbeat answers name its number. Reactivation lifts the hold.
func TestRevokedSessionDoesNotResume(t *testing.T) {
	m := startManager(t, nil)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			a := activateTestAgent(t, m, "web-"+strings.ReplaceAll(tls.VersionName(version), " ", ""))
			c := agentClient(m, a.cert, version)
			if _, _, _, err := postBeat(c, m, 1); err != nil {
				t.Fatalf("first heartbeat: %v", err)
			}
			c.CloseIdleConnections()
			if _, hr, resumed, err := postBeat(c, m, 2); err != nil || !resumed {
				t.Fatalf("second heartbeat: resumed=%v err=%v, want a resumed session", resumed, err)
			} else if got, want := hr.CRLNumber, m.currentCRL().Number; got != want {
				t.Errorf("heartbeat answer names CRL %d, want %d", got, want)
			}
			if _, err := m.Ops().SetDeactivated(t.Context(), a.guid, true); err != nil {
				t.Fatal(err)
			}
			if err := fetchCRL(t, m).Check(leafOf(t, a.cert)); err == nil || !strings.Contains(err.Error(), "on hold") {
				t.Errorf("the CRL on 4120 after deactivation: %v, want the certificate on hold", err)
			}
			if code, _, _, err := postBeat(c, m, 3); code != http.StatusForbidden || !strings.Contains(err.Error(), "on hold") {
				t.Errorf("heartbeat on the kept-alive connection: %d %v, want 403 naming the hold", code, err)
			}
			c.CloseIdleConnections()
			if code, _, resumed, err := postBeat(c, m, 4); err == nil || code != 0 || resumed {
				t.Errorf("heartbeat after deactivation on a new connection: code %d resumed %v err %v, want a refused handshake", code, resumed, err)
			}
			if _, err := m.Ops().SetDeactivated(t.Context(), a.guid, false); err != nil {
				t.Fatal(err)
			}
			fresh := agentClient(m, a.cert, version)
			if _, _, _, err := postBeat(fresh, m, 5); err != nil {
				t.Errorf("heartbeat after reactivation: %v", err)
			}
		})
	}
}

// csrFor makes a CSR for key naming cn, as PEM.
func csrFor(t *testing.T, key crypto.Signer, cn string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// renewWith posts a renewal request with client; it returns the status, the answer's error text and the
// new certificate (with key) on success.
func renewWith(t *testing.T, m *Manager, c *http.Client, body string, key crypto.Signer) (int, string, tls.Certificate) {
	t.Helper()
	resp, err := c.Post("https://"+m.AgentAddr()+fleetapi.PathRenew, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var rr fleetapi.RenewResponse
	json.Unmarshal(raw, &rr)
	block, _ := pem.Decode([]byte(rr.Certificate))
	if block == nil {
		return resp.StatusCode, string(raw), tls.Certificate{}
	}
	return resp.StatusCode, string(raw), tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key}
}

func renewBody(csr string) string {
	b, _ := json.Marshal(fleetapi.RenewRequest{CSR: csr})
	return string(b)
}

// A bad renewal request gets a 400 that says what is wrong, and changes no row.
func TestRenewalBadInput(t *testing.T) {
	m := startManager(t, nil)
	a := activateTestAgent(t, m, "web1")
	c := agentClient(m, a.cert, 0)
	good, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	valid := csrFor(t, good, a.guid)
	tests := []struct {
		name, body, want string
	}{
		{"garbage", "garbage", "renewal request: the body is not valid JSON"},
		{"no CSR", `{}`, "csr must be a PEM CERTIFICATE REQUEST"},
		{"not PEM", renewBody("MIIB..."), "csr must be a PEM CERTIFICATE REQUEST"},
		{"PEM of garbage", renewBody(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("junk")}))), "csr: "},
		{"RSA-1024 key", renewBody(csrFor(t, weak, a.guid)), "RSA of at least 2048 bits"},
		{"P-224 key", renewBody(csrFor(t, p224, a.guid)), "ECDSA P-256/P-384"},
		{"another computer's name", renewBody(csrFor(t, good, "other-guid")), "other-guid\\\": a renewal keeps the computer's GUID"},
		{"unknown field", `{"csr":` + mustJSON(valid) + `,"guid":"x"}`, "unknown field"},
	}
	database := m.folder.Database
	before := storetest.DumpDatabase(t, database, storetest.Options{Tables: []string{"computers", "cert_serials", "change_counter"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg, _ := renewWith(t, m, c, tt.body, good)
			if code != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
				t.Errorf("got %d %s, want 400 with %q", code, msg, tt.want)
			}
		})
	}
	after := storetest.DumpDatabase(t, database, storetest.Options{Tables: []string{"computers", "cert_serials", "change_counter"}})
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("bad renewals changed rows (-before +after):\n%s", diff)
	}
	anon := apiClient()
	if code, msg, _ := renewWith(t, m, anon, renewBody(valid), good); code != http.StatusUnauthorized {
		t.Errorf("renewal without a client certificate: %d %s, want 401", code, msg)
	}
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A renewal whose answer the agent lost costs nothing: the old certificate keeps working, a second
// renewal with it supersedes the lost certificate, and the old certificate is revoked only once the
// agent heartbeats with the new one.
func TestInterruptedRenewalRecovers(t *testing.T) {
	m := startManager(t, nil)
	a := activateTestAgent(t, m, "web1")
	old := agentClient(m, a.cert, 0)
	seq := uint64(0)
	beat := func(c *http.Client) error {
		seq++
		_, _, _, err := postBeat(c, m, seq)
		return err
	}
	if err := beat(old); err != nil {
		t.Fatal(err)
	}
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	code, msg, lost := renewWith(t, m, old, renewBody(csrFor(t, k1, a.guid)), k1)
	if code != http.StatusOK {
		t.Fatalf("first renewal: %d %s", code, msg)
	}
	// The agent never stored `lost`: it goes on with its old certificate.
	if err := beat(old); err != nil {
		t.Fatalf("heartbeat with the old certificate after a lost renewal: %v", err)
	}
	if crl := fetchCRL(t, m); crl.Check(leafOf(t, a.cert)) != nil {
		t.Error("the old certificate was revoked before the agent used the new one")
	}
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	code, msg, renewed := renewWith(t, m, old, renewBody(csrFor(t, k2, "")), k2)
	if code != http.StatusOK {
		t.Fatalf("second renewal: %d %s", code, msg)
	}
	if err := fetchCRL(t, m).Check(leafOf(t, lost)); err == nil || !strings.Contains(err.Error(), "superseded") {
		t.Errorf("the lost certificate after the second renewal: %v, want superseded", err)
	}
	if leaf := leafOf(t, renewed); leaf.Subject.CommonName != a.guid || !leaf.NotAfter.After(time.Now().Add(300*24*time.Hour)) {
		t.Errorf("renewed certificate names %q, expires %v", leaf.Subject.CommonName, leaf.NotAfter)
	}
	if err := beat(agentClient(m, renewed, 0)); err != nil {
		t.Fatalf("heartbeat with the renewed certificate: %v", err)
	}
	if err := fetchCRL(t, m).Check(leafOf(t, a.cert)); err == nil || !strings.Contains(err.Error(), "superseded") {
		t.Errorf("the old certificate after the heartbeat with the new one: %v, want superseded", err)
	}
	old.CloseIdleConnections()
	if err := beat(old); err == nil {
		t.Error("the old certificate still works after the renewal was confirmed")
	}
	if err := beat(agentClient(m, lost, 0)); err == nil {
		t.Error("the lost certificate works")
	}
}

// An unchanged CRL is re-signed with a new number once half its validity has passed, so that listeners
// never hold one past its NextUpdate and expired certificates drop out.
func TestStaleCRLIsResigned(t *testing.T) {
	m := startManager(t, nil)
	cur := m.currentCRL()
	if changed, err := m.refreshCRL(t.Context(), true); err != nil || changed {
		t.Fatalf("a fresh CRL was re-signed: %v %v", changed, err)
	}
	old, err := m.ca.SignCRL(cur.Number, nil, time.Now().Add(-pki.CRLValidity/2-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := pki.ParseCRL(old, m.ca.Cert)
	m.crl.cur.Store(stale)
	// Re-signing is a fleet job: a node without the fleet lease leaves it to the holder.
	if changed, err := m.refreshCRL(t.Context(), false); err != nil || changed {
		t.Fatalf("a node without the fleet lease re-signed the CRL: %v %v", changed, err)
	}
	if changed, err := m.refreshCRL(t.Context(), true); err != nil || !changed {
		t.Fatalf("a CRL half its validity old was kept: %v %v", changed, err)
	}
	if got := m.currentCRL(); got.Number != cur.Number+1 || time.Since(got.ThisUpdate) > time.Minute {
		t.Errorf("re-signed CRL number %d from %v, want %d from now", got.Number, got.ThisUpdate, cur.Number+1)
	}
}
