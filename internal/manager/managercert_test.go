package manager

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/agent"
	"tlsfleet/internal/dsmc"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/install"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/pki"
)

// served is the certificate a port presents to a new connection.
func served(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// names are a certificate's names and addresses.
func names(c *x509.Certificate) []string {
	out := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// A rotated Manager certificate (API, then dsm_c against the running Manager) is in force on both ports
// for the next handshake, with the same names and a new key type, while a running agent keeps
// heartbeating over new connections and accepts the Manager's calls to its port 4118.
func TestRotateManagerCert(t *testing.T) {
	m := startManager(t, func(o *Options) { o.PollInterval = 50 * time.Millisecond })
	// Every heartbeat is a new connection, so a new handshake with the certificate in force.
	for _, s := range m.servers {
		s.SetKeepAlivesEnabled(false)
	}
	dir := filepath.Join(t.TempDir(), "agent")
	act, err := agent.Activate(t.Context(), agent.ActivateOptions{Dir: dir, URL: "dsm://" + m.AgentAddr() + "/", Token: token(t, m, 1, time.Now().Add(time.Hour)),
		Fingerprint: m.CA().Fingerprint(), Hostname: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	beats := make(chan *agent.CheckInResult, 64)
	a, err := agent.Start(t.Context(), agent.Options{Dir: dir, Listen: "127.0.0.1:0", StateCheck: time.Hour,
		Logger: slog.New(slog.DiscardHandler), OnHeartbeat: func(r *agent.CheckInResult, _ error) { beats <- r }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	beat := func(when string) {
		t.Helper()
		a.CheckInNow()
		for {
			select {
			case r := <-beats:
				if r == nil || !r.Accepted {
					t.Fatalf("heartbeat %s: %+v", when, r)
				}
				if len(beats) == 0 {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no heartbeat %s", when)
			}
		}
	}
	beat("before the rotation")
	before := served(t, m.AgentAddr())
	if k := pki.KeyTypeOf(before); k != pki.ECDSAP256 {
		t.Fatalf("a new install serves %s", k)
	}
	key := apiKey(t, m)

	var res ops.CertRotation
	if code := call(t, m, "POST", "/api/managercert/rotate", key, map[string]string{"key": "rsa"}, &res); code != 200 ||
		res.Key != string(pki.RSA2048) || res.PreviousKey != string(pki.ECDSAP256) {
		t.Fatalf("rotate to RSA: %d %+v", code, res)
	}
	for _, addr := range []string{m.ConsoleAddr(), m.AgentAddr()} {
		c := served(t, addr)
		if pki.KeyTypeOf(c) != pki.RSA2048 || pki.Fingerprint(c) != res.Fingerprint || c.CheckSignatureFrom(m.CA().Cert) != nil {
			t.Errorf("%s serves %s %s after the rotation to RSA; want %s from the fleet CA", addr, pki.KeyTypeOf(c), pki.Fingerprint(c), res.Fingerprint)
		}
		if diff := cmp.Diff(names(before), names(c)); diff != "" {
			t.Errorf("%s: the names changed (-before +after):\n%s", addr, diff)
		}
	}
	beat("after the rotation to RSA")
	beat("again after the rotation to RSA")

	// The Manager calls the agent's 4118 with the new certificate, and the agent takes it.
	client := m.pusher.client(act.GUID)
	client.Transport.(*http.Transport).CloseIdleConnections()
	resp, err := client.Get("https://" + a.AgentAddr() + fleetapi.PathStatus)
	if err != nil {
		t.Fatalf("the agent refused the Manager's call after the rotation: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the agent's status after the rotation: %s", resp.Status)
	}

	// dsm_c writes the files; the running Manager follows them.
	var out, errb bytes.Buffer
	if code := dsmc.Run(t.Context(), []string{"--dir", m.Dir(), "-action", "rotatecert", "-ecdsa"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "ecdsa-p256") || !strings.Contains(out.String(), "was rsa-2048") {
		t.Fatalf("dsm_c -action rotatecert -ecdsa: %d\n%s%s", code, out.String(), errb.String())
	}
	eventually(t, 5*time.Second, "the Manager serves the certificate dsm_c made", func() bool {
		return pki.KeyTypeOf(served(t, m.ConsoleAddr())) == pki.ECDSAP256 && pki.KeyTypeOf(served(t, m.AgentAddr())) == pki.ECDSAP256
	})
	beat("after the rotation back to ECDSA")
	if p := m.PolicyReport(); !strings.Contains(toString(p), `"key_algorithm":"EC"`) || strings.Contains(toString(p), `"key_algorithm":"RSA"`) {
		t.Errorf("/api/policy after the rotation back: %s", toString(p))
	}
}

// A rotation that is bad input, or under which a port could complete no handshake, is refused and
// changes no file: here port 4119 offers only an ECDHE_ECDSA suite, which an RSA key cannot serve.
func TestRotateManagerCertRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manager")
	o := options(t, dir)
	if _, err := install.InitFiles(dir, o.ConsolePort, o.HeartbeatPort); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, install.ConfigFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("protocols=TLSv1.2\nciphers=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n")
	f.Close()
	m, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	key := apiKey(t, m)
	pem, _ := os.ReadFile(filepath.Join(dir, pki.ServerFile))
	tests := []struct {
		name string
		body any
		code int
		want string
	}{
		{name: "unknown key type", body: map[string]string{"key": "dsa"}, code: 400, want: `key "dsa" is not a key type: use rsa (RSA-2048) or ecdsa`},
		{name: "unknown field", body: map[string]string{"type": "rsa"}, code: 400, want: "unknown field"},
		{name: "a key type that leaves port 4119 no suite", body: map[string]string{"key": "rsa"}, code: 400,
			want: "could complete no TLS handshake under this policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res map[string]any
			code := call(t, m, "POST", "/api/managercert/rotate", key, tt.body, &res)
			if msg, _ := res["error"].(string); code != tt.code || !strings.Contains(msg, tt.want) {
				t.Errorf("%d %v; want %d and %q", code, res, tt.code, tt.want)
			}
			if now, _ := os.ReadFile(filepath.Join(dir, pki.ServerFile)); !bytes.Equal(now, pem) {
				t.Error("the refused rotation changed manager.pem")
			}
			if k := pki.KeyTypeOf(served(t, m.ConsoleAddr())); k != pki.ECDSAP256 {
				t.Errorf("port 4119 serves %s after a refused rotation", k)
			}
		})
	}
}

// A rotation the running Manager cannot put in force (its java.security has lost its disabledAlgorithms
// line, so no policy can be computed for the new key) is an error, and the previous certificate stays
// in force and on disk: what the files hold is what the ports serve.
func TestRotationNotAppliedIsAnError(t *testing.T) {
	m := startManager(t, nil)
	dir := m.folder.Dir
	before, _ := os.ReadFile(filepath.Join(dir, pki.ServerFile))
	beforeKey, _ := os.ReadFile(filepath.Join(dir, pki.ServerKeyFile))
	if err := os.WriteFile(filepath.Join(dir, install.JavaSecurityFile), []byte("# cut short by an editor\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	code := call(t, m, "POST", "/api/managercert/rotate", apiKey(t, m), map[string]string{"key": "rsa"}, &res)
	if msg, _ := res["error"].(string); code/100 == 2 || !strings.Contains(msg, "the previous one stays in force") {
		t.Fatalf("%d %v; want an error saying the previous certificate stays", code, res)
	}
	after, _ := os.ReadFile(filepath.Join(dir, pki.ServerFile))
	afterKey, _ := os.ReadFile(filepath.Join(dir, pki.ServerKeyFile))
	if !bytes.Equal(after, before) || !bytes.Equal(afterKey, beforeKey) {
		t.Error("manager.pem or its key changed although the rotation was not applied")
	}
	if k := pki.KeyTypeOf(served(t, m.ConsoleAddr())); k != pki.ECDSAP256 {
		t.Errorf("port 4119 serves %s after a rotation that was not applied", k)
	}
}
