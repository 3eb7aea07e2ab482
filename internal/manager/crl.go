package manager

import (
	"context"
	"crypto/tls"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
)

// The fleet's revocation list on the Manager: signed by the fleet CA whenever the store's CRL number
// moves (a deactivation, a reactivation, a confirmed renewal — made here, by dsm_c or by another node),
// checked on every handshake and request of the agent channel, served on 4120 and pushed to every
// relay's 4118 at once.

// crlResign is the age at which the Manager re-signs an unchanged CRL: half of pki.CRLValidity.
const crlResign = pki.CRLValidity / 2

// crlState holds the current CRL.
type crlState struct {
	mu  sync.Mutex // one signing at a time
	cur atomic.Pointer[pki.CRL]
}

// current is the CRL in force (nil before the first signing).
func (m *Manager) currentCRL() *pki.CRL { return m.crl.cur.Load() }

// refreshCRL signs a new CRL when the store's number differs from the one in force, and reports whether
// it did. Re-signing an unchanged CRL at half its validity is a fleet job: only the node that may bump
// the number (the fleet lease holder) does, and the others follow the new number.
func (m *Manager) refreshCRL(ctx context.Context, mayBump bool) (bool, error) {
	m.crl.mu.Lock()
	defer m.crl.mu.Unlock()
	ver, err := m.db.CRLVersion(ctx)
	if err != nil {
		return false, err
	}
	if cur := m.crl.cur.Load(); cur != nil && cur.Number == ver {
		if time.Since(cur.ThisUpdate) < crlResign || !mayBump {
			return false, nil
		}
		// Half its validity gone: a new number, so that listeners take the re-signed list (without the
		// certificates that expired meanwhile) before its NextUpdate.
		if err := m.db.BumpCRL(ctx); err != nil {
			return false, err
		}
	}
	now := time.Now()
	rows, number, err := m.db.RevokedCerts(ctx, now)
	if err != nil {
		return false, err
	}
	entries := make([]pki.Revoked, 0, len(rows))
	for _, r := range rows {
		sn, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			m.log.Error("a revoked certificate's serial is not hex: left out of the CRL", "serial", r.Serial, "guid", r.Computer)
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, r.RevokedAt)
		if err != nil {
			at = now
		}
		entries = append(entries, pki.Revoked{Serial: sn, RevokedAt: at, Reason: r.Reason})
	}
	der, err := m.ca.SignCRL(number, entries, now)
	if err != nil {
		return false, err
	}
	crl, err := pki.ParseCRL(der, m.ca.Cert)
	if err != nil {
		return false, err
	}
	m.crl.cur.Store(crl)
	m.log.Info("fleet CRL signed", "number", number, "entries", len(entries), "bytes", len(der))
	return true, nil
}

// certsChanged signs the CRL if it changed and, when push says so, pushes it to every relay's port 4118
// at once: the node where the change was made pushes, and the fleet lease holder pushes what changed
// elsewhere (dsm_c, another node).
func (m *Manager) certsChanged(ctx context.Context, push bool) {
	changed, err := m.refreshCRL(ctx, m.isLeader())
	if err != nil {
		m.log.Error("signing the fleet CRL; the previous one stays in force", "err", err)
		return
	}
	if changed && push {
		m.pushCRL()
	}
}

// pushCRL queues the current CRL for every relay that listens on 4118; relays that do not (or are
// offline) fetch it at their next heartbeat, whose answer names its number.
func (m *Manager) pushCRL() {
	m.fleet.mu.Lock()
	var todo []agentJob
	for _, st := range m.fleet.comps {
		if st.c.Relay && !st.c.Deactivated && st.c.Listen != "" {
			todo = append(todo, agentJob{kind: jobCRL, guid: st.c.GUID, addr: st.c.Listen})
		}
	}
	m.fleet.mu.Unlock()
	for _, j := range todo {
		m.pusher.enqueue(j)
	}
}

// checkRevoked is the agent channel's VerifyConnection hook: a client certificate the CRL lists is
// refused in the handshake, resumed sessions included.
func (m *Manager) checkRevoked(cs tls.ConnectionState) error {
	return m.currentCRL().Check(cs.PeerCertificates[0])
}

// serveCRL answers GET PathCRL on 4120 with the current CRL (public: it is signed, and names serials
// only).
func (m *Manager) serveCRL(w http.ResponseWriter, r *http.Request) {
	crl := m.currentCRL()
	if crl == nil {
		writeError(w, http.StatusServiceUnavailable, "the fleet CRL is not signed yet: try again in a second")
		return
	}
	w.Header().Set("Content-Type", fleetapi.CRLContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(crl.DER)))
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(crl.DER)
}
