package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"syscall"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/tlspolicy"
)

// ManagerError is a heartbeat the Manager answered with an error status.
type ManagerError struct {
	Status  int
	Message string
}

func (e *ManagerError) Error() string {
	switch e.Status {
	case http.StatusForbidden:
		return "the Manager refused this agent: " + e.Message
	case http.StatusConflict:
		return "the Manager refused the heartbeat as a replay: " + e.Message
	}
	return fmt.Sprintf("the Manager answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// CheckInResult is what one heartbeat did.
type CheckInResult struct {
	Seq        uint64
	Manager    string
	TLSVersion string // negotiated, e.g. TLSv1.3
	Resumed    bool   // this connection's TLS session was resumed (a kept-alive connection keeps its flag)
	// Accepted is set when the Manager answered 200.
	Accepted bool
	Response fleetapi.HeartbeatResponse
	// PolicyChanged is set when the answer carried a policy, which is now in Policy and state.json.
	PolicyChanged bool
	Policy        *fleetapi.Policy
	// SeqSkippedTo is set after a 409 (replay): the sequence number the next heartbeat continues above.
	SeqSkippedTo uint64
	// FailedOver names the Manager node the agent used before, when this heartbeat went to another
	// (Manager) because that one did not answer; Unreachable lists the nodes that did not.
	FailedOver  string
	Unreachable []string
}

// heartbeatTimeout bounds one heartbeat, handshake included.
const heartbeatTimeout = 60 * time.Second

// replaySkip is how far Seq jumps after the Manager calls a heartbeat a replay (409): 1000, doubled with
// each consecutive 409 (state restored from an old backup catches up in a few heartbeats).
func replaySkip(replays int) uint64 { return 1000 << min(replays, 30) }

// newManagerClient is the mutual-TLS client to the Manager's agent channel. One client (one
// connection, kept alive) serves every heartbeat, and the session cache lets a new connection resume
// instead of paying for a full mutual-TLS handshake.
func newManagerClient(id *identity, legacyMax tlspolicy.Version) *http.Client {
	cfg := clientConfig(legacyMax)
	// Any node's certificate from the fleet CA for the address dialled: ServerName is left to the
	// transport, which takes each request's host (the agent fails over between Manager nodes).
	cfg.RootCAs = id.pool
	cfg.Certificates = []tls.Certificate{id.client}
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	return &http.Client{
		// No overall timeout: heartbeats bound themselves (heartbeatTimeout), bundle mirroring can take long.
		Transport: &http.Transport{
			TLSClientConfig:       cfg,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConnsPerHost:   1,
			// IdleConnTimeout 0: keep the connection between heartbeats for as long as the Manager does.
		},
	}
}

// heartbeatOnce sends one heartbeat under the state lock: read state, take the next Seq and persist it
// before sending (a crash never reuses it), send, record the answer. A policy in the answer is validated,
// stored and handed to apply (still under the lock); before sending, prepare sees the state (a running
// agent applies a policy that dsa_control -m stored meanwhile).
func heartbeatOnce(ctx context.Context, dir, guid string, client *http.Client, body func(*State) fleetapi.Heartbeat,
	prepare func(*State) error, apply func(*fleetapi.Policy) error) (*CheckInResult, error) {
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := LoadState(dir)
	if err != nil {
		if errors.Is(err, ErrNotActivated) {
			return nil, errReset
		}
		return nil, err
	}
	if st.GUID != guid {
		return nil, errReset
	}
	if prepare != nil {
		if err := prepare(st); err != nil {
			return nil, err
		}
	}
	st.Seq++
	if err := st.save(dir); err != nil {
		return nil, fmt.Errorf("persist heartbeat seq: %w", err)
	}
	hb := body(st)
	hb.Seq = st.Seq
	res := &CheckInResult{Seq: st.Seq, Manager: st.Manager, Policy: st.Policy}
	fail := func(err error) (*CheckInResult, error) {
		st.LastError, st.LastErrorAt = err.Error(), time.Now().UTC()
		if serr := st.save(dir); serr != nil {
			return res, errors.Join(err, serr)
		}
		return res, err
	}
	resp, raw, err := sendHeartbeat(ctx, dir, st, &hb, client, res)
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err() // stopping: not the Manager's fault
		}
		return fail(err)
	}
	if resp.TLS != nil {
		res.TLSVersion = tlspolicy.Version(resp.TLS.Version).String()
		res.Resumed = resp.TLS.DidResume
	}
	if res.Manager != st.Manager {
		res.FailedOver, st.Manager = st.Manager, res.Manager // the node that answers is the one to keep
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusConflict:
		skip := replaySkip(st.Replays)
		st.Replays++
		st.Seq += skip
		res.SeqSkippedTo = st.Seq
		return fail(&ManagerError{Status: resp.StatusCode, Message: errorMessage(raw)})
	default:
		return fail(&ManagerError{Status: resp.StatusCode, Message: errorMessage(raw)})
	}
	if len(raw) > fleetapi.MaxBody {
		return fail(fmt.Errorf("heartbeat to %s: the answer exceeds %d bytes", res.Manager, fleetapi.MaxBody))
	}
	var hr fleetapi.HeartbeatResponse
	if err := json.Unmarshal(raw, &hr); err != nil {
		return fail(fmt.Errorf("heartbeat to %s: bad answer: %w", res.Manager, err))
	}
	res.Response, res.Accepted = hr, true
	st.Replays = 0
	st.LastHeartbeat = time.Now().UTC()
	st.NegotiatedTLS = res.TLSVersion
	st.LastError, st.LastErrorAt = "", time.Time{}
	hb.Seq, hb.Handshakes, hb.HandshakesDropped = 0, nil, 0 // counts are reported once, never again by dsa_control -m
	st.Reported = &hb
	var applyErr error
	if p := hr.Policy; p != nil {
		if err := p.Validate(); err != nil {
			st.LastError, st.LastErrorAt = fmt.Sprintf("the Manager sent an invalid policy (kept the current one): %v", err), time.Now().UTC()
		} else {
			// A heartbeat answer cannot be a replay (it answers this Seq over mutual TLS), so its
			// policy applies whatever its Serial.
			st.Policy, res.Policy, res.PolicyChanged = p, p, true
		}
	}
	if err := st.save(dir); err != nil {
		return res, err
	}
	if res.PolicyChanged && apply != nil {
		if applyErr = apply(st.Policy); applyErr != nil {
			applyErr = fmt.Errorf("policy %s (serial %d) stored, but not fully applied: %w", st.Policy.PolicyID, st.Policy.Serial, applyErr)
		}
	}
	return res, applyErr
}

