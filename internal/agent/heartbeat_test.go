package agent

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tlsfleet/internal/agent/agenttest"
)

// Heartbeats from dsa_control -m: Seq grows and survives in state.json; the policy arrives once.
func TestCheckInSeqAndPolicy(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := filepath.Join(t.TempDir(), "a")
	guid := activate(t, m, dir)
	for want := uint64(1); want <= 3; want++ {
		res, err := CheckIn(t.Context(), dir, CheckInOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Seq != want || mustState(t, dir).Seq != want || res.TLSVersion != "TLSv1.3" || res.PolicyChanged {
			t.Errorf("heartbeat %d: %+v", want, res)
		}
	}
	hbs := m.Computer(guid).Heartbeats
	if len(hbs) != 3 || hbs[2].Seq != 3 || hbs[0].PolicyFingerprint != "" || hbs[0].Legacy || strings.Join(hbs[0].TLSVersions, ",") != "TLSv1.2,TLSv1.3" {
		t.Errorf("the Manager saw %+v", hbs)
	}
	st := mustState(t, dir)
	if st.LastHeartbeat.IsZero() || st.NegotiatedTLS != "TLSv1.3" || st.LastError != "" {
		t.Errorf("state %+v", st)
	}

	p := testPolicy(7)
	m.SetPolicy(guid, p)
	res, err := CheckIn(t.Context(), dir, CheckInOptions{})
	if err != nil || !res.PolicyChanged || res.Policy.Serial != 7 {
		t.Fatalf("%+v %v", res, err)
	}
	if st := mustState(t, dir); st.Policy == nil || st.Policy.Fingerprint() != p.Fingerprint() {
		t.Errorf("policy not stored: %+v", st.Policy)
	}
	res, err = CheckIn(t.Context(), dir, CheckInOptions{})
	if err != nil || res.PolicyChanged || m.Computer(guid).Heartbeats[4].PolicyFingerprint != p.Fingerprint() {
		t.Errorf("the policy came again: %+v %v", res, err)
	}
	if ls, _ := ReadStatus(dir); ls.PolicySerial != 7 || ls.PolicyFingerprint != p.Fingerprint() || ls.Seq != 5 {
		t.Errorf("status %+v", ls)
	}
}

// 409: the Manager saw a higher Seq (state restored from a backup): the agent jumps ahead and recovers.
func TestCheckInReplayJumpsAhead(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	m.SetLastSeq(guid, 2500)
	var me *ManagerError
	for i, want := range []uint64{1 + 1000, 1002 + 2000} { // 1000, then 2000 further
		_, err := CheckIn(t.Context(), dir, CheckInOptions{})
		if !errors.As(err, &me) || me.Status != http.StatusConflict {
			t.Fatalf("%d: %v", i, err)
		}
		if st := mustState(t, dir); st.Seq != want || !strings.Contains(st.LastError, "replay") {
			t.Fatalf("%d: state seq %d (want %d), last error %q", i, st.Seq, want, st.LastError)
		}
	}
	res, err := CheckIn(t.Context(), dir, CheckInOptions{})
	if err != nil || res.Seq != 3003 {
		t.Fatalf("%+v %v", res, err)
	}
	if st := mustState(t, dir); st.Replays != 0 || st.LastError != "" {
		t.Errorf("state after recovery %+v", st)
	}
}

func TestCheckInRefused(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	m.Deactivate(guid, true)
	_, err := CheckIn(t.Context(), dir, CheckInOptions{})
	if err == nil || !strings.Contains(err.Error(), "the Manager refused this agent: computer "+guid+" is deactivated") {
		t.Fatalf("err = %v", err)
	}
	if ls, _ := ReadStatus(dir); !strings.Contains(ls.LastError, "deactivated") || ls.LastErrorAt == "" {
		t.Errorf("status %+v", ls)
	}
	if _, err := CheckIn(t.Context(), t.TempDir(), CheckInOptions{}); !errors.Is(err, ErrNotActivated) {
		t.Errorf("unactivated folder: %v", err)
	}
}

// The state lock: concurrent check-ins never reuse a Seq (the Manager would answer 409).
func TestCheckInConcurrentNeverReusesSeq(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	dir := t.TempDir()
	guid := activate(t, m, dir)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := CheckIn(t.Context(), dir, CheckInOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c := m.Computer(guid); len(c.Heartbeats) != 16 || c.LastSeq != 16 {
		t.Errorf("the Manager accepted %d heartbeats, last seq %d", len(c.Heartbeats), c.LastSeq)
	}
}
