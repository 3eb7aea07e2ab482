package manager

import (
	"container/list"
	"net"
	"sync"
	"time"
)

// activationThrottle slows down guessing activation tokens: after activationMaxFailures refused tokens
// from one source address within activationWindow, that address is answered 429 with Retry-After until
// the window ends, without its token being looked at. A successful activation or the window's end
// forgets the address. At most activationThrottleAddresses are tracked (the oldest is forgotten first),
// so a flood of addresses cannot grow memory. It also rate-limits the WARN lines about an address: one
// per activationLogEvery.
type activationThrottle struct {
	now       func() time.Time
	max       int
	window    time.Duration
	logEvery  time.Duration
	addresses int

	mu     sync.Mutex
	byKey  map[string]*list.Element // of *attempts
	order  list.List                // *attempts, oldest window first
	logged map[string]*logged       // sources logged within logEvery
}

// logged is when a source was last logged, and how many of its events were not logged since.
type logged struct {
	at         time.Time
	suppressed int
}

// attempts are one source's failures in its current window.
type attempts struct {
	key   string
	fails int
	start time.Time // the window's first failure
}

func newActivationThrottle(now func() time.Time) *activationThrottle {
	return &activationThrottle{now: now, max: activationMaxFailures, window: activationWindow, logEvery: activationLogEvery,
		addresses: activationThrottleAddresses, byKey: map[string]*list.Element{}, logged: map[string]*logged{}}
}

// throttleKey is the source a request is counted under: its IP address, and for IPv6 its /64 (one
// host usually holds a whole /64).
func throttleKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return host
	case ip.To4() != nil:
		return ip.String()
	default:
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
}

// blocked reports whether key has used up its failures; retryAfter is how long until its window ends.
func (t *activationThrottle) blocked(key string) (retryAfter time.Duration, blocked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a := t.current(key, now)
	if a == nil || a.fails < t.max {
		return 0, false
	}
	return a.start.Add(t.window).Sub(now), true
}

// failed counts a refused token from key.
func (t *activationThrottle) failed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a := t.current(key, now)
	if a == nil {
		for t.order.Len() >= t.addresses {
			t.remove(t.order.Front())
		}
		a = &attempts{key: key, start: now}
		t.byKey[key] = t.order.PushBack(a)
	}
	a.fails++
}

// succeeded forgets key's failures.
func (t *activationThrottle) succeeded(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.byKey[key]; e != nil {
		t.remove(e)
	}
}

// mayLog reports whether an event about key may be logged now (one line per source and logEvery), and
// how many events about it were not logged since its last line.
func (t *activationThrottle) mayLog(key string) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	l := t.logged[key]
	if l != nil && now.Sub(l.at) < t.logEvery {
		l.suppressed++
		return false, 0
	}
	if l != nil {
		suppressed = l.suppressed
	}
	if len(t.logged) >= t.addresses {
		for k, l := range t.logged {
			if now.Sub(l.at) >= t.logEvery {
				delete(t.logged, k)
			}
		}
		if len(t.logged) >= t.addresses {
			clear(t.logged) // a flood of sources within a minute: start over rather than grow
		}
	}
	t.logged[key] = &logged{at: now}
	return true, suppressed
}

// current returns key's attempts in a window still open at now, dropping windows that ended.
func (t *activationThrottle) current(key string, now time.Time) *attempts {
	for e := t.order.Front(); e != nil && !now.Before(e.Value.(*attempts).start.Add(t.window)); e = t.order.Front() {
		t.remove(e)
	}
	if e := t.byKey[key]; e != nil {
		return e.Value.(*attempts)
	}
	return nil
}

func (t *activationThrottle) remove(e *list.Element) {
	delete(t.byKey, e.Value.(*attempts).key)
	t.order.Remove(e)
}

// tracked is how many sources are tracked (tests).
func (t *activationThrottle) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.order.Len()
}
