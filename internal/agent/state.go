package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/pki"
)

// Files in the state folder.
const (
	KeyFile    = "key.pem"
	CertFile   = "cert.pem"
	CAFile     = "ca.pem"
	StateFile  = "state.json"
	CRLFile    = "crl.der" // the fleet's revocation list (DER), as the Manager last sent it
	BundlesDir = "bundles"
	LockFile   = ".lock"
)

// DefaultDir is dsa_control's state folder when --dir is not given.
const DefaultDir = "var/agent"

// ErrNotActivated is returned when the state folder holds no activated agent.
var ErrNotActivated = errors.New("this agent is not activated: run dsa_control -a dsm://HOST:4120/ token:TOKEN")

// ErrUsage marks errors that a different command line fixes (dsa_control exits 2 for them).
var ErrUsage = errors.New("usage")

// errReset is returned when the state changed identity under a running agent (dsa_control -r, or a new
// activation).
var errReset = errors.New("the agent was reset or activated again")

// State is state.json.
type State struct {
	GUID    string `json:"guid"`
	Manager string `json:"manager"` // HOST:PORT of the agent channel
	// Seq is the last heartbeat sequence number used; the next heartbeat sends Seq+1.
	Seq uint64 `json:"seq"`
	// Replays counts consecutive 409 answers (heartbeat replays); each one moves Seq further ahead.
	Replays       int              `json:"replays,omitempty"`
	Policy        *fleetapi.Policy `json:"policy,omitempty"`
	LastHeartbeat time.Time        `json:"last_heartbeat,omitzero"`
	NegotiatedTLS string           `json:"negotiated_tls,omitempty"`
	LastError     string           `json:"last_error,omitempty"`
	LastErrorAt   time.Time        `json:"last_error_at,omitzero"`
	// Reported is the last heartbeat body the running agent sent (without its Seq): dsa_control -m
	// reports the same listener, relay and TLS facts.
	Reported      *fleetapi.Heartbeat `json:"reported,omitempty"`
	PolicyID      string              `json:"policy_id,omitempty"`
	RelayGroup    string              `json:"relay_group,omitempty"`
	CAFingerprint string              `json:"ca_fingerprint"`
	ActivatedAt   time.Time           `json:"activated_at"`
}

// LoadState reads state.json; ErrNotActivated when there is none.
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotActivated
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w (dsa_control -r resets the agent)", filepath.Join(dir, StateFile), err)
	}
	if st.GUID == "" || st.Manager == "" {
		return nil, fmt.Errorf("%s names no GUID or Manager (dsa_control -r resets the agent)", filepath.Join(dir, StateFile))
	}
	return &st, nil
}

func (st *State) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return pki.WriteFile(filepath.Join(dir, StateFile), append(b, '\n'), 0o600)
}

// lockDir takes the state folder's lock (flock on STATE/.lock), waiting until ctx ends. The lock
// serialises every read-modify-write of state.json between a running agent and dsa_control, so that no
// heartbeat sequence number is ever used twice.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state lock: %w", err)
	}
	fd := int(f.Fd())
	wait := 2 * time.Millisecond
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(fd, unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("state lock %s: %w", f.Name(), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("state lock %s: %w", f.Name(), ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// Reset removes the agent's identity and everything it kept (key, certificate, fleet CA, state,
// bundles), under the state lock. A running agent notices within seconds and waits for a new
// activation. It returns the paths it removed.
func Reset(ctx context.Context, dir string) ([]string, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var removed []string
	for _, name := range []string{StateFile, KeyFile, CertFile, CAFile, BundlesDir,
		StateFile + ".tmp", KeyFile + ".tmp", CertFile + ".tmp", CAFile + ".tmp"} {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return removed, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// LocalStatus is what dsa_control -s shows.
type LocalStatus struct {
	Dir               string `json:"dir"`
	Activated         bool   `json:"activated"`
	GUID              string `json:"guid,omitempty"`
	Manager           string `json:"manager,omitempty"`
	CAFingerprint     string `json:"ca_fingerprint,omitempty"`
	LastHeartbeat     string `json:"last_heartbeat,omitempty"`
	Seq               uint64 `json:"seq"`
	PolicyID          string `json:"policy_id,omitempty"`
	PolicyFingerprint string `json:"policy_fingerprint,omitempty"`
	PolicySerial      int64  `json:"policy_serial,omitempty"`
	Direction         string `json:"direction,omitempty"`
	Relay             bool   `json:"relay"`
	NegotiatedTLS     string `json:"negotiated_tls,omitempty"`
	Listen            string `json:"listen,omitempty"`
	Legacy            bool   `json:"legacy,omitempty"`
	LastError         string `json:"last_error,omitempty"`
	LastErrorAt       string `json:"last_error_at,omitempty"`
	// PreboundCA is the fingerprint of a ca.pem placed before activation (dsm_c -action exportdsmcert).
	PreboundCA string `json:"prebound_ca,omitempty"`
}

// ReadStatus describes the state folder without taking the lock (state.json is replaced atomically).
func ReadStatus(dir string) (*LocalStatus, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	ls := &LocalStatus{Dir: abs}
	st, err := LoadState(dir)
	if errors.Is(err, ErrNotActivated) {
		if ca, err := readCA(filepath.Join(dir, CAFile)); err == nil {
			ls.PreboundCA = pki.Fingerprint(ca)
		}
		return ls, nil
	}
	if err != nil {
		return nil, err
	}
	ls.Activated = true
	ls.GUID, ls.Manager, ls.CAFingerprint, ls.Seq = st.GUID, st.Manager, st.CAFingerprint, st.Seq
	ls.NegotiatedTLS, ls.LastError, ls.PolicyID = st.NegotiatedTLS, st.LastError, st.PolicyID
	if !st.LastHeartbeat.IsZero() {
		ls.LastHeartbeat = st.LastHeartbeat.UTC().Format(time.RFC3339)
	}
	if !st.LastErrorAt.IsZero() {
		ls.LastErrorAt = st.LastErrorAt.UTC().Format(time.RFC3339)
	}
	if p := st.Policy; p != nil {
		ls.PolicyFingerprint, ls.PolicySerial, ls.Direction, ls.Relay = p.Fingerprint(), p.Serial, p.Direction, p.Relay != nil
		if p.PolicyID != "" {
			ls.PolicyID = p.PolicyID
		}
	}
	if st.Reported != nil {
		ls.Listen, ls.Legacy = st.Reported.Listen, st.Reported.Legacy
	}
	return ls, nil
}
