// Package fleetapi is the wire format of the fleet's own channels — the Manager's agent channel (4120),
// the agent's port (4118) and the relay's port (4122): paths, JSON bodies, the policy document an agent
// runs and its fingerprint. Besides the standard library it imports only tlspolicy (for the names of a
// policy's minimum versions), which the agent links anyway, so the agent links it without the Manager's
// database or console. The default ports are tlspolicy's PortAgent, PortConsole, PortAgentChannel and
// PortRelay.
package fleetapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"tlsfleet/internal/tlspolicy"
)

// Paths.
const (
	// On the Manager's agent channel (4120).
	PathActivate  = "/agent/v1/activate"  // POST ActivateRequest → ActivateResponse; server-authenticated TLS
	PathHeartbeat = "/agent/v1/heartbeat" // POST Heartbeat → HeartbeatResponse; mutual TLS
	PathBundles   = "/agent/v1/bundles/"  // GET PathBundles+SHA256 → the bundle's bytes; mutual TLS (relays mirror from here)
	PathRenew     = "/agent/v1/renew"     // POST RenewRequest → RenewResponse; mutual TLS with the certificate to renew
	// PathCRL is the fleet CA's revocation list (DER, CRLContentType): GET on 4120 (agents and relays
	// fetch it when a heartbeat answer names a newer CRLNumber), PUT on 4118 (mutual TLS, the Manager
	// pushes it to relays at once after a deactivation) → 204.
	PathCRL = "/agent/v1/crl"
	// On the agent's port (4118), mutual TLS, called by the Manager.
	PathPolicy = "/agent/v1/policy" // PUT Policy → 204; the Manager's "send policy now"
	PathStatus = "/agent/v1/status" // GET → Status
	// PathActivationOffer is served on 4118 by an agent that is not activated yet: the Manager offers it
	// an activation (dsm_c -action addcomputer -activate). TLS with a throwaway certificate: the agent has
	// no identity yet; the offer's fingerprint protects the agent's side.
	PathActivationOffer = "/agent/v1/activation-offer" // POST ActivationOffer → ActivationOfferResult
	// On a relay's port (4122), TLS with the relay policy.
	PathRelayBundles = "/bundles/" // GET PathRelayBundles+SHA256 → the bundle's bytes
)

// MaxBody bounds every JSON body on these channels.
const MaxBody = 1 << 20

// CRLContentType is the media type of a CRL (RFC 2585); MaxCRL bounds one (about 50 bytes an entry: a
// million entries).
const (
	CRLContentType = "application/pkix-crl"
	MaxCRL         = 64 << 20
)

// RenewRequest asks for a new certificate for the key of CSR (same GUID; its CommonName, if any, must be
// the GUID).
type RenewRequest struct {
	CSR string `json:"csr"` // PEM
}

// RenewResponse carries the renewed certificate. The old one stays valid until the agent heartbeats with
// the new one.
type RenewResponse struct {
	Certificate string `json:"certificate"` // PEM, signed by the fleet CA
}

// ManagerCommonName is the CommonName of the Manager's certificate, which agents check when the Manager
// calls them on 4118.
const ManagerCommonName = "tlsfleet manager"

// ActivateRequest is what an agent sends to activate, over server-authenticated TLS pinned to the fleet
// CA's fingerprint.
type ActivateRequest struct {
	Token        string   `json:"token"`
	CSR          string   `json:"csr"` // PEM
	Hostname     string   `json:"hostname"`
	Platform     string   `json:"platform"`
	AgentVersion string   `json:"agent_version"`
	TLSVersions  []string `json:"tls_versions"`
	// PolicyID and RelayGroup, from dsa_control's policyid: and relaygroupid:, override the token's.
	PolicyID   string `json:"policy_id,omitempty"`
	RelayGroup string `json:"relay_group,omitempty"`
}

// ActivateResponse carries the agent's identity and certificate.
type ActivateResponse struct {
	GUID        string `json:"guid"`
	Certificate string `json:"certificate"` // PEM, signed by the fleet CA
	CA          string `json:"ca"`          // PEM
	PolicyID    string `json:"policy_id,omitempty"`
	RelayGroup  string `json:"relay_group,omitempty"`
}

