package agent

import (
	"context"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"
)

func TestJitterBounds(t *testing.T) {
	const interval = 600 * time.Second
	lo, hi := 540*time.Second, 660*time.Second
	for _, r := range []float64{0, 0.25, 0.5, 0.999999} {
		if d := jitter(interval, r); d < lo || d >= hi {
			t.Errorf("jitter(r=%v) = %v, outside [%v, %v)", r, d, lo, hi)
		}
	}
	if jitter(interval, 0) != lo || jitter(interval, 0.5) != interval {
		t.Errorf("jitter ends: %v %v", jitter(interval, 0), jitter(interval, 0.5))
	}
	minD, maxD := hi, lo
	for range 10000 {
		d := jitter(interval, rand.Float64())
		minD, maxD = min(minD, d), max(maxD, d)
	}
	if minD < lo || maxD >= hi || maxD-minD < 110*time.Second {
		t.Errorf("10000 jittered intervals span [%v, %v]; want most of [%v, %v)", minD, maxD, lo, hi)
	}
}

func TestBackoffGrowthAndCap(t *testing.T) {
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300}
	for i, w := range want {
		if got := backoffCeiling(i+1, 600*time.Second); got != w*time.Second {
			t.Errorf("ceiling after %d failures = %v, want %v", i+1, got, w*time.Second)
		}
	}
	// The cap is the interval when it is shorter than five minutes.
	for i, w := range []time.Duration{1, 2, 4, 8, 10, 10} {
		if got := backoffCeiling(i+1, 10*time.Second); got != w*time.Second {
			t.Errorf("10 s interval: ceiling after %d failures = %v, want %v", i+1, got, w*time.Second)
		}
	}
	if got := backoffCeiling(1000, 24*time.Hour); got != maxBackoff {
		t.Errorf("many failures: %v", got)
	}
	// Full jitter: uniform in [0, ceiling).
	for _, r := range []float64{0, 0.5, 0.999999} {
		if d := backoff(4, 600*time.Second, r); d < 0 || d >= 8*time.Second {
			t.Errorf("backoff(4, r=%v) = %v", r, d)
		}
	}
}

// 100,000 agents failing together spread their retries evenly over the ceiling: no second of it gets
// much more than its share.
func TestBackoffSpreadsAStampede(t *testing.T) {
	const agents = 100000
	ceiling := backoffCeiling(5, 600*time.Second) // 16 s
	buckets := make([]int, int(ceiling/time.Second))
	for range agents {
		buckets[int(backoff(5, 600*time.Second, rand.Float64())/time.Second)]++
	}
	share := agents / len(buckets)
	for s, n := range buckets {
		if n > share*12/10 || n < share*8/10 {
			t.Errorf("second %d of the backoff got %d retries; an even share is %d", s, n, share)
		}
	}
}

// recorder is a fake heartbeat: it returns scripted outcomes and records when it ran (synctest time).
type recorder struct {
	start    time.Time
	at       []time.Duration
	script   []outcome
	interval time.Duration
	cancel   context.CancelFunc
}

func (r *recorder) beat(ctx context.Context) beatResult {
	r.at = append(r.at, time.Since(r.start))
	o := r.script[len(r.at)-1]
	if len(r.at) == len(r.script) {
		r.cancel()
	}
	return beatResult{outcome: o, interval: r.interval}
}

// gaps returns the waits between heartbeats.
func (r *recorder) gaps() []time.Duration {
	var g []time.Duration
	for i := 1; i < len(r.at); i++ {
		g = append(g, r.at[i]-r.at[i-1])
	}
	return g
}

func runScript(t *testing.T, interval time.Duration, script []outcome, rnd func() float64, wake chan struct{}) *recorder {
	t.Helper()
	var rec *recorder
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rec = &recorder{start: time.Now(), script: script, interval: interval, cancel: cancel}
		heartbeatLoop(ctx, rec.beat, rnd, wake)
	})
	return rec
}

