package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tlsfleet/internal/pki"
	"tlsfleet/internal/scan"
	"tlsfleet/internal/testtarget"
)

// bins builds tlsfleet, ds_agent, dsm_c and dsa_control once.
var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func bins(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tlsfleet-e2e-bin-")
		if binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", "tlsfleet/cmd/tlsfleet", "tlsfleet/cmd/ds_agent", "tlsfleet/cmd/dsm_c", "tlsfleet/cmd/dsa_control").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// proc is a background process whose output is kept for assertions.
type proc struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) Stop() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(filepath.Join(bins(t), name), args...)}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- %s %s output ---\n%s", name, strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// run runs a command to completion.
func run(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bins(t), name), args...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, code := run(t, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type fleetT struct {
	t                   *testing.T
	dir                 string
	console, agentPort  int
	manager             *proc
	fingerprint, dsmURL string
}

func (f *fleetT) dsm(args ...string) string {
	return mustRun(f.t, "dsm_c", append([]string{"--dir", f.dir}, args...)...)
}

func (f *fleetT) token(uses int, expires string) string {
	out := f.dsm("-action", "createactivationtoken", "-uses", strconv.Itoa(uses), "-expires", expires, "-output", "json")
	var tok struct {
		Token       string `json:"token"`
		Fingerprint string `json:"fingerprint"`
	}
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
		f.t.Fatalf("createactivationtoken: %v\n%s", err, out)
	}
	f.fingerprint = tok.Fingerprint
	return tok.Token
}

var guidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// activate runs dsa_control -a and returns the new GUID.
func (f *fleetT) activate(state, token string, extra ...string) string {
	out := mustRun(f.t, "dsa_control", append([]string{"--dir", state, "-a", f.dsmURL, "token:" + token, "-fingerprint", f.fingerprint}, extra...)...)
	guid := guidRE.FindString(out)
	if guid == "" {
		f.t.Fatalf("no GUID in dsa_control output:\n%s", out)
	}
	return guid
}

