package ops

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/tlspolicy"
)

// AddComputerRequest is the Manager-initiated activation of an agent waiting on its port.
type AddComputerRequest struct {
	Address    string `json:"address"`               // HOST:PORT of the waiting agent (port 4118 if left out)
	ManagerURL string `json:"manager_url,omitempty"` // the Manager as the agent reaches it (default dsm://HOSTNAME:4120/)
	RelayGroup string `json:"relay_group,omitempty"`
	PolicyID   string `json:"policy_id,omitempty"`
}

// Check validates the request without the database and returns the agent's address.
func (r AddComputerRequest) Check() (string, error) {
	addr := strings.TrimSpace(r.Address)
	if addr == "" {
		return "", invalid("address", "{field} needs HOST:4118, the agent waiting for activation")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, strconv.Itoa(tlspolicy.PortAgent)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return "", invalid("address", "{field} %q: write the agent as HOST:PORT, e.g. web1.example:4118", addr)
	}
	if u := strings.TrimSpace(r.ManagerURL); u != "" && !strings.HasPrefix(u, "dsm://") && !strings.HasPrefix(u, "https://") {
		return "", invalid("manager_url", "{field} %q: the Manager as the agent should reach it, e.g. dsm://manager.example:4120/", u)
	}
	if _, err := (TokenRequest{RelayGroup: r.RelayGroup, PolicyID: r.PolicyID}).Check(); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}

// AddedComputer is what AddComputer did.
type AddedComputer struct {
	GUID    string `json:"guid"`
	Agent   string `json:"agent"`
	Manager string `json:"manager"`
}

// AddComputer activates an agent waiting on HOST:4118: a one-use token valid ten minutes and the fleet
// CA's fingerprint go to the agent, which then activates with the Manager.
func (o *Ops) AddComputer(ctx context.Context, r AddComputerRequest) (AddedComputer, error) {
	addr, err := r.Check()
	if err != nil {
		return AddedComputer{}, err
	}
	tok, err := o.CreateActivationToken(ctx, TokenRequest{Expires: "10m", Uses: 1, RelayGroup: r.RelayGroup, PolicyID: r.PolicyID})
	if err != nil {
		return AddedComputer{}, err
	}
	managerURL := strings.TrimSpace(r.ManagerURL)
	if managerURL == "" {
		managerURL = o.ManagerURL()
	}
	body, _ := json.Marshal(fleetapi.ActivationOffer{URL: managerURL, Token: tok.Token, Fingerprint: tok.Fingerprint})
	// The agent has no identity yet: its throwaway certificate cannot be checked. What protects the
	// activation is the agent's side: it pins the fingerprint sent here (or its pre-bound ca.pem).
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}} // #nosec G402
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+fleetapi.PathActivationOffer, bytes.NewReader(body))
	if err != nil {
		return AddedComputer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return AddedComputer{}, fmt.Errorf("no agent waiting for activation on %s: %v (start it with ds_agent --dir STATE --listen %s)", addr, err, addr)
	}
	defer resp.Body.Close()
	var res struct {
		GUID  string `json:"guid"`
		Error string `json:"error"`
	}
	json.NewDecoder(io.LimitReader(resp.Body, fleetapi.MaxBody)).Decode(&res)
	if resp.StatusCode != http.StatusOK {
		return AddedComputer{}, fmt.Errorf("the agent on %s refused the activation (%s): %s", addr, resp.Status, Cell(res.Error))
	}
	o.hooks.FleetChanged(ctx)
	return AddedComputer{GUID: res.GUID, Agent: addr, Manager: managerURL}, nil
}