// Heartbeat is an agent's periodic check-in.
type Heartbeat struct {
	// Seq grows with every heartbeat of an agent (it survives the agent's restarts); the Manager refuses
	// a heartbeat whose Seq is not above the last it accepted (a replay).
	Seq          uint64   `json:"seq"`
	AgentVersion string   `json:"agent_version"`
	Platform     string   `json:"platform"`
	TLSVersions  []string `json:"tls_versions"` // versions the agent's TLS stack can speak
	// PolicyFingerprint is the fingerprint of the policy the agent runs ("" before its first).
	PolicyFingerprint string `json:"policy_fingerprint"`
	// Listen is where the agent serves 4118 ("" when it does not listen: agent-initiated).
	Listen string       `json:"listen,omitempty"`
	Relay  *RelayStatus `json:"relay,omitempty"`
	// Legacy marks the legacy simulator.
	Legacy bool `json:"legacy,omitempty"`
	// Handshakes are what the agent's own ports (4118, a relay's 4122) saw since its last accepted
	// heartbeat, at most MaxHandshakeCounts; HandshakesDropped counts those that did not fit.
	Handshakes        []HandshakeCount `json:"handshakes,omitempty"`
	HandshakesDropped int64            `json:"handshakes_dropped,omitempty"`
}

// HandshakeCount counts the TLS handshakes one of an agent's ports saw that share a key. Outcome is
// accepted, rejected (by the TLS policy) or failed; versions are named as in TLSSettings (TLSv1.2).
type HandshakeCount struct {
	Port       int    `json:"port"`
	ClientIP   string `json:"client_ip"`
	SNI        string `json:"sni,omitempty"`
	AgentGUID  string `json:"agent_guid,omitempty"` // the CommonName of the client's certificate
	OfferedMax string `json:"offered_max,omitempty"`
	Version    string `json:"version,omitempty"`
	Suite      string `json:"cipher_suite,omitempty"`
	Outcome    string `json:"outcome"`
	Reason     string `json:"reason,omitempty"`
	Count      int64  `json:"count"`
	FirstSeen  string `json:"first_seen"` // RFC 3339
	LastSeen   string `json:"last_seen"`
}

// Bounds of a heartbeat's handshake counts: an agent keeps at most MaxHandshakeCounts distinct keys
// between two accepted heartbeats and cuts every string to MaxHandshakeField bytes; the Manager skips
// what exceeds them.
const (
	MaxHandshakeCounts = 1000
	MaxHandshakeField  = 256
)

// RelayStatus is what a relay reports.
type RelayStatus struct {
	Listen  string   `json:"listen"`  // HOST:4122
	Bundles []string `json:"bundles"` // SHA-256 of the bundles it holds
}

// HeartbeatResponse answers a heartbeat.
type HeartbeatResponse struct {
	IntervalSeconds int `json:"interval_seconds"`
	// Policy is set when the agent's fingerprint differs from its current policy.
	Policy   *Policy  `json:"policy,omitempty"`
	Commands []string `json:"commands,omitempty"`
	// CRLNumber is the number of the fleet's current revocation list (0: none yet): an agent whose CRL is
	// older fetches PathCRL.
	CRLNumber int64 `json:"crl_number,omitempty"`
}

// Communication directions, a policy setting.
const (
	Bidirectional     = "bidirectional"
	AgentInitiated    = "agent-initiated"
	ManagerInitiated  = "manager-initiated"
	DefaultHeartbeatS = 600
)

// TLSSettings restrict one of the agent's listeners.
type TLSSettings struct {
	MinVersion    string `json:"min_version"` // one of tlspolicy.ServedVersionNames: TLSv1 ... TLSv1.3
	StrongCiphers bool   `json:"strong_ciphers"`
}

// RelayPolicy turns the relay role on.
type RelayPolicy struct {
	Port  int         `json:"port"`
	Group string      `json:"group"`
	TLS   TLSSettings `json:"tls"`
	// Denied are the GUIDs of deactivated computers: their certificates stay valid until they expire, so
	// relays refuse them by name.
	Denied []string `json:"denied,omitempty"`
}