func repeat(o outcome, n int) []outcome {
	s := make([]outcome, n)
	for i := range s {
		s[i] = o
	}
	return s
}

func half() float64 { return 0.5 }

func equalGaps(t *testing.T, what string, got, want []time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d gaps %v, want %v", what, len(got), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: gap %d = %v, want %v (all: %v)", what, i, got[i], want[i], got)
		}
	}
}

// The first heartbeat goes out at once; failures back off 1 s, 2 s, 4 s, ... (×0.5 with r = 0.5) up to
// the cap of five minutes.
func TestLoopBackoffGrowsToCap(t *testing.T) {
	rec := runScript(t, 600*time.Second, repeat(outcomeFailed, 13), half, nil)
	if rec.at[0] != 0 {
		t.Errorf("first heartbeat after %v, want at once", rec.at[0])
	}
	var want []time.Duration
	for _, s := range []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300} {
		want = append(want, time.Duration(s*0.5*float64(time.Second)))
	}
	equalGaps(t, "failures", rec.gaps(), want)

	// With real randomness every wait stays below its ceiling.
	rec = runScript(t, 600*time.Second, repeat(outcomeFailed, 40), rand.Float64, nil)
	for i, g := range rec.gaps() {
		if c := backoffCeiling(i+1, 600*time.Second); g < 0 || g >= c {
			t.Errorf("wait %d = %v, ceiling %v", i, g, c)
		}
	}
}

// A Manager that comes back resets the backoff: after a success the next wait is the interval, and the
// next failure starts again at 1 s.
func TestLoopRecoveryResetsBackoff(t *testing.T) {
	script := append(repeat(outcomeFailed, 6), outcomeOK, outcomeFailed, outcomeFailed, outcomeOK)
	rec := runScript(t, 60*time.Second, script, half, nil)
	s := time.Second
	equalGaps(t, "recovery", rec.gaps(), []time.Duration{
		s / 2, s, 2 * s, 4 * s, 8 * s, 16 * s, // six failures
		60 * s, // success: the interval (jitter 0.5 → exactly the interval)
		s / 2,  // failure after recovery: back to the 1 s ceiling
		s,
	})
}

// 403 retries slowly (the backoff cap ±10%); "checkin" beats again at once, at most maxCheckIns times in
// a row; jitter spreads the regular heartbeats by ±10%.
func TestLoopRefusedCheckInAndJitter(t *testing.T) {
	rec := runScript(t, 600*time.Second, repeat(outcomeRefused, 3), func() float64 { return 0 }, nil)
	equalGaps(t, "refused", rec.gaps(), []time.Duration{270 * time.Second, 270 * time.Second})

	rec = runScript(t, 600*time.Second, append(repeat(outcomeCheckIn, maxCheckIns+2), outcomeOK), half, nil)
	want := make([]time.Duration, maxCheckIns)
	want = append(want, 600*time.Second, 0) // the sixth checkin in a row waits the interval
	equalGaps(t, "checkin", rec.gaps(), want)

	rec = runScript(t, 100*time.Second, repeat(outcomeOK, 200), rand.Float64, nil)
	for _, g := range rec.gaps() {
		if g < 90*time.Second || g >= 110*time.Second {
			t.Errorf("regular wait %v outside [90 s, 110 s)", g)
		}
	}
}

// CheckInNow (wake) cuts a wait short.
func TestLoopWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		wake := make(chan struct{}, 1)
		beats := make(chan time.Duration, 10)
		start := time.Now()
		go heartbeatLoop(ctx, func(context.Context) beatResult {
			beats <- time.Since(start)
			return beatResult{outcome: outcomeOK, interval: time.Hour}
		}, half, wake)
		if d := <-beats; d != 0 {
			t.Fatalf("first beat at %v", d)
		}
		time.Sleep(10 * time.Minute)
		wake <- struct{}{}
		if d := <-beats; d != 10*time.Minute {
			t.Errorf("woken beat at %v, want 10m", d)
		}
		cancel()
		synctest.Wait()
	})
}
