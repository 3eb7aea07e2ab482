package dsmc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/tlspolicy"
)

// prepareAddComputer is the Manager-initiated activation: a one-use token valid ten minutes and the
// fleet CA's fingerprint go to an agent waiting on HOST:4118, which then activates with the Manager.
func prepareAddComputer(o *options) (work, error) {
	addr := strings.TrimSpace(o.name.val)
	if !o.name.set || addr == "" {
		return nil, bad("addcomputer needs -name HOST:4118, the agent waiting for activation")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, strconv.Itoa(tlspolicy.PortAgent)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return nil, bad("-name %q: write the agent as HOST:PORT, e.g. web1.example:4118", addr)
	}
	if !o.activate.set || strings.TrimSpace(o.activate.val) == "false" {
		return nil, bad("addcomputer adds a computer by activating it: add -activate")
	}
	managerURL := strings.TrimSpace(o.value.val)
	if o.value.set && !strings.HasPrefix(managerURL, "dsm://") && !strings.HasPrefix(managerURL, "https://") {
		return nil, bad("-value %q: the Manager as the agent should reach it, e.g. dsm://manager.example:4120/", managerURL)
	}
	group, policyID, err := tokenScope(o)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		plain, fp, _, err := issueToken(ctx, s, group, policyID, 10*time.Minute, 1)
		if err != nil {
			return err
		}
		if managerURL == "" {
			h, _ := os.Hostname()
			managerURL = fmt.Sprintf("dsm://%s:%d/", h, s.folder.HeartbeatPort)
		}
		body, _ := json.Marshal(fleetapi.ActivationOffer{URL: managerURL, Token: plain, Fingerprint: fp})
		// The agent has no identity yet: its throwaway certificate cannot be checked. What protects the
		// activation is the agent's side: it pins the fingerprint sent here (or its pre-bound ca.pem).
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}} // #nosec G402
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+net.JoinHostPort(host, port)+fleetapi.PathActivationOffer, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("no agent waiting for activation on %s: %v (start it with tlsfleet agent --dir STATE --listen %s)", addr, err, addr)
		}
		defer resp.Body.Close()
		var res struct {
			GUID  string `json:"guid"`
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&res)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the agent on %s refused the activation (%s): %s", addr, resp.Status, res.Error)
		}
		if s.json {
			return writeJSON(s, map[string]string{"guid": res.GUID, "agent": addr, "manager": managerURL})
		}
		fmt.Fprintf(s.stdout, "Activated the agent on %s: GUID %s (it reaches the Manager at %s)\n", addr, res.GUID, managerURL)
		return nil
	}, nil
}
