package manager

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/store"
	"tlsfleet/internal/tlspolicy"
)

// The agent channel (port 4120): activation (activate.go), mutual-TLS heartbeats answered from memory,
// and the bundles relays mirror.

// agentHandler serves port 4120: activation over server-authenticated TLS, then heartbeats and bundles
// over mutual TLS.
func (m *Manager) agentHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST "+fleetapi.PathActivate, m.activate)
	mux.HandleFunc("POST "+fleetapi.PathHeartbeat, m.heartbeat)
	mux.HandleFunc("GET "+fleetapi.PathBundles+"{sha256}", m.bundle)
	mux.HandleFunc("POST "+fleetapi.PathRenew, m.renew)
	mux.HandleFunc("GET "+fleetapi.PathCRL, m.serveCRL)
	return mux
}

// agentIdentity returns the GUID of a verified client certificate, or writes the refusal.
func (m *Manager) agentIdentity(w http.ResponseWriter, r *http.Request) (*compState, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		writeError(w, http.StatusUnauthorized, "this endpoint needs the agent's certificate from the fleet CA (mutual TLS); activate first with dsa_control -a")
		return nil, false
	}
	leaf := r.TLS.PeerCertificates[0]
	guid := leaf.Subject.CommonName
	// The handshake checked the CRL; a connection kept alive across a revocation is checked here.
	if err := m.currentCRL().Check(leaf); err != nil {
		writeError(w, http.StatusForbidden, "%v", err)
		return nil, false
	}
	lookup := func() (*compState, store.Computer) {
		m.fleet.mu.Lock()
		defer m.fleet.mu.Unlock()
		if st := m.fleet.comps[guid]; st != nil {
			return st, st.c
		}
		return nil, store.Computer{}
	}
	st, c := lookup()
	if st == nil || !ownsCert(c, leaf) {
		m.refreshFleet(r.Context()) // activated or renewed through another node, or just now
		st, c = lookup()
	}
	switch {
	case st == nil:
		writeError(w, http.StatusForbidden, "computer %s is not known to this Manager", guid)
		return nil, false
	case c.Deactivated:
		m.log.Warn("refused a deactivated computer", "guid", guid, "hostname", c.Hostname, "client", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "computer %s (%s) is deactivated (dsm_c -action reactivate -name %s undoes it)", guid, c.Hostname, guid)
		return nil, false
	case !ownsCert(c, leaf):
		m.log.Warn("refused a certificate that is not the computer's current one", "guid", guid, "serial", leaf.SerialNumber.Text(16), "client", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "certificate %s is not the current certificate of computer %s (superseded by a renewal)", leaf.SerialNumber.Text(16), guid)
		return nil, false
	}
	return st, true
}

// reachable turns a reported listen address into the one others dial: the address the Manager saw the
// computer come from, with the reported port. (A computer cannot point others at another host.)
func reachable(listen, remote string) string {
	if listen == "" {
		return ""
	}
	_, p, err := net.SplitHostPort(listen)
	if n, perr := strconv.Atoi(p); err != nil || perr != nil || n < 1 || n > 65535 {
		return ""
	}
	rh, _, err := net.SplitHostPort(remote)
	if err != nil || net.ParseIP(rh) == nil {
		return ""
	}
	return net.JoinHostPort(rh, p)
}