func startFleet(t *testing.T) *fleetT {
	testtarget.RequireTool(t, "openssl")
	f := &fleetT{t: t, dir: filepath.Join(t.TempDir(), "manager"), console: testtarget.FreePort(t), agentPort: testtarget.FreePort(t)}
	f.manager = start(t, "tlsfleet", "manager", "--dir", f.dir, "--console-port", strconv.Itoa(f.console), "--heartbeat-port", strconv.Itoa(f.agentPort),
		"--listen", "127.0.0.1", "--heartbeat-seconds", "2")
	f.dsmURL = fmt.Sprintf("dsm://127.0.0.1:%d/", f.agentPort)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	eventually(t, 10*time.Second, "the Manager answering", func() bool {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/healthz", f.console))
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return f
}

func accepts(t *testing.T, addr, version string) bool {
	args := []string{"-" + version}
	if version == "tls1" || version == "tls1_1" {
		args = append(args, "-cipher", "DEFAULT@SECLEVEL=0")
	}
	proto, _, _, _ := testtarget.SClient(context.Background(), addr, args...)
	return proto != ""
}

// The page's relay procedure end to end, with activation, heartbeats, a bundle through the relay, a
// change that waits for a stopped relay, and a legacy agent cut off once TLS 1.2 is enforced.
func TestFleet(t *testing.T) {
	f := startFleet(t)
	// Relays start permissive (the page's "before" state).
	f.dsm("-action", "changesetting", "-name", "settings.configuration.restrictRelayMinimumTLSProtocol", "-value", "TLSv1")

	// Activation and its failures.
	tok := f.token(5, "1h")
	stateA, stateR := filepath.Join(t.TempDir(), "agentA"), filepath.Join(t.TempDir(), "relay")
	if out, code := run(t, "dsa_control", "--dir", filepath.Join(t.TempDir(), "x"), "-a", f.dsmURL, "token:"+tok, "-fingerprint", strings.Repeat("AB:", 31)+"AB"); code == 0 {
		t.Errorf("activation with a wrong fingerprint succeeded:\n%s", out)
	}
	one := f.token(1, "1h")
	f.activate(filepath.Join(t.TempDir(), "once"), one)
	if out, code := run(t, "dsa_control", "--dir", filepath.Join(t.TempDir(), "twice"), "-a", f.dsmURL, "token:"+one, "-fingerprint", f.fingerprint); code == 0 || !strings.Contains(out, "expired or used up") {
		t.Errorf("second use of a one-use token: %d\n%s", code, out)
	}
	// (Expired tokens: internal/manager's TestActivation; dsm_c's shortest expiry is a minute.)
	guidA := f.activate(stateA, tok)
	guidR := f.activate(stateR, tok)

	// The relay and an agent run; the relay gets the role.
	relayPort, relayAgentPort, agentAPort := testtarget.FreePort(t), testtarget.FreePort(t), testtarget.FreePort(t)
	relayAddr := fmt.Sprintf("127.0.0.1:%d", relayPort)
	relay := start(t, "ds_agent", "--dir", stateR, "--listen", fmt.Sprintf("127.0.0.1:%d", relayAgentPort), "--relay-listen", relayAddr)
	f.dsm("-action", "setrelay", "-name", guidR, "-value", "true")
	eventually(t, 10*time.Second, "the relay listening on its port with TLS 1.1 allowed", func() bool { return accepts(t, relayAddr, "tls1_1") })
	agentA := start(t, "ds_agent", "--dir", stateA, "--listen", fmt.Sprintf("127.0.0.1:%d", agentAPort))

	// A bundle published on the Manager reaches the agent through the relay.
	bundle := filepath.Join(t.TempDir(), "update-1.bin")
	data := bytes.Repeat([]byte("tlsfleet update bundle\n"), 1000)
	os.WriteFile(bundle, data, 0o644)
	sum := sha256.Sum256(data)
	hexsum := hex.EncodeToString(sum[:])
	f.dsm("-action", "publishbundle", "-name", "update-1", "-value", bundle)
	eventually(t, 15*time.Second, "the agent holding the bundle", func() bool {
		got, err := os.ReadFile(filepath.Join(stateA, "bundles", hexsum))
		return err == nil && bytes.Equal(got, data)
	})
	if !strings.Contains(agentA.Output(), relayAddr) {
		t.Logf("agent log does not name the relay it used:\n%s", agentA.Output())
	}

	// The page: changesetting restrictRelayMinimumTLSProtocol TLSv1.2, then send policy.
	f.dsm("-action", "changesetting", "–name", "settings.configuration.restrictRelayMinimumTLSProtocol", "-value", "TLSv1.2")
	f.dsm("-action", "sendpolicy", "-allrelays")
	eventually(t, 10*time.Second, "the relay refusing TLS 1.1", func() bool { return !accepts(t, relayAddr, "tls1_1") })
	if !accepts(t, relayAddr, "tls1_2") {
		t.Error("the relay refuses TLS 1.2")
	}

	// A change made while the relay is stopped reaches it when it starts.
	relay.Stop()
	f.dsm("-action", "changesetting", "-name", "settings.configuration.restrictRelayMinimumTLSProtocol", "-value", "TLSv1.3")
	relay = start(t, "ds_agent", "--dir", stateR, "--listen", fmt.Sprintf("127.0.0.1:%d", relayAgentPort), "--relay-listen", relayAddr)
	eventually(t, 10*time.Second, "the restarted relay enforcing TLS 1.3", func() bool {
		return accepts(t, relayAddr, "tls1_3") && !accepts(t, relayAddr, "tls1_2")
	})
	_ = relay
	_ = guidA

	// The legacy simulator: heartbeats while early TLS is allowed, refused once TLS 1.2 is enforced.
	js := filepath.Join(f.dir, "java.security")
	enforced, _ := os.ReadFile(js)
	os.WriteFile(js, []byte(strings.Replace(string(enforced), "TLSv1, TLSv1.1, ", "", 1)), 0o640)
	eventually(t, 5*time.Second, "the agent channel accepting TLS 1.0", func() bool { return accepts(t, fmt.Sprintf("127.0.0.1:%d", f.agentPort), "tls1") })
	stateL := filepath.Join(t.TempDir(), "legacy")
	f.activate(stateL, tok)
	legacy := start(t, "ds_agent", "--dir", stateL, "--listen", fmt.Sprintf("127.0.0.1:%d", testtarget.FreePort(t)), "--legacy-max-tls", "TLSv1", "--report-version", "9.6.0")
	eventually(t, 10*time.Second, "the legacy agent's heartbeat over TLS 1.0", func() bool {
		out, _ := run(t, "dsa_control", "--dir", stateL, "-s")
		return strings.Contains(out, "TLSv1") && !strings.Contains(out, "never")
	})
	os.WriteFile(js, enforced, 0o640)
	eventually(t, 10*time.Second, "the legacy agent refused, with a line on both sides", func() bool {
		return strings.Contains(legacy.Output(), "legacy simulator") && strings.Contains(strings.ToLower(legacy.Output()), "refused") &&
			strings.Contains(f.manager.Output(), "TLS handshake refused by the policy")
	})
}

// Manager-initiated activation: an agent waits on its port, dsm_c addcomputer -activate offers it a token
// and the CA fingerprint, and it activates and checks in. A pre-bound agent refuses another fleet's CA.
func TestManagerInitiatedActivation(t *testing.T) {
	f := startFleet(t)
	port := testtarget.FreePort(t)
	state := filepath.Join(t.TempDir(), "waiting")
	var cert struct {
		Fingerprint string `json:"fingerprint"`
	}
	json.Unmarshal([]byte(f.dsm("-action", "exportdsmcert", "-output", "json")), &cert)
	// An agent told no fleet takes no offers.
	closed := fmt.Sprintf("127.0.0.1:%d", testtarget.FreePort(t))
	untold := start(t, "ds_agent", "--dir", filepath.Join(t.TempDir(), "untold"), "--listen", closed)
	eventually(t, 10*time.Second, "the untold agent saying it takes no offers", func() bool {
		return strings.Contains(untold.Output(), "Manager-initiated activation is off")
	})
	if out, code := run(t, "dsm_c", "--dir", f.dir, "-action", "addcomputer", "-name", closed, "-activate", "-value", f.dsmURL); code != 1 ||
		!strings.Contains(out, "no agent waiting for activation on "+closed) {
		t.Errorf("addcomputer to an agent without a trusted fleet: exit %d, want 1 saying no agent waits there:\n%s", code, out)
	}
	agent := start(t, "ds_agent", "--dir", state, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--activation-fingerprint", cert.Fingerprint)
	waiting := fmt.Sprintf("127.0.0.1:%d", port)
	eventually(t, 10*time.Second, "the agent waiting for an activation", func() bool {
		return strings.Contains(agent.Output(), "the Manager's addcomputer -activate on "+waiting)
	})
	out, code := run(t, "dsm_c", "--dir", f.dir, "-action", "addcomputer", "-name", waiting, "-activate", "-value", f.dsmURL)
	if code != 0 || !strings.Contains(out, "Activated the agent on "+waiting+": GUID ") {
		t.Fatalf("addcomputer: exit %d, want 0 saying it activated the agent:\n%s", code, out)
	}
	guid := guidRE.FindString(out)
	if guid == "" {
		t.Fatalf("addcomputer output has no GUID:\n%s", out)
	}
	eventually(t, 10*time.Second, "the new computer online", func() bool {
		out := f.dsm("-action", "listcomputers", "-output", "json")
		var cs []struct {
			GUID   string `json:"guid"`
			Status string `json:"status"`
		}
		json.Unmarshal([]byte(out), &cs)
		for _, c := range cs {
			if c.GUID == guid && c.Status == "online" {
				return true
			}
		}
		return false
	})
	_ = agent
	// An agent pre-bound to another fleet's CA refuses the offer.
	other := t.TempDir()
	if _, err := pki.LoadOrCreateCA(other); err != nil {
		t.Fatal(err)
	}
	bound := filepath.Join(t.TempDir(), "bound")
	os.MkdirAll(bound, 0o700)
	ca, _ := os.ReadFile(filepath.Join(other, pki.CAFile))
	os.WriteFile(filepath.Join(bound, "ca.pem"), ca, 0o644)
	boundPort := testtarget.FreePort(t)
	boundAgent := start(t, "ds_agent", "--dir", bound, "--listen", fmt.Sprintf("127.0.0.1:%d", boundPort))
	// The caller hears a generic refusal; the agent's own log says why.
	eventually(t, 10*time.Second, "the pre-bound agent refusing another fleet", func() bool {
		out, code := run(t, "dsm_c", "--dir", f.dir, "-action", "addcomputer", "-name", fmt.Sprintf("127.0.0.1:%d", boundPort), "-activate", "-value", f.dsmURL)
		return code != 0 && strings.Contains(out, "this agent refused the activation offer; its log says why") && !strings.Contains(out, "pre-bound") &&
			strings.Contains(boundAgent.Output(), "pre-bound to another fleet CA")
	})
	// Bad input: no agent there, and no -activate.
	if out, code := run(t, "dsm_c", "--dir", f.dir, "-action", "addcomputer", "-name", "127.0.0.1:1", "-activate"); code == 0 || !strings.Contains(out, "no agent waiting") {
		t.Errorf("addcomputer to nobody: %d %s", code, out)
	}
	if out, code := run(t, "dsm_c", "--dir", f.dir, "-action", "addcomputer", "-name", "127.0.0.1:1"); code != 2 || !strings.Contains(out, "add -activate") {
		t.Errorf("addcomputer without -activate: %d %s", code, out)
	}
}

// Manager-initiated communication: once the policy says so, the agent stops its heartbeats, the Manager
// polls its port and pushes the next policy there.
func TestManagerInitiatedDirection(t *testing.T) {
	f := startFleet(t)
	state := filepath.Join(t.TempDir(), "agent")
	guid := f.activate(state, f.token(1, "1h"))
	agentAddr := fmt.Sprintf("127.0.0.1:%d", testtarget.FreePort(t))
	agent := start(t, "ds_agent", "--dir", state, "--listen", agentAddr)
	versions := func() []string {
		res := scan.New().Scan(context.Background(), []string{agentAddr})
		var vs []string
		for _, p := range res.Targets[0].Protocols {
			vs = append(vs, p.Version)
		}
		return vs
	}
	eventually(t, 10*time.Second, "the agent's port answering TLS 1.2 and 1.3", func() bool { return strings.Join(versions(), ",") == "TLSv1.2,TLSv1.3" })
	f.dsm("-action", "changesetting", "-name", "settings.configuration.communicationDirection", "-value", "manager-initiated")
	eventually(t, 10*time.Second, "the agent pausing its heartbeats", func() bool {
		return strings.Contains(agent.Output(), "communication is manager-initiated")
	})
	f.dsm("-action", "changesetting", "-name", "settings.configuration.MinimumTLSProtocolNewNode", "-value", "TLSv1.3")
	eventually(t, 10*time.Second, "the pushed policy restricting the agent's port to TLS 1.3", func() bool { return strings.Join(versions(), ",") == "TLSv1.3" })
	eventually(t, 10*time.Second, "the polled agent online", func() bool {
		var cs []struct {
			GUID   string `json:"guid"`
			Status string `json:"status"`
		}
		json.Unmarshal([]byte(f.dsm("-action", "listcomputers", "-output", "json")), &cs)
		for _, c := range cs {
			if c.GUID == guid {
				return c.Status == "online"
			}
		}
		return false
	})
}
