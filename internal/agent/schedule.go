package agent

import (
	"context"
	"time"
)

// Heartbeat scheduling. The functions here are pure (the random number comes in as r in [0, 1)), and
// heartbeatLoop only uses the time package, so that tests run it under testing/synctest.
//
//   - A heartbeat that went through is followed by the next after the interval ±10% (jitter), so that
//     agents started together drift apart instead of beating in step.
//   - A failed heartbeat is retried after an exponential backoff with full jitter: the ceiling starts at
//     1 s and doubles with each consecutive failure up to min(interval, 5 min); the wait is uniform in
//     [0, ceiling). 100,000 agents whose Manager comes back spread their retries over the whole ceiling
//     instead of arriving in waves.
//   - A heartbeat the Manager refused (403: deactivated or unknown) is retried slowly: the backoff cap
//     ±10%.
//   - Any success resets the backoff.
const (
	firstBackoff = time.Second
	maxBackoff   = 5 * time.Minute
	jitterSpread = 0.10
	// maxCheckIns bounds consecutive "checkin" commands answered at once (a Manager that always asks
	// again must not turn the agent into a busy loop).
	maxCheckIns = 5
)

// outcome classifies one heartbeat for the scheduler.
type outcome int

const (
	outcomeOK      outcome = iota // accepted: next after the interval
	outcomeCheckIn                // accepted with the "checkin" command: next at once
	outcomeFailed                 // network, TLS, 5xx, 400, 409: exponential backoff
	outcomeRefused                // 403: slow retries
)

// beatResult is what the loop needs from a heartbeat.
type beatResult struct {
	outcome  outcome
	interval time.Duration // the heartbeat interval in force
}

// jitter returns interval × [0.9, 1.1) for r in [0, 1).
func jitter(interval time.Duration, r float64) time.Duration {
	return time.Duration(float64(interval) * (1 - jitterSpread + 2*jitterSpread*r))
}

// backoffCap is the longest backoff: the interval, at most five minutes.
func backoffCap(interval time.Duration) time.Duration {
	return max(min(interval, maxBackoff), firstBackoff)
}

// backoffCeiling is the backoff ceiling after the given number of consecutive failures (≥ 1):
// 1 s, 2 s, 4 s, ... up to backoffCap.
func backoffCeiling(failures int, interval time.Duration) time.Duration {
	c := backoffCap(interval)
	d := firstBackoff
	for i := 1; i < failures && d < c; i++ {
		d *= 2
	}
	return min(d, c)
}

// backoff is the full-jitter wait after failures consecutive failures: uniform in [0, ceiling).
func backoff(failures int, interval time.Duration, r float64) time.Duration {
	return time.Duration(float64(backoffCeiling(failures, interval)) * r)
}

// nextDelay is the wait before the next heartbeat, given the last result and the count of consecutive
// failures including it.
func nextDelay(res beatResult, failures int, r float64) time.Duration {
	switch res.outcome {
	case outcomeOK:
		return jitter(res.interval, r)
	case outcomeCheckIn:
		return 0
	case outcomeRefused:
		return jitter(backoffCap(res.interval), r)
	default:
		return backoff(failures, res.interval, r)
	}
}

// heartbeatLoop beats at once, then after each nextDelay, until ctx ends. A value on wake cuts the
// current wait short (a "check in now").
func heartbeatLoop(ctx context.Context, beat func(context.Context) beatResult, rnd func() float64, wake <-chan struct{}) {
	failures, checkIns := 0, 0
	for {
		res := beat(ctx)
		if ctx.Err() != nil {
			return
		}
		switch res.outcome {
		case outcomeOK:
			failures, checkIns = 0, 0
		case outcomeCheckIn:
			failures = 0
			if checkIns++; checkIns > maxCheckIns {
				res.outcome, checkIns = outcomeOK, 0
			}
		default:
			failures++
			checkIns = 0
		}
		t := time.NewTimer(nextDelay(res, failures, rnd()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-wake:
			t.Stop()
		}
	}
}