// sendHeartbeat posts hb to the Manager node the agent uses, and when that one does not answer (no
// connection, a timeout, a 5xx) to the next node its policy lists, each try with a new Seq (persisted
// first, as every Seq is). It returns the answer of the node that gave one (res.Manager), or the last
// node's error.
func sendHeartbeat(ctx context.Context, dir string, st *State, hb *fleetapi.Heartbeat, client *http.Client, res *CheckInResult) (*http.Response, []byte, error) {
	addrs := managerCandidates(st)
	for i, addr := range addrs {
		if i > 0 {
			st.Seq++
			if err := st.save(dir); err != nil {
				return nil, nil, fmt.Errorf("persist heartbeat seq: %w", err)
			}
			hb.Seq, res.Seq = st.Seq, st.Seq
		}
		res.Manager = addr
		resp, raw, err := postHeartbeat(ctx, client, addr, hb)
		last := i == len(addrs)-1
		switch {
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		case err != nil && (last || !unreachable(err)):
			return nil, nil, fmt.Errorf("heartbeat to %s: %w", addr, err)
		case err != nil:
			res.Unreachable = append(res.Unreachable, fmt.Sprintf("%s (%v)", addr, err))
		case resp.StatusCode >= 500 && !last:
			res.Unreachable = append(res.Unreachable, fmt.Sprintf("%s (%d %s)", addr, resp.StatusCode, http.StatusText(resp.StatusCode)))
		default:
			return resp, raw, nil
		}
	}
	return nil, nil, errors.New("no Manager address") // LoadState refuses a state without one
}

// managerCandidates are the Manager nodes to try, in order: the one in use, then the others the
// policy lists, in its order.
func managerCandidates(st *State) []string {
	out := []string{st.Manager}
	if st.Policy != nil {
		for _, m := range st.Policy.Managers {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// postHeartbeat sends one heartbeat to one node and reads its answer.
func postHeartbeat(ctx context.Context, client *http.Client, addr string, hb *fleetapi.Heartbeat) (*http.Response, []byte, error) {
	b, _ := json.Marshal(hb)
	rctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, "https://"+addr+fleetapi.PathHeartbeat, bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, unwrapURL(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, fleetapi.MaxBody+1))
	if err != nil {
		return nil, nil, err
	}
	return resp, raw, nil
}

// unreachable reports whether a heartbeat failed because no Manager answered at that address (refused
// or reset connection, a timeout, a connection closed before any answer), as opposed to an answer or a
// TLS refusal, which another node would give as well.
func unreachable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial" || errors.As(err, &ne) && ne.Timeout() ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// CheckInOptions are dsa_control -m's.
type CheckInOptions struct {
	// AgentVersion overrides what the last running agent reported.
	AgentVersion string
}

// CheckIn sends one heartbeat now, from the calling process, under the state lock (dsa_control -m). It
// reports the facts the running agent last reported (listener, relay, TLS versions); a policy in the
// answer is stored in state.json, and a running agent applies it within seconds.
func CheckIn(ctx context.Context, dir string, o CheckInOptions) (*CheckInResult, error) {
	id, st, err := loadIdentity(dir)
	if err != nil {
		return nil, err
	}
	var legacyMax tlspolicy.Version
	if r := st.Reported; r != nil && r.Legacy && len(r.TLSVersions) > 0 {
		legacyMax, _ = tlspolicy.ParseVersion(r.TLSVersions[len(r.TLSVersions)-1])
	}
	client := newManagerClient(id, legacyMax)
	defer client.CloseIdleConnections()
	body := func(st *State) fleetapi.Heartbeat {
		hb := fleetapi.Heartbeat{AgentVersion: Version, Platform: runtime.GOOS + "/" + runtime.GOARCH, TLSVersions: clientVersions(legacyMax)}
		if r := st.Reported; r != nil {
			hb = *r
			hb.TLSVersions = slices.Clone(r.TLSVersions)
		}
		if o.AgentVersion != "" {
			hb.AgentVersion = o.AgentVersion
		}
		hb.PolicyFingerprint = ""
		if st.Policy != nil {
			hb.PolicyFingerprint = st.Policy.Fingerprint()
		}
		return hb
	}
	res, err := heartbeatOnce(ctx, dir, id.guid, client, body, nil, nil)
	if errors.Is(err, errReset) {
		return res, ErrNotActivated
	}
	if err != nil && legacyMax != 0 {
		if line := ExplainRefusal("the Manager", legacyMax, err, ProbeLowestVersion(ctx, id.manager, id.host, legacyMax)); line != "" {
			err = fmt.Errorf("%s: %w", line, err)
		}
	}
	return res, err
}
