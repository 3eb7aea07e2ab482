package agent

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/testtarget"
)

// putCRLTo PUTs a CRL to an agent's 4118 as the Manager does.
func putCRLTo(t *testing.T, m *agenttest.Manager, addr, guid string, der []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, "https://"+addr+fleetapi.PathCRL, bytes.NewReader(der))
	req.Header.Set("Content-Type", fleetapi.CRLContentType)
	c := m.AgentClient(guid)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// relayStatus asks a relay for a bundle with cert; err is a refused handshake.
func relayStatus(addr string, cert tls.Certificate) (int, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + fleetapi.PathRelayBundles + strings.Repeat("0", 64))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func signCRL(t *testing.T, ca *pki.CA, number int64, serials ...*big.Int) []byte {
	t.Helper()
	var entries []pki.Revoked
	for _, sn := range serials {
		entries = append(entries, pki.Revoked{Serial: sn, RevokedAt: time.Now(), Reason: pki.ReasonCertificateHold})
	}
	der, err := ca.SignCRL(number, entries, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A relay takes the Manager's CRL on 4118 — only the fleet CA's, never an older one — and from then on
// its 4122 refuses the listed certificates in the handshake, also after a restart (crl.der).
func TestRelayTakesPushedCRL(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	a, dir, guid := startRelay(t, m)
	held, fine := m.IssueCert(t, "held-agent"), m.IssueCert(t, "fine-agent")
	other, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		der      []byte
		wantCode int
		wantMsg  string
	}{
		{"garbage", []byte("garbage"), http.StatusBadRequest, "CRL: "},
		{"another CA's CRL", signCRL(t, other, 9, held.Leaf.SerialNumber), http.StatusBadRequest, "not signed by this fleet's CA"},
		{"the fleet's CRL", signCRL(t, m.CA, 5, held.Leaf.SerialNumber), http.StatusNoContent, ""},
		{"an older CRL", signCRL(t, m.CA, 4), http.StatusConflict, "CRL number 4 is older than the CRL in force (5)"},
		{"the same number again", signCRL(t, m.CA, 5), http.StatusNoContent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg := putCRLTo(t, m, a.AgentAddr(), guid, tt.der)
			if code != tt.wantCode || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("PUT %s: %d %s, want %d %q", fleetapi.PathCRL, code, msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
	check := func(when string) {
		t.Helper()
		if code, err := relayStatus(a.RelayAddr(), held); err == nil {
			t.Errorf("%s: the held certificate got %d, want a refused handshake", when, code)
		}
		if code, err := relayStatus(a.RelayAddr(), fine); code != http.StatusNotFound {
			t.Errorf("%s: another certificate got %d %v, want 404 (served)", when, code, err)
		}
	}
	check("after the push")
	a.Close()
	a, _ = startAgent(t, dir, Options{RelayListen: "127.0.0.1:0"})
	agenttest.Eventually(t, waitLong, "the relay port", func() bool { return a.RelayAddr() != "" })
	check("after a restart")
}

// An interrupted renewal is finished when its certificate reached the disk, and dropped when only its
// key did; the current pair is never left mismatched.
func TestRecoverRenewal(t *testing.T) {
	tests := []struct {
		name              string
		files             map[string]string // name → content before
		wantKey, wantCert string
	}{
		{"nothing to do", map[string]string{KeyFile: "k1", CertFile: "c1"}, "k1", "c1"},
		{"both written, none renamed", map[string]string{KeyFile: "k1", CertFile: "c1", KeyFile + nextSuffix: "k2", CertFile + nextSuffix: "c2"}, "k2", "c2"},
		{"key renamed, certificate not", map[string]string{KeyFile: "k2", CertFile: "c1", CertFile + nextSuffix: "c2"}, "k2", "c2"},
		{"only the key written", map[string]string{KeyFile: "k1", CertFile: "c1", KeyFile + nextSuffix: "k2"}, "k1", "c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600)
			}
			if err := recoverRenewal(dir); err != nil {
				t.Fatal(err)
			}
			if got := string(readFile(t, filepath.Join(dir, KeyFile))); got != tt.wantKey {
				t.Errorf("key %q, want %q", got, tt.wantKey)
			}
			if got := string(readFile(t, filepath.Join(dir, CertFile))); got != tt.wantCert {
				t.Errorf("certificate %q, want %q", got, tt.wantCert)
			}
			for _, f := range []string{KeyFile + nextSuffix, CertFile + nextSuffix} {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s left behind", f)
				}
			}
		})
	}
}

// Renewal is due two thirds into a certificate's lifetime.
func TestRenewAt(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	c := m.IssueCert(t, "g").Leaf
	life := c.NotAfter.Sub(c.NotBefore)
	if got, want := renewAt(c), c.NotBefore.Add(life*2/3); !got.Equal(want) {
		t.Errorf("renewAt = %v, want %v", got, want)
	}
	if d := renewAt(c).Sub(c.NotBefore); d < 243*24*time.Hour || d > 244*24*time.Hour {
		t.Errorf("a year's certificate renews after %v, want about 243 days", d)
	}
}

// A handshake the server refuses for the client's certificate (as the fleet's listeners refuse a
// revoked one) is told apart from other failures, so that the agent says why and retries slowly.
func TestCertRefused(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	cert := m.IssueCert(t, "g")
	tests := []struct {
		name   string
		server *tls.Config
		want   bool
	}{
		{"certificate refused", &tls.Config{Certificates: []tls.Certificate{m.Cert}, ClientAuth: tls.RequireAnyClientCert,
			VerifyConnection: func(tls.ConnectionState) error { return errors.New("revoked") }}, true},
		{"version refused", &tls.Config{Certificates: []tls.Certificate{m.Cert}, MinVersion: tls.VersionTLS13}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := testtarget.Listen(t)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				s := tls.Server(c, tt.server)
				s.Handshake()
				s.Close()
			}()
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12})
			if err == nil {
				_, err = c.Read(make([]byte, 1))
				c.Close()
			}
			if got := certRefused(err); got != tt.want {
				t.Errorf("certRefused(%v) = %v, want %v", err, got, tt.want)
			}
		})
	}
}
