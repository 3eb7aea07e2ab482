// Package agent is the agent side of tlsfleet: activation against the Manager's agent channel (pinned
// to the fleet CA), the state folder, heartbeats over mutual TLS with jitter and exponential backoff, the
// agent's own port 4118 (the Manager pushes policies there), the relay role (port 4122: bundles mirrored
// from the Manager and served to agents) and bundle downloads from relays, plus a legacy simulator that
// speaks only TLS 1.0/1.1 as old agents do.
//
// It speaks the wire format of tlsfleet/internal/fleetapi and takes its listeners' TLS settings from
// tlsfleet/internal/tlspolicy; it never links the Manager's database or console (see deps_test.go).
//
// The state folder holds:
//
//	key.pem     the agent's ECDSA P-256 key (0600), made at activation
//	cert.pem    the agent's certificate from the fleet CA (CommonName and DNS SAN = GUID)
//	ca.pem      the fleet CA: the only trust anchor for the Manager, relays and the Manager's calls
//	state.json  GUID, Manager, heartbeat sequence, the policy in force, last heartbeat, last error
//	bundles/    update bundles, named by their SHA-256
//	.lock       flock(2) taken around every read-modify-write of state.json
//
// Entry points: Activate (dsa_control -a), Start and Run (ds_agent, through internal/agent/agentcmd),
// CheckIn (dsa_control -m), Reset (dsa_control -r), ReadStatus (dsa_control -s), and
// LegacyClientConfig/ExplainRefusal for the legacy simulators.
package agent