// Bundle is an update bundle the Manager publishes and relays mirror, addressed by its SHA-256.
type Bundle struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Policy is the document an agent runs. Its fingerprint covers everything but Serial.
type Policy struct {
	// Serial grows with every change of any policy on the Manager; an agent refuses a pushed policy whose
	// Serial is below the one it runs (a replay of an old push).
	Serial           int64       `json:"serial"`
	PolicyID         string      `json:"policy_id"`
	Direction        string      `json:"direction"`
	HeartbeatSeconds int         `json:"heartbeat_seconds"`
	Agent            TLSSettings `json:"agent"`
	// Relay is set when this computer is a relay.
	Relay *RelayPolicy `json:"relay,omitempty"`
	// Relays are the relays of the agent's group (HOST:PORT), in the order this agent should try them.
	Relays []string `json:"relays"`
	// RelayIDs maps each relay address to the GUID its certificate must name, so that no other fleet
	// member can pose as a relay.
	RelayIDs map[string]string `json:"relay_ids,omitempty"`
	Bundles  []Bundle          `json:"bundles"`
	// Managers are the agent channels (HOST:PORT) of every online Manager node when several share one
	// database: an agent whose Manager does not answer tries the next (older agents ignore the field).
	// Absent with one node, so that a single Manager's policies stay as they were.
	Managers []string `json:"managers,omitempty"`
}

// Fingerprint is the SHA-256 of the policy's canonical JSON without its Serial.
func (p *Policy) Fingerprint() string {
	c := *p
	c.Serial = 0
	b, err := json.Marshal(c)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Validate checks a received policy.
func (p *Policy) Validate() error {
	switch p.Direction {
	case Bidirectional, AgentInitiated, ManagerInitiated:
	default:
		return fmt.Errorf("policy direction %q: use %s, %s or %s", p.Direction, Bidirectional, AgentInitiated, ManagerInitiated)
	}
	if p.HeartbeatSeconds < 1 || p.HeartbeatSeconds > 86400 {
		return fmt.Errorf("policy heartbeat %d s: must be 1..86400", p.HeartbeatSeconds)
	}
	check := func(what string, t TLSSettings) error {
		names := tlspolicy.ServedVersionNames()
		if slices.Contains(names, t.MinVersion) {
			return nil
		}
		last := len(names) - 1
		return fmt.Errorf("policy %s minimum %q: use %s or %s", what, t.MinVersion, strings.Join(names[:last], ", "), names[last])
	}
	if err := check("agent", p.Agent); err != nil {
		return err
	}
	if p.Relay != nil {
		if err := check("relay", p.Relay.TLS); err != nil {
			return err
		}
		if p.Relay.Port < 1 || p.Relay.Port > 65535 {
			return fmt.Errorf("policy relay port %d", p.Relay.Port)
		}
	}
	for _, m := range p.Managers {
		if _, port, err := net.SplitHostPort(m); err != nil || port == "" {
			return fmt.Errorf("policy manager node %q is not HOST:PORT", m)
		}
	}
	for _, b := range p.Bundles {
		if len(b.SHA256) != 64 || strings.Trim(b.SHA256, "0123456789abcdef") != "" {
			return fmt.Errorf("policy bundle %q: SHA-256 %q is not 64 hex digits", b.Name, b.SHA256)
		}
	}
	return nil
}

// ActivationOffer is a Manager-initiated activation.
type ActivationOffer struct {
	URL         string `json:"url"`         // dsm://HOST:4120/ as the agent should reach the Manager
	Token       string `json:"token"`       // a one-use activation token
	Fingerprint string `json:"fingerprint"` // SHA-256 of the fleet CA
}

// ActivationOfferResult answers an offer.
type ActivationOfferResult struct {
	GUID string `json:"guid"`
}

// Status is what GET /agent/v1/status on 4118 returns.
type Status struct {
	GUID              string `json:"guid"`
	Manager           string `json:"manager"`
	PolicyFingerprint string `json:"policy_fingerprint"`
	PolicySerial      int64  `json:"policy_serial"`
	LastHeartbeat     string `json:"last_heartbeat"`
	NegotiatedTLS     string `json:"negotiated_tls"`
	Relay             bool   `json:"relay"`
	// CRLNumber is the fleet CRL the agent holds (-1: none; absent from older agents). A relay polled
	// by the Manager (manager-initiated: it sends no heartbeats) that is behind gets the newer list.
	CRLNumber *int64 `json:"crl_number,omitempty"`
}

// WriteJSON answers with v as indented JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// WriteError answers with {"error": "..."}: the fleet's channels and the REST API all say why.
func WriteError(w http.ResponseWriter, code int, format string, args ...any) {
	WriteJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}