// heartbeat answers an agent's check-in from memory; the database sees it in the next batch.
func (m *Manager) heartbeat(w http.ResponseWriter, r *http.Request) {
	st, ok := m.agentIdentity(w, r)
	if !ok {
		return
	}
	var hb fleetapi.Heartbeat
	// Unknown fields are allowed here: a newer agent may report more than this Manager knows.
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, fleetapi.MaxBody))
	if err := dec.Decode(&hb); err != nil {
		writeError(w, bodyErrorStatus(err), "heartbeat: %v", err)
		return
	}
	if err := ops.CheckHeartbeat(hb); err != nil {
		writeError(w, http.StatusBadRequest, "heartbeat: %v", err)
		return
	}
	now := time.Now()
	m.fleet.mu.Lock()
	if cur := m.fleet.comps[st.c.GUID]; cur != nil {
		st = cur // the cache may have been reloaded since agentIdentity
	}
	if st.c.Deactivated {
		m.fleet.mu.Unlock()
		writeError(w, http.StatusForbidden, "computer %s is deactivated", st.c.GUID)
		return
	}
	if hb.Seq <= st.lastSeq {
		last := st.lastSeq
		m.fleet.mu.Unlock()
		m.log.Warn("refused a replayed heartbeat", "guid", st.c.GUID, "seq", hb.Seq, "last", last)
		writeError(w, http.StatusConflict, "heartbeat seq %d is not above the last accepted (%d): a replay", hb.Seq, last)
		return
	}
	st.lastSeq, st.lastSeen = hb.Seq, now
	confirm := "" // the renewed certificate's serial, when this heartbeat is its first
	if sn := r.TLS.PeerCertificates[0].SerialNumber.Text(16); st.c.CertPrevSerial != "" && sn == st.c.CertSerial {
		confirm = sn
	}
	listen := reachable(hb.Listen, r.RemoteAddr)
	relayListen := ""
	if hb.Relay != nil {
		relayListen = reachable(hb.Relay.Listen, r.RemoteAddr)
	}
	// Dirty even when the cache does not know the computer is a relay yet: its role may be committed
	// already, and the release that followed it may have read the database before this address.
	if relayListen != st.c.RelayListen {
		m.fleet.dirty = true
	}
	st.c.Listen, st.c.RelayListen, st.c.PolicyAcked = listen, relayListen, hb.PolicyFingerprint
	m.fleet.pending[st.c.GUID] = store.CheckIn{GUID: st.c.GUID, LastSeen: now.UTC().Format(time.RFC3339Nano), Seq: hb.Seq, Listen: listen,
		RelayListen: relayListen, NegotiatedTLS: tlspolicy.Version(r.TLS.Version).String(), AgentVersion: hb.AgentVersion, Platform: hb.Platform,
		TLSVersions: strings.Join(hb.TLSVersions, ","), PolicyAcked: hb.PolicyFingerprint, Legacy: hb.Legacy}
	resp := fleetapi.HeartbeatResponse{IntervalSeconds: fleetapi.DefaultHeartbeatS, CRLNumber: m.currentCRL().Number}
	if st.policy != nil {
		resp.IntervalSeconds = st.policy.HeartbeatSeconds
		if hb.PolicyFingerprint != st.c.PolicySent {
			resp.Policy = st.policy
		}
	}
	m.fleet.mu.Unlock()
	if hb.Legacy {
		m.log.Info("heartbeat from the legacy simulator", "guid", st.c.GUID, "tls", tlspolicy.Version(r.TLS.Version).String())
	}
	m.recordHandshakes(st.c.GUID, &hb)
	if confirm != "" {
		m.confirmRenewal(r.Context(), st.c.GUID, confirm)
	}
	writeJSON(w, http.StatusOK, resp)
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// bundle serves a published bundle to relays (mutual TLS).
func (m *Manager) bundle(w http.ResponseWriter, r *http.Request) {
	st, ok := m.agentIdentity(w, r)
	if !ok {
		return
	}
	m.fleet.mu.Lock()
	relay := st.c.Relay
	m.fleet.mu.Unlock()
	if !relay {
		writeError(w, http.StatusForbidden, "only relays mirror bundles from the Manager; agents download them from their relays")
		return
	}
	// A bundle may be large: allow an hour instead of the API's write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Hour))
	sum := r.PathValue("sha256")
	if !sha256RE.MatchString(sum) {
		writeError(w, http.StatusBadRequest, "%q is not a SHA-256 (64 lowercase hex digits)", sum)
		return
	}
	f, err := os.Open(filepath.Join(m.folder.Dir, "bundles", sum))
	if errors.Is(err, os.ErrNotExist) {
		writeError(w, http.StatusNotFound, "no bundle %s", sum)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, sum, fi.ModTime(), f)
}
