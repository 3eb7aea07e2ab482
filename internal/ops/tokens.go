package ops

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/install"
	"tlsfleet/internal/store"
)

// Activation token limits.
const (
	DefaultTokenLife = 24 * time.Hour
	MinTokenLife     = time.Minute
	MaxTokenLife     = 365 * 24 * time.Hour
	MaxTokenUses     = 100000
)

// ParseExpiry reads a token's life: a Go duration (72h, 90m) or whole days (3d); "" is the default.
func ParseExpiry(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return DefaultTokenLife, nil
	}
	d, ok := parseLife(v)
	if !ok || d < MinTokenLife || d > MaxTokenLife {
		return 0, invalid("expires", "{field} %q: use a Go duration like 24h or 90m, or whole days like 3d, from 1m to 365d (default 24h)", v)
	}
	return d, nil
}

// parseLife reads a Go duration (72h, 90m) or whole days (3d), as token and key lives are given.
func parseLife(v string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days > 100000 {
			return 0, false
		}
		return time.Duration(days) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(v)
	return d, err == nil
}

// TokenRequest asks for an activation token.
type TokenRequest struct {
	Expires    string `json:"expires,omitempty"`     // a Go duration or whole days (3d); default 24h
	Uses       int    `json:"uses,omitempty"`        // activations it allows, 1 to 100000; default 1
	RelayGroup string `json:"relay_group,omitempty"` // the relay group of the computers it activates
	PolicyID   string `json:"policy_id,omitempty"`   // the policy ID of the computers it activates
}

// Check validates the request without the database and returns the token's life.
func (r TokenRequest) Check() (time.Duration, error) {
	life, err := ParseExpiry(r.Expires)
	if err != nil {
		return 0, err
	}
	if r.Uses < 0 || r.Uses > MaxTokenUses {
		return 0, invalid("uses", "{field} \"%d\": use a whole number of activations from 1 to %d (default 1)", r.Uses, MaxTokenUses)
	}
	if g := strings.TrimSpace(r.RelayGroup); g != "" {
		if err := checkLabel("relay_group", "a relay group name", g, MaxLabel); err != nil {
			return 0, err
		}
	}
	if p := strings.TrimSpace(r.PolicyID); p != "" {
		if err := checkLabel("policy_id", "a policy ID", p, MaxLabel); err != nil {
			return 0, err
		}
	}
	return life, nil
}

// Token is a created activation token; Token is its secret, shown this once.
type Token struct {
	Token       string `json:"token"`
	ExpiresAt   string `json:"expires_at"`
	Uses        int    `json:"uses"`
	PolicyID    string `json:"policy_id,omitempty"`
	RelayGroup  string `json:"relay_group,omitempty"`
	Fingerprint string `json:"fingerprint"` // the fleet CA's, which the agent pins
	Command     string `json:"command"`     // the dsa_control command that activates an agent
}

// CreateActivationToken stores a new activation token and returns it with the fleet CA's fingerprint
// and the activation command. The relay group must exist; the CA is read first, since a token is no use
// without the fingerprint.
func (o *Ops) CreateActivationToken(ctx context.Context, r TokenRequest) (Token, error) {
	life, err := r.Check()
	if err != nil {
		return Token{}, err
	}
	if err := o.writable(); err != nil {
		return Token{}, err
	}
	uses := r.Uses
	if uses == 0 {
		uses = 1
	}
	group, policyID := strings.TrimSpace(r.RelayGroup), strings.TrimSpace(r.PolicyID)
	if group != "" {
		if err := o.findGroup(ctx, "relay_group", group); err != nil {
			return Token{}, err
		}
	}
	ca, err := o.ReadFleetCA()
	if err != nil {
		return Token{}, err
	}
	plain, hash, err := auth.NewActivationToken()
	if err != nil {
		return Token{}, err
	}
	expires := o.now().Add(life).UTC().Truncate(time.Second)
	if err := o.store.InsertActivationToken(ctx, hash, store.ActivationToken{ExpiresAt: expires.Format(time.RFC3339Nano),
		UsesLeft: uses, PolicyID: policyID, RelayGroup: group}); err != nil {
		return Token{}, err
	}
	return Token{Token: plain, ExpiresAt: expires.Format(time.RFC3339Nano), Uses: uses, PolicyID: policyID, RelayGroup: group,
		Fingerprint: ca.Fingerprint, Command: fmt.Sprintf("dsa_control -a %s token:%s -fingerprint %s", o.ManagerURL(), plain, ca.Fingerprint)}, nil
}

// ManagerURL is the agent channel's address as agents are told it: dsm://HOST:PORT/, an address the
// Manager really listens on. The running Manager records its agent channel's address in
// install.LockFile: a single address is used as it is; when it listens on every address (or is not
// running), HOST is configuration.properties' manager.publicName, else the machine's host name.
func (o *Ops) ManagerURL() string {
	host, port := "", strconv.Itoa(o.folder.HeartbeatPort)
	if run, err := install.ReadRunning(o.folder.Dir); err == nil && run.AgentAddr != "" {
		if h, p, err := net.SplitHostPort(run.AgentAddr); err == nil {
			port = p
			if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
				host = h
			}
		}
	}
	if host == "" {
		host = o.folder.PublicName
	}
	if host == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "HOST"
		}
	}
	return "dsm://" + net.JoinHostPort(host, port) + "/"
}
