package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/install"
	"tlsfleet/internal/store"
	"tlsfleet/internal/store/storetest"
	"tlsfleet/internal/telemetry"
	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlspolicy"
)

// startManager starts a Manager in a fresh install folder on free loopback ports.
func startManager(t *testing.T, tune func(*Options)) *Manager {
	t.Helper()
	o := Options{Dir: filepath.Join(t.TempDir(), "manager"), ConsolePort: testtarget.FreePort(t), HeartbeatPort: testtarget.FreePort(t), Listen: "127.0.0.1",
		PollInterval: 200 * time.Millisecond, FlushInterval: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	if os.Getenv(envTestDB) == install.DatabasePostgres {
		storetest.UseDatabase(t, o.Dir, storetest.Postgres(t), tlspolicy.PortConsole, tlspolicy.PortAgentChannel)
	}
	if tune != nil {
		tune(&o)
	}
	m, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// apiKey creates an API key directly in the Manager's database.
func apiKey(t *testing.T, m *Manager) string {
	t.Helper()
	k, err := auth.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.db.(*store.DB).InsertAPIKey(t.Context(), "test-"+k.Prefix, k.Prefix, k.Hash); err != nil {
		t.Fatal(err)
	}
	return k.Plaintext
}

func apiClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func call(t *testing.T, m *Manager, method, path, key string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+m.ConsoleAddr()+path, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "tlsfleet-test/1.0")
	resp, err := apiClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// handshake runs openssl s_client with one protocol version and returns the negotiated version ("" if
// refused).
func handshake(t *testing.T, addr, version string) string {
	t.Helper()
	args := []string{"-" + version}
	if version == "tls1" || version == "tls1_1" {
		args = append(args, "-cipher", "DEFAULT@SECLEVEL=0")
	}
	proto, _, _, _ := testtarget.SClient(t.Context(), addr, args...)
	return proto
}

// accepts reports which of TLS 1.0–1.3 a port accepts.
func accepts(t *testing.T, addr string) string {
	var got []string
	for _, v := range []string{"tls1", "tls1_1", "tls1_2", "tls1_3"} {
		if p := handshake(t, addr, v); p != "" {
			got = append(got, p)
		}
	}
	return strings.Join(got, ",")
}

// eventually polls cond until it holds or the deadline passes, and returns how long it took.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// The page's procedures on a running Manager, checked with the real openssl s_client: a fresh install
// refuses TLS 1.0/1.1; the page's undo (java.security without TLSv1, TLSv1.1) opens both ports within 2 s
// without a restart; protocols=TLSv1.2 in configuration.properties then restricts 4119 alone; tlsclients
// lists each of those connections with its version and outcome.
func TestEnforcementProcedures(t *testing.T) {
	testtarget.RequireTool(t, "openssl")
	m := startManager(t, nil)
	console, agents := m.ConsoleAddr(), m.AgentAddr()
	for _, addr := range []string{console, agents} {
		if got := accepts(t, addr); got != "TLSv1.2,TLSv1.3" {
			t.Fatalf("fresh install %s accepts %s, want TLSv1.2,TLSv1.3", addr, got)
		}
	}

	// The page's "disable enforcement": java.security without TLSv1 and TLSv1.1.
	js := m.folder.Path(install.JavaSecurityFile)
	data, _ := os.ReadFile(js)
	undone := strings.NewReplacer("TLSv1, TLSv1.1, ", "").Replace(string(data))
	if undone == string(data) {
		t.Fatalf("default java.security does not list TLSv1, TLSv1.1 as expected:\n%s", data)
	}
	if err := os.WriteFile(js, []byte(undone), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{console, agents} {
		took := eventually(t, 2*time.Second, addr+" accepting TLS 1.0 after the java.security edit", func() bool { return handshake(t, addr, "tls1") == "TLSv1.0" })
		t.Logf("%s accepted TLS 1.0 %s after the edit", addr, took.Round(time.Millisecond))
	}
	if got := accepts(t, agents); got != "TLSv1.0,TLSv1.1,TLSv1.2,TLSv1.3" {
		t.Errorf("after the undo the agent port accepts %s", got)
	}

	// The page's "GUI port only": protocols=TLSv1.2 in configuration.properties.
	cfg := m.folder.Path(install.ConfigFile)
	f, _ := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("protocols=TLSv1.2\n")
	f.Close()
	eventually(t, 2*time.Second, "console restricted to TLS 1.2", func() bool { return handshake(t, console, "tls1") == "" })
	if got := accepts(t, console); got != "TLSv1.2" {
		t.Errorf("console accepts %s, want TLSv1.2 only", got)
	}
	if got := accepts(t, agents); got != "TLSv1.0,TLSv1.1,TLSv1.2,TLSv1.3" {
		t.Errorf("agent port accepts %s, want it unchanged", got)
	}

	// tlsclients: every connection above, with version and outcome.
	key := apiKey(t, m)
	var obs []store.Observation
	if code := call(t, m, "GET", "/api/tlsclients?days=1", key, nil, &obs); code != 200 {
		var e map[string]string
		call(t, m, "GET", "/api/tlsclients?days=1", key, nil, &e)
		t.Fatalf("tlsclients: %d %v", code, e)
	}
	count := map[string]int64{}
	for _, o := range obs {
		port := "agent"
		if net.JoinHostPort("127.0.0.1", itoa(o.Port)) == console {
			port = "console"
		}
		count[port+" "+o.Outcome+" "+o.OfferedMax+" "+o.Version] += o.Count
	}
	for _, want := range []string{
		"console rejected TLSv1 ", "console rejected TLSv1.1 ", "agent rejected TLSv1 ", "agent rejected TLSv1.1 ",
		"console accepted TLSv1.2 TLSv1.2", "console accepted TLSv1.3 TLSv1.3", "agent accepted TLSv1 TLSv1",
		"agent accepted TLSv1.1 TLSv1.1", "console accepted TLSv1 TLSv1", "console rejected TLSv1.3 ",
	} {
		if count[want] == 0 {
			t.Errorf("tlsclients lacks %q; have %v", want, count)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestAPIAuthAndSettings(t *testing.T) {
	m := startManager(t, nil)
	for _, key := range []string{"", "tf_000000000000_" + strings.Repeat("A", 43), "Basic abc"} {
		var e map[string]string
		if code := call(t, m, "GET", "/api/settings", key, nil, &e); code != http.StatusUnauthorized || !strings.Contains(e["error"], "createapikey") {
			t.Errorf("key %q: status %d %v, want 401 naming the fix", key, code, e)
		}
	}
	key := apiKey(t, m)
	var list []map[string]any
	if code := call(t, m, "GET", "/api/settings", key, nil, &list); code != 200 || len(list) < 5 {
		t.Fatalf("settings: %d %v", code, list)
	}
	name := "settings.configuration.restrictRelayMinimumTLSProtocol"
	var res map[string]any
	if code := call(t, m, "PUT", "/api/settings/"+name, key, map[string]string{"value": "tlsv1.3"}, &res); code != 200 || res["new"] != "TLSv1.3" || res["old"] != "TLSv1.2" || res["changed"] != true {
		t.Errorf("PUT: %d %v", code, res)
	}
	for _, bad := range []struct {
		path  string
		body  any
		code  int
		error string
	}{
		{name, map[string]string{"value": "TLSv1.0"}, 400, "use one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"},
		{name, map[string]int{"value": 3}, 400, `send a JSON body {"value": "..."}`},
		{"settings.configuration.nope", map[string]string{"value": "x"}, 404, "is not a setting"},
	} {
		var e map[string]string
		if code := call(t, m, "PUT", "/api/settings/"+bad.path, key, bad.body, &e); code != bad.code || !strings.Contains(e["error"], bad.error) {
			t.Errorf("PUT %s %v: %d %v", bad.path, bad.body, code, e)
		}
	}
	if v, _ := m.db.(*store.DB).Settings(t.Context()); v[name] != "TLSv1.3" {
		t.Errorf("stored %v after rejected changes", v)
	}
	ev, _ := m.db.(*store.DB).SettingEvents(t.Context(), name, 10)
	if len(ev) != 1 || !strings.HasPrefix(ev[0].Actor, "api:test-") {
		t.Errorf("events %+v", ev)
	}
	var metrics string
	resp, err := apiClient().Get("https://" + m.ConsoleAddr() + "/metrics")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
	}
	if !strings.Contains(metrics, `tlsfleet_tls_handshakes_total{port="`+itoa(m.folder.ConsolePort)+`",version="TLSv1.3",cipher_suite="TLS_`) {
		t.Errorf("metrics:\n%s", metrics)
	}
}

// Slow and garbage clients are cut off by the handshake and header timeouts, and a flood of idle
// connections is bounded and does not keep a real client out once it times out.
func TestSlowClients(t *testing.T) {
	m := startManager(t, func(o *Options) {
		o.HandshakeTimeout, o.HeaderTimeout, o.MaxConns = 300*time.Millisecond, 300*time.Millisecond, 16
	})
	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		return err == nil // EOF from the server, not our deadline
	}
	// Silent TCP client: the handshake timeout closes it.
	c, _ := net.Dial("tcp", m.ConsoleAddr())
	if !closedWithin(c, 2*time.Second) {
		t.Error("a silent client was not disconnected")
	}
	c.Close()
	// Garbage instead of a ClientHello.
	c, _ = net.Dial("tcp", m.AgentAddr())
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	if !closedWithin(c, 2*time.Second) {
		t.Error("a plaintext client was not disconnected")
	}
	c.Close()
	// TLS done, then half a request header: the header timeout closes it.
	tc, err := tls.Dial("tcp", m.ConsoleAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
	if !closedWithin(tc, 2*time.Second) {
		t.Error("a client that never finishes its header was not disconnected")
	}
	tc.Close()
	// A flood of 64 idle connections against a limit of 16.
	var flood []net.Conn
	for i := 0; i < 64; i++ {
		if c, err := net.Dial("tcp", m.ConsoleAddr()); err == nil {
			flood = append(flood, c)
		}
	}
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	eventually(t, 3*time.Second, "a real client served after the flood times out", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+m.ConsoleAddr()+"/healthz", nil)
		resp, err := apiClient().Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	key := apiKey(t, m)
	var obs []store.Observation
	call(t, m, "GET", "/api/tlsclients", key, nil, &obs)
	failed := false
	for _, o := range obs {
		failed = failed || o.Outcome == "failed"
	}
	if !failed {
		t.Errorf("the failed handshakes are not in tlsclients: %+v", obs)
	}
}

// A restart reuses everything: same CA, same certificate, same settings, no new admin password.
func TestRestartReusesInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	o := Options{Dir: dir, ConsolePort: testtarget.FreePort(t), HeartbeatPort: testtarget.FreePort(t), Listen: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}
	m1, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !m1.FirstStart || m1.InitialPasswordFile == "" {
		t.Fatalf("first start: %v %q", m1.FirstStart, m1.InitialPasswordFile)
	}
	if st, _ := os.Stat(m1.InitialPasswordFile); st.Mode().Perm() != 0o600 {
		t.Errorf("password file mode %v", st.Mode())
	}
	fp := m1.CA().Fingerprint()
	m1.db.(*store.DB).SetSetting(t.Context(), "settings.configuration.enableStrongCiphers", "true", "test")
	m1.Close()
	m2, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if m2.FirstStart || m2.InitialPasswordFile != "" || m2.CA().Fingerprint() != fp {
		t.Errorf("restart: first=%v password=%q CA changed=%v", m2.FirstStart, m2.InitialPasswordFile, m2.CA().Fingerprint() != fp)
	}
	if v, _ := m2.db.(*store.DB).Settings(t.Context()); v["settings.configuration.enableStrongCiphers"] != "true" {
		t.Errorf("settings after restart: %v", v)
	}
}

// A malformed java.security written while running leaves the policy as it was and says why.
func TestBadEditKeepsPolicy(t *testing.T) {
	m := startManager(t, nil)
	js := m.folder.Path(install.JavaSecurityFile)
	os.WriteFile(js, []byte("jdk.tls.disabledAlgorithms=SSLv3、TLSv1\n"), 0o640)
	key := apiKey(t, m)
	eventually(t, 2*time.Second, "the error reported", func() bool {
		var rep map[string]any
		call(t, m, "GET", "/api/policy", key, nil, &rep)
		e, _ := rep["config_error"].(string)
		if !strings.Contains(e, "full-width comma") {
			t.Logf("config_error %q", e)
		}
		return strings.Contains(e, "full-width comma")
	})
	if _, err := tls.Dial("tcp", m.ConsoleAddr(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		t.Error("TLS 1.1 accepted after a broken edit: the old policy must stay")
	}
}

// An empty (or cut) java.security keeps the policy in force: it would otherwise open every version.
func TestEmptyJavaSecurityKeepsPolicy(t *testing.T) {
	m := startManager(t, nil)
	js := m.folder.Path(install.JavaSecurityFile)
	os.WriteFile(js, nil, 0o640)
	key := apiKey(t, m)
	eventually(t, 2*time.Second, "the error reported", func() bool {
		var rep map[string]any
		call(t, m, "GET", "/api/policy", key, nil, &rep)
		e, _ := rep["config_error"].(string)
		return strings.Contains(e, "defines no jdk.tls.disabledAlgorithms")
	})
	if _, err := tls.Dial("tcp", m.AgentAddr(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		t.Error("TLS 1.1 accepted after java.security was emptied")
	}
}

// Server names in the telemetry are the Manager's own, or "other": clients cannot grow it at will.
func TestTelemetrySNI(t *testing.T) {
	m := startManager(t, nil)
	for _, name := range []string{"localhost", "random-1.example", "random-2.example"} {
		c, err := tls.Dial("tcp", m.ConsoleAddr(), &tls.Config{InsecureSkipVerify: true, ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	key := apiKey(t, m)
	eventually(t, 3*time.Second, "the handshakes counted", func() bool {
		var obs []store.Observation
		call(t, m, "GET", "/api/tlsclients", key, nil, &obs)
		names := map[string]int64{}
		for _, o := range obs {
			if o.Port == m.folder.ConsolePort && o.UserAgent == "" {
				names[o.SNI] += o.Count
			}
		}
		return names["localhost"] == 1 && names["other"] == 2 && len(names) == 2
	})
}

// One address holds at most an eighth of the connection slots: the rest of its connections are closed
// at once, and the slots stay for other clients.
func TestConnectionsPerAddress(t *testing.T) {
	m := startManager(t, func(o *Options) { o.MaxConns, o.HandshakeTimeout = 32, 5*time.Second })
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	closedAtOnce := 0
	for i := 0; i < 10; i++ {
		c, err := net.Dial("tcp", m.ConsoleAddr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			closedAtOnce++
		}
	}
	if closedAtOnce != 6 {
		t.Errorf("%d of 10 idle connections from one address were closed at once, want 6 (4 allowed)", closedAtOnce)
	}
}

// 500 requests to the unauthenticated /healthz with 500 distinct User-Agents make a bounded number of
// telemetry rows, not 500 (each row is kept for the retention period).
func TestTelemetryUserAgentsBounded(t *testing.T) {
	m := startManager(t, func(o *Options) { o.FlushInterval = time.Hour }) // only this test flushes

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for i := range 500 {
		req, _ := http.NewRequest("GET", "https://"+m.ConsoleAddr()+"/healthz", nil)
		req.Header.Set("User-Agent", "probe/"+strconv.Itoa(i))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Each handshake was counted at its request, before its answer.
	if err := m.tel.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows, err := m.db.(*store.DB).Observations(t.Context(), "2000-01-01T00:00:00Z", m.folder.ConsolePort)
	if err != nil {
		t.Fatal(err)
	}
	uas := map[string]int64{}
	for _, o := range rows {
		uas[o.UserAgent] += o.Count
	}
	if len(rows) > telemetry.MaxUserAgentsPerPortDay+1 || uas[telemetry.OtherUserAgent] != 500-telemetry.MaxUserAgentsPerPortDay {
		t.Errorf("%d rows for 500 User-Agents (%d as %q), want at most %d", len(rows), uas[telemetry.OtherUserAgent], telemetry.OtherUserAgent, telemetry.MaxUserAgentsPerPortDay+1)
	}
}
