package agent

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/testtarget"
)

// untouched fails the test if anything connected to ln before now: a connection of the test's own is
// the first ln accepts (the backlog is first in, first out).
func untouched(t *testing.T, ln net.Listener, what string) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.RemoteAddr().String() != c.LocalAddr().String() {
		t.Errorf("%s: the agent connected to %s", what, ln.Addr())
	}
}

// An activation offer makes the agent connect only to the Manager it was told about (--activation-manager)
// or, without that, to the host that offers; anything else is refused before a connection. Callers get
// generic answers — never the pinned fingerprint or what dialling did; the agent's log has the details.
func TestActivationOffers(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	other, err := pki.LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := net.Listen("tcp", "127.0.0.5:0") // another host of the network
	if err != nil {
		t.Fatal(err)
	}
	defer elsewhere.Close()
	sameHost := testtarget.Listen(t) // another port of the offering host
	closed := fmt.Sprintf("127.0.0.1:%d", testtarget.FreePort(t))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waiting := func(t *testing.T, told string) (string, *logBuf) {
		t.Helper()
		addr := fmt.Sprintf("127.0.0.1:%d", testtarget.FreePort(t))
		_, lb := startAgent(t, filepath.Join(t.TempDir(), "state"), Options{Listen: addr, ActivationFingerprint: m.Fingerprint(), ActivationManager: told})
		agenttest.Eventually(t, waitLong, "the agent waiting for offers", func() bool { return strings.Contains(lb.String(), "waiting for an activation") })
		return addr, lb
	}
	offer := func(t *testing.T, addr string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := client.Post("https://"+addr+fleetapi.PathActivationOffer, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			GUID  string
			Error string
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.GUID + e.Error
	}
	tok := func() string {
		tok := fmt.Sprintf("offer-token-%d", tokenSeq.Add(1))
		m.AddToken(tok, 1)
		return tok
	}
	url := func(addr string) string { return "dsm://" + addr + "/" }
	for _, tt := range []struct {
		name    string
		told    string // --activation-manager
		offer   fleetapi.ActivationOffer
		code    int
		answer  string
		log     string       // in the agent's log
		victims net.Listener // must see no connection
	}{
		{"another host", "", fleetapi.ActivationOffer{URL: url(elsewhere.Addr().String()), Fingerprint: m.Fingerprint()}, 403, offerRefused,
			"without --activation-manager, this agent activates only with the host that offers", elsewhere},
		{"another CA", "", fleetapi.ActivationOffer{URL: m.URL(), Fingerprint: other.Fingerprint()}, 403, offerRefused,
			"this agent takes activations only from the fleet CA " + m.Fingerprint(), nil},
		{"nothing at the offered port", "", fleetapi.ActivationOffer{URL: url(closed), Fingerprint: m.Fingerprint()}, 502, offerFailed,
			"connection refused", nil},
		{"not an offer", "", fleetapi.ActivationOffer{URL: m.URL()}, 400, offerMalformed, "is not JSON with url, token and fingerprint", nil},
		{"the offering host", "", fleetapi.ActivationOffer{URL: m.URL(), Fingerprint: m.Fingerprint()}, 200, "", "activated by the Manager", nil},
		{"not the Manager it was told", m.URL(), fleetapi.ActivationOffer{URL: url(sameHost.Addr().String()), Fingerprint: m.Fingerprint()}, 403, offerRefused,
			"this agent takes activations only from " + m.Addr + " (--activation-manager)", sameHost},
		{"the Manager it was told", m.URL(), fleetapi.ActivationOffer{URL: m.URL(), Fingerprint: m.Fingerprint()}, 200, "", "activated by the Manager", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, lb := waiting(t, tt.told)
			if tt.offer.Fingerprint != "" {
				tt.offer.Token = tok()
			}
			code, answer := offer(t, addr, tt.offer)
			switch {
			case code != tt.code:
				t.Errorf("answer %d %q, want %d", code, answer, tt.code)
			case code == 200 && answer == "":
				t.Errorf("activated without a GUID: %q", answer)
			case code != 200 && answer != tt.answer:
				t.Errorf("answer %q, want the generic %q", answer, tt.answer)
			}
			if !strings.Contains(lb.String(), tt.log) {
				t.Errorf("the agent's log lacks %q", tt.log)
			}
			if tt.victims != nil {
				untouched(t, tt.victims, tt.name)
			}
		})
	}
}

// Refused offers reach the log at most once per offerLogEvery, with the count of those left out.
func TestOfferLogLimited(t *testing.T) {
	var l offerLimit
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		at   time.Duration
		ok   bool
		left int
	}{{0, true, 0}, {time.Second, false, 0}, {9 * time.Second, false, 0}, {10 * time.Second, true, 2}, {11 * time.Second, false, 0}, {time.Minute, true, 1}}
	for _, s := range steps {
		if ok, n := l.allow(t0.Add(s.at)); ok != s.ok || n != s.left {
			t.Errorf("at %s: allow = %v, %d; want %v, %d", s.at, ok, n, s.ok, s.left)
		}
	}
}
