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
	"net/http"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/store"
)

func csrPEM(t testing.TB, key crypto.Signer) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func token(t testing.TB, m *Manager, uses int, expires time.Time) string {
	t.Helper()
	plain, hash, err := auth.NewActivationToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.db.(*store.DB).InsertActivationToken(t.Context(), hash, store.ActivationToken{ExpiresAt: expires.UTC().Format(time.RFC3339Nano), UsesLeft: uses, PolicyID: "p1"}); err != nil {
		t.Fatal(err)
	}
	return plain
}

// Activation over server-authenticated TLS (the agent pins the fleet CA): a valid token buys a
// certificate from the fleet CA; every failure is refused with a reason and changes nothing.
func TestActivation(t *testing.T) {
	m := startManager(t, nil)
	pool := x509.NewCertPool()
	pool.AddCert(m.CA().Cert)
	pinned := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	post := func(req fleetapi.ActivateRequest) (int, fleetapi.ActivateResponse, string) {
		b, _ := json.Marshal(req)
		resp, err := pinned.Post("https://"+m.AgentAddr()+"/agent/v1/activate", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var raw json.RawMessage
		json.NewDecoder(resp.Body).Decode(&raw)
		var ar fleetapi.ActivateResponse
		json.Unmarshal(raw, &ar)
		return resp.StatusCode, ar, string(raw)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := token(t, m, 1, time.Now().Add(time.Hour))
	expired := token(t, m, 5, time.Now().Add(-time.Minute))
	bad := []struct {
		name string
		req  fleetapi.ActivateRequest
		code int
		want string
	}{
		{"unknown token", fleetapi.ActivateRequest{Token: "act_nope", CSR: csrPEM(t, key), Hostname: "web1"}, 403, "unknown, expired or used up"},
		{"expired token", fleetapi.ActivateRequest{Token: expired, CSR: csrPEM(t, key), Hostname: "web1"}, 403, "unknown, expired or used up"},
		{"no CSR", fleetapi.ActivateRequest{Token: good, Hostname: "web1"}, 400, "needs csr (token, csr and hostname are required)"},
		{"garbage CSR", fleetapi.ActivateRequest{Token: good, CSR: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", Hostname: "web1"}, 400, "certificate request"},
		{"weak key", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, weak), Hostname: "web1"}, 400, "at least 2048 bits"},
		{"bad hostname", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "a b"}, 400, `hostname "a b": ' ' is not allowed; a host name is printable characters without spaces`},
		{"hostname with ESC", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web\x1b[31m1"}, 400, `hostname "web\x1b[31m1": U+001B is not allowed; a host name is printable`},
		{"hostname with NUL", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web\x001"}, 400, `hostname "web\x001": U+0000 is not allowed`},
		{"hostname with U+202E", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web\u202egpj.exe"}, 400, `hostname "web\u202egpj.exe": U+202E is not allowed`},
		{"hostname with a C1 control", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web\u0085"}, 400, `U+0085 is not allowed`},
		// json.Marshal sends the invalid byte as U+FFFD, as the Manager's decoder reads raw invalid bytes.
		{"hostname not UTF-8", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web\xff"}, 400, `hostname "web\ufffd" is not UTF-8 text`},
		{"hostname too long", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: strings.Repeat("a", 254)}, 400, `is 254 bytes long; a host name is printable characters without spaces or "/", up to 253 bytes`},
		{"platform too long", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web1", Platform: strings.Repeat("p", 65)}, 400, "platform \"pppppppppppppppppppppppppppppppppppppppp\"… is 65 characters long; use printable characters, up to 64"},
		{"agent_version with ESC", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web1", AgentVersion: "1\x1b[2J"}, 400, "agent_version \"1\\x1b[2J\": U+001B is not allowed"},
		{"tls_versions not versions", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web1", TLSVersions: []string{"TLSv1.2", "TLSv9"}}, 400, "tls_versions[1] \"TLSv9\" is not a protocol version"},
		{"a 1 MB platform", fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web1", Platform: strings.Repeat("p", 1<<20)}, 413, "larger than 65536 bytes"},
	}
	for _, tt := range bad {
		code, _, body := post(tt.req)
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		if code != tt.code || !strings.Contains(e.Error, tt.want) {
			t.Errorf("%s: %d %s, want %d %q", tt.name, code, body, tt.code, tt.want)
		}
	}
	if cs, _ := m.db.(*store.DB).Computers(t.Context()); len(cs) != 0 {
		t.Fatalf("refused activations left computers: %+v", cs)
	}
	// The good token was not spent by the refusals above.
	code, ar, body := post(fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web1", Platform: "linux/amd64", AgentVersion: "20.0.1", TLSVersions: []string{"TLSv1.2", "TLSv1.3"}})
	if code != 200 {
		t.Fatalf("activation: %d %s", code, body)
	}
	block, _ := pem.Decode([]byte(ar.Certificate))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || leaf.Subject.CommonName != ar.GUID {
		t.Errorf("issued certificate: CN %q, GUID %q, verify %v", leaf.Subject.CommonName, ar.GUID, err)
	}
	cs, _ := m.db.(*store.DB).Computers(t.Context())
	if len(cs) != 1 || cs[0].GUID != ar.GUID || cs[0].PolicyID != "p1" || cs[0].TLSVersions != "TLSv1.2,TLSv1.3" {
		t.Errorf("computers: %+v", cs)
	}
	// One use only.
	if code, _, body := post(fleetapi.ActivateRequest{Token: good, CSR: csrPEM(t, key), Hostname: "web2"}); code != 403 {
		t.Errorf("second use of a one-use token: %d %s", code, body)
	}
	// The new identity works as a client certificate on the agent channel, and telemetry names it.
	mtls := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost",
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key}}}}}
	resp, err := mtls.Get("https://" + m.AgentAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m.tel.Flush(t.Context())
	obs, _ := m.db.(*store.DB).Observations(t.Context(), "2000-01-01T00:00:00Z", m.folder.HeartbeatPort)
	named := false
	for _, o := range obs {
		named = named || o.AgentGUID == ar.GUID
	}
	if !named {
		t.Errorf("no observation names the agent %s: %+v", ar.GUID, obs)
	}
}
