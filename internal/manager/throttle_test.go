package manager

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/fleetapi"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func failN(th *activationThrottle, key string, n int) {
	for range n {
		th.failed(key)
	}
}

// The throttle's rules on a hand-moved clock: blocked after activationMaxFailures, until the window's
// end; a success forgets; other sources are unaffected; the sources tracked are bounded; one log line
// per source and minute.
func TestActivationThrottleRules(t *testing.T) {
	type step func(t *testing.T, th *activationThrottle, c *fakeClock)
	blocked := func(key string, want bool, wantWait time.Duration) step {
		return func(t *testing.T, th *activationThrottle, c *fakeClock) {
			t.Helper()
			if wait, got := th.blocked(key); got != want || wait != wantWait {
				t.Errorf("blocked(%s) = %v, %s; want %v, %s", key, got, wait, want, wantWait)
			}
		}
	}
	fail := func(key string, n int) step {
		return func(_ *testing.T, th *activationThrottle, _ *fakeClock) { failN(th, key, n) }
	}
	wait := func(d time.Duration) step {
		return func(_ *testing.T, _ *activationThrottle, c *fakeClock) { c.add(d) }
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"under the threshold", []step{fail("a", activationMaxFailures-1), blocked("a", false, 0)}},
		{"at the threshold until the window ends", []step{fail("a", activationMaxFailures), blocked("a", true, activationWindow),
			wait(activationWindow - time.Second), blocked("a", true, time.Second), wait(time.Second), blocked("a", false, 0)}},
		{"another source is not blocked", []step{fail("a", activationMaxFailures), blocked("b", false, 0)}},
		{"a success forgets", []step{fail("a", activationMaxFailures-1), func(_ *testing.T, th *activationThrottle, _ *fakeClock) { th.succeeded("a") },
			fail("a", activationMaxFailures-1), blocked("a", false, 0)}},
		{"failures in an ended window do not count", []step{fail("a", activationMaxFailures-1), wait(activationWindow), fail("a", 1), blocked("a", false, 0)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClock()
			th := newActivationThrottle(c.now)
			for _, s := range tt.steps {
				s(t, th, c)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		c := newFakeClock()
		th := newActivationThrottle(c.now)
		th.addresses = 3
		for i := range 10 {
			failN(th, "10.0.0."+strconv.Itoa(i), activationMaxFailures)
		}
		if n := th.tracked(); n != 3 {
			t.Errorf("%d sources tracked, want at most 3", n)
		}
		if _, b := th.blocked("10.0.0.9"); !b {
			t.Error("the newest source was forgotten instead of the oldest")
		}
	})
	t.Run("one log line per source and minute", func(t *testing.T) {
		c := newFakeClock()
		th := newActivationThrottle(c.now)
		lines := 0
		for range 300 {
			if ok, _ := th.mayLog("a"); ok {
				lines++
			}
			c.add(time.Second)
		}
		if lines != 5 {
			t.Errorf("%d lines in 5 minutes, want 5", lines)
		}
		if ok, n := th.mayLog("a"); !ok || n != 59 {
			t.Errorf("the next minute's line: %v, %d not logged; want true, 59", ok, n)
		}
		if ok, _ := th.mayLog("b"); !ok {
			t.Error("another source's first line was suppressed")
		}
	})
}

func TestThrottleKey(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1:4120", "127.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:4120", "2001:db8:1:2::/64"},
		{"[::ffff:10.0.0.1]:1", "10.0.0.1"},
		{"garbage", "garbage"},
	} {
		if got := throttleKey(tt.in); got != tt.want {
			t.Errorf("throttleKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// 300 wrong tokens from one address: after activationMaxFailures refusals every answer is 429 with
// Retry-After, without the token being looked at (a valid token sent then is not spent); the log has
// one line about that address; another address still activates.
func TestActivationThrottled(t *testing.T) {
	var logs agenttest.SyncBuffer
	m := startManager(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := csrPEM(t, key)
	from := func(ip string) *http.Client {
		pool := x509.NewCertPool()
		pool.AddCert(m.CA().Cert)
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext,
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	}
	post := func(c *http.Client, tok, host string) (int, string, string) {
		b, _ := json.Marshal(fleetapi.ActivateRequest{Token: tok, CSR: csr, Hostname: host})
		resp, err := c.Post("https://"+m.AgentAddr()+fleetapi.PathActivate, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, resp.Header.Get("Retry-After"), e.Error
	}
	attacker := from("127.0.0.1")
	start := time.Now()
	long := strings.Repeat("h", 200) // a valid host name, too long to log whole
	codes := map[int]int{}
	for i := range 300 {
		code, retry, msg := post(attacker, "act_wrong"+strconv.Itoa(i), long)
		codes[code]++
		switch {
		case i < activationMaxFailures && code != http.StatusForbidden:
			t.Fatalf("wrong token %d: %d %s, want 403", i, code, msg)
		case i >= activationMaxFailures && code != http.StatusTooManyRequests:
			t.Fatalf("wrong token %d: %d %s, want 429", i, code, msg)
		case code == http.StatusTooManyRequests:
			if s, err := strconv.Atoi(retry); err != nil || s < 1 || s > int(activationWindow/time.Second) {
				t.Fatalf("429 with Retry-After %q, want 1..%d seconds", retry, int(activationWindow/time.Second))
			}
			if !strings.Contains(msg, "too many activations with wrong tokens from 127.0.0.1: try again in ") {
				t.Fatalf("429 says %q", msg)
			}
		}
	}
	good := token(t, m, 1, time.Now().Add(time.Hour))
	if code, _, msg := post(attacker, good, "web1"); code != http.StatusTooManyRequests {
		t.Errorf("a valid token from the throttled address: %d %s, want 429", code, msg)
	}
	if code, _, msg := post(from("127.0.0.2"), good, "web2"); code != http.StatusOK {
		t.Errorf("another address with the token the throttled one sent: %d %s, want 200 (the token was not spent)", code, msg)
	}
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "client=127.0.0.1") {
			lines = append(lines, l)
		}
	}
	if minutes := int(time.Since(start)/time.Minute) + 1; len(lines) > minutes || len(lines) == 0 {
		t.Errorf("%d WARN lines about 127.0.0.1 in %d minute(s), want 1 to %d:\n%s", len(lines), minutes, minutes, strings.Join(lines, "\n"))
	}
	if len(lines) > 0 && (strings.Contains(lines[0], long) || !strings.Contains(lines[0], strings.Repeat("h", 60)+"…")) {
		t.Errorf("the log line does not cut the client's host name: %s", lines[0])
	}
	t.Logf("answers: %v", codes)
}
