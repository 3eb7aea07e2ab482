package manager

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/store"
)

// testAgent is a minimal agent made of the Manager's own wire format, for the Manager's tests.
type testAgent struct {
	guid string
	cert tls.Certificate
	http *http.Client
	seq  uint64
	fp   string
}

func activateTestAgent(t testing.TB, m *Manager, host string) *testAgent {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(m.CA().Cert)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	b, _ := json.Marshal(fleetapi.ActivateRequest{Token: token(t, m, 1, time.Now().Add(time.Hour)), CSR: csrPEM(t, key), Hostname: host})
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	resp, err := c.Post("https://"+m.AgentAddr()+fleetapi.PathActivate, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ar fleetapi.ActivateResponse
	json.NewDecoder(resp.Body).Decode(&ar)
	block, _ := pem.Decode([]byte(ar.Certificate))
	if block == nil {
		t.Fatalf("activation failed: %d", resp.StatusCode)
	}
	cert := tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key}
	return &testAgent{guid: ar.GUID, cert: cert, http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}}}}}
}

func (a *testAgent) beat(t *testing.T, m *Manager, hb fleetapi.Heartbeat) (int, fleetapi.HeartbeatResponse, string) {
	t.Helper()
	if hb.Seq == 0 {
		a.seq++
		hb.Seq = a.seq
	}
	if hb.PolicyFingerprint == "" {
		hb.PolicyFingerprint = a.fp
	}
	b, _ := json.Marshal(hb)
	resp, err := a.http.Post("https://"+m.AgentAddr()+fleetapi.PathHeartbeat, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var hr fleetapi.HeartbeatResponse
	json.Unmarshal(raw, &hr)
	if hr.Policy != nil {
		a.fp = hr.Policy.Fingerprint()
	}
	return resp.StatusCode, hr, string(raw)
}

// Heartbeats over mutual TLS carry the released policy until the agent runs it; replays, deactivated
// computers and certificate-less clients are refused; a relay's address reaches its group's agents;
// relays mirror bundles; send policy reaches an agent's port 4118 at once.
func TestHeartbeatsRelaysAndSendPolicy(t *testing.T) {
	m := startManager(t, func(o *Options) { o.HeartbeatSeconds = 5 })
	agent := activateTestAgent(t, m, "web1")
	relay := activateTestAgent(t, m, "relay1")

	code, hr, body := agent.beat(t, m, fleetapi.Heartbeat{AgentVersion: "1.0", TLSVersions: []string{"TLSv1.2", "TLSv1.3"}})
	if code != 200 || hr.Policy == nil || hr.Policy.Agent.MinVersion != "TLSv1.2" || hr.IntervalSeconds != 5 || hr.Policy.Relay != nil {
		t.Fatalf("first heartbeat: %d %s", code, body)
	}
	if code, hr, _ := agent.beat(t, m, fleetapi.Heartbeat{}); code != 200 || hr.Policy != nil {
		t.Errorf("a heartbeat with the current fingerprint got a policy again: %d %+v", code, hr.Policy)
	}
	if code, _, body := agent.beat(t, m, fleetapi.Heartbeat{Seq: 1}); code != http.StatusConflict || !strings.Contains(body, "replay") {
		t.Errorf("replayed seq: %d %s", code, body)
	}
	// Garbage, oversized heartbeats and bad fields are refused, name the field, and change nothing.
	m.fleet.mu.Lock()
	lastSeq, before := m.fleet.comps[agent.guid].lastSeq, m.fleet.pending[agent.guid]
	m.fleet.mu.Unlock()
	for _, tt := range []struct {
		name string
		body string
		code int
		want string
	}{
		{"not JSON", "not json", 400, "heartbeat: invalid character"},
		{"over the body limit", `{"seq":99,"platform":"` + strings.Repeat("p", fleetapi.MaxBody) + `"}`, 413, "request body too large"},
		{"a 1 MB platform", `{"seq":99,"platform":"` + strings.Repeat("p", 1<<20-64) + `"}`, 400, "heartbeat: platform \"pppp"},
		{"platform with ESC", `{"seq":99,"platform":"linux\u001b[31m"}`, 400, `heartbeat: platform "linux\x1b[31m": U+001B is not allowed; use printable characters, up to 64`},
		{"agent_version with U+202E", `{"seq":99,"agent_version":"1.0\u202e"}`, 400, `agent_version "1.0\u202e": U+202E is not allowed`},
		{"agent_version not UTF-8", "{\"seq\":99,\"agent_version\":\"1.0\xff\"}", 400, `agent_version "1.0\ufffd" is not UTF-8 text`},
		{"too many tls_versions", `{"seq":99,"tls_versions":["TLSv1.2","TLSv1.2","TLSv1.2","TLSv1.2","TLSv1.2","TLSv1.2","TLSv1.2","TLSv1.2","TLSv1.2"]}`, 400, "tls_versions has 9 entries; list at most 8"},
		{"tls_versions not a version", `{"seq":99,"tls_versions":["TLSv1.2","x\u0000"]}`, 400, `tls_versions[1] "x\x00" is not a protocol version`},
		{"policy_fingerprint not hex", `{"seq":99,"policy_fingerprint":"zz"}`, 400, `policy_fingerprint "zz" is not a policy fingerprint`},
		{"listen too long", `{"seq":99,"listen":"` + strings.Repeat("h", 300) + `:4118"}`, 400, "listen \"hhhh"},
		{"relay bundle not a SHA-256", `{"seq":99,"relay":{"listen":":4122","bundles":["abc"]}}`, 400, `relay.bundles[0] "abc" is not a SHA-256`},
		{"negative handshakes_dropped", `{"seq":99,"handshakes_dropped":-1}`, 400, "handshakes_dropped -1 is negative"},
	} {
		resp, err := agent.http.Post("https://"+m.AgentAddr()+fleetapi.PathHeartbeat, "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tt.code || !strings.Contains(e.Error, tt.want) {
			t.Errorf("%s: %d %q, want %d %q", tt.name, resp.StatusCode, e.Error, tt.code, tt.want)
		}
	}
	// (A background flush may have written and emptied the pending check-in meanwhile.)
	m.fleet.mu.Lock()
	st, p := m.fleet.comps[agent.guid], m.fleet.pending[agent.guid]
	if st.lastSeq != lastSeq || p != (store.CheckIn{}) && (p.Seq != before.Seq || p.Platform != before.Platform || p.AgentVersion != before.AgentVersion || p.Listen != before.Listen) {
		t.Errorf("refused heartbeats changed the computer: seq %d (was %d), pending %+v (was %+v)", st.lastSeq, lastSeq, p, before)
	}
	m.fleet.mu.Unlock()
	if code, _, body := agent.beat(t, m, fleetapi.Heartbeat{}); code != 200 {
		t.Errorf("the next good heartbeat after refused ones: %d %s", code, body)
	}
	// No client certificate.
	pool := x509.NewCertPool()
	pool.AddCert(m.CA().Cert)
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	if resp, err := anon.Post("https://"+m.AgentAddr()+fleetapi.PathHeartbeat, "application/json", strings.NewReader("{}")); err != nil || resp.StatusCode != 401 {
		t.Errorf("heartbeat without a certificate: %v %v", resp, err)
	}

	// Relay role, relay address, bundle.
	db := m.db.(*store.DB)
	if err := db.SetRelay(t.Context(), relay.guid, true); err != nil {
		t.Fatal(err)
	}
	bundle := []byte("update bundle 1")
	sum := sha256.Sum256(bundle)
	hexsum := hex.EncodeToString(sum[:])
	os.MkdirAll(filepath.Join(m.folder.Dir, "bundles"), 0o750)
	os.WriteFile(filepath.Join(m.folder.Dir, "bundles", hexsum), bundle, 0o644)
	db.AddBundle(t.Context(), store.Bundle{SHA256: hexsum, Name: "b1", Size: int64(len(bundle))})
	eventually(t, 3*time.Second, "the relay gets the relay role", func() bool {
		_, hr, _ := relay.beat(t, m, fleetapi.Heartbeat{Relay: &fleetapi.RelayStatus{Listen: ":24122"}})
		return relay.fp != "" && hr.Policy != nil && hr.Policy.Relay != nil && len(hr.Policy.Bundles) == 1
	})
	resp, err := relay.http.Get("https://" + m.AgentAddr() + fleetapi.PathBundles + hexsum)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, bundle) {
		t.Errorf("bundle download: %d %q", resp.StatusCode, got)
	}
	eventually(t, 3*time.Second, "the agent learns its group's relay", func() bool {
		_, hr, _ := agent.beat(t, m, fleetapi.Heartbeat{})
		return hr.Policy != nil && len(hr.Policy.Relays) == 1 && hr.Policy.Relays[0] == "127.0.0.1:24122"
	})

	// Send policy now: the Manager calls the agent's 4118.
	pushed := make(chan fleetapi.Policy, 4)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "tlsfleet manager" {
			w.WriteHeader(403)
			return
		}
		var p fleetapi.Policy
		json.NewDecoder(r.Body).Decode(&p)
		pushed <- p
		w.WriteHeader(204)
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{agent.cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	agent.beat(t, m, fleetapi.Heartbeat{Listen: ln.Addr().String()})
	m.flushCheckIns(t.Context()) // the agent's port is in the database: a push goes there
	key := apiKey(t, m)
	var res map[string]any
	if code := call(t, m, "PUT", "/api/settings/settings.configuration.MinimumTLSProtocolNewNode", key, map[string]string{"value": "TLSv1.3"}, &res); code != 200 {
		t.Fatalf("changesetting: %d %v", code, res)
	}
	select {
	case p := <-pushed:
		if p.Agent.MinVersion != "TLSv1.3" {
			t.Errorf("pushed policy %+v", p)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the settings change was not pushed to the agent's port")
	}
	eventually(t, 2*time.Second, "the push acknowledged", func() bool {
		var comps []ops.ComputerView
		call(t, m, "GET", "/api/computers", key, nil, &comps)
		for _, c := range comps {
			if c.GUID == agent.guid {
				return !c.Pending && c.Status == "online"
			}
		}
		return false
	})

	// Deactivation.
	db.SetDeactivated(t.Context(), agent.guid, true)
	eventually(t, 3*time.Second, "a deactivated agent refused", func() bool {
		code, _, _ := agent.beat(t, m, fleetapi.Heartbeat{})
		return code == http.StatusForbidden
	})
}
