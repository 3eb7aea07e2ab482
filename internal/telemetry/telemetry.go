// Package telemetry counts TLS handshakes as the Manager's listeners see them — every ClientHello,
// rejected or not, and every finished handshake — by port, client identity, offered maximum version,
// negotiated version, suite and outcome. Counts are kept in memory and flushed to a sink (the store) in
// batches, so the handshake path never waits for the database; a Prometheus counter mirrors them. Relays
// and agents report what their own ports (4122, 4118) saw with their heartbeats; AddReported validates those
// counts and keeps them under the reporting computer's GUID (Key.Node). Clients without a fleet
// certificate cannot grow it at will: their User-Agents are bounded per port and day (useragent.go).
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Outcomes of a handshake.
const (
	Accepted = "accepted" // the handshake finished
	Rejected = "rejected" // the TLS policy refused the ClientHello
	Failed   = "failed"   // the policy would accept, but the handshake failed (client gave up, bad certificate, garbage)
)

// Key identifies a class of handshakes.
type Key struct {
	Port       int
	ClientIP   string
	SNI        string
	UserAgent  string
	AgentGUID  string
	OfferedMax string // the newest version the client offered ("" when no ClientHello was read)
	Version    string // negotiated version ("" unless accepted)
	Suite      string // negotiated suite
	Outcome    string
	// Node is the fleet member whose port saw the handshakes: "" for this Manager, a relay's or agent's
	// GUID for what its heartbeats reported (AddReported).
	Node string
}

// Observation is a flushed count.
type Observation struct {
	Key
	Reason    string
	Count     int64
	FirstSeen time.Time
	LastSeen  time.Time
}

type agg struct {
	count       int64
	first, last time.Time
	reason      string
}

type metricKey struct {
	port                   int
	version, suite, result string
}

// Sink stores a batch of observations.
type Sink func(ctx context.Context, batch []Observation) error

// Recorder counts handshakes. It is safe for concurrent use.
type Recorder struct {
	sink Sink
	log  *slog.Logger
	now  func() time.Time

	// flushMu is held through a whole flush: a Flush that finds nothing pending must still wait for
	// one whose batch is being written, or its caller reads the database before the counts are in.
	flushMu sync.Mutex
	mu      sync.Mutex
	uas     userAgents // the User-Agents recorded today (useragent.go)
	pending map[Key]*agg
	metrics map[metricKey]uint64
	dropped uint64
}

// maxPending bounds the distinct keys held between flushes: a flood of distinct clients cannot grow memory
// without bound (what does not fit is counted in the metrics only).
const maxPending = 100_000

// New returns a Recorder that flushes to sink.
func New(sink Sink, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{sink: sink, log: log, now: time.Now, pending: map[Key]*agg{}, metrics: map[metricKey]uint64{}}
}

// Record counts one handshake. The User-Agent of a client without a fleet certificate is bounded
// (useragent.go).
func (r *Recorder) Record(k Key, reason string) {
	now := r.now()
	r.add(k, reason, 1, now, now)
}

// add counts n handshakes first and last seen at the given times.
func (r *Recorder) add(k Key, reason string, n int64, first, last time.Time) {
	mk := metricKey{k.Port, orNone(k.Version), orNone(k.Suite), k.Outcome}
	r.mu.Lock()
	defer r.mu.Unlock()
	if k.Node == "" {
		r.metrics[mk] += uint64(n) // the metric counts this Manager's own ports
	}
	k.UserAgent = r.uas.label(k, last)
	a := r.pending[k]
	if a == nil {
		if len(r.pending) >= maxPending {
			r.dropped += uint64(n)
			return
		}
		a = &agg{first: first}
		r.pending[k] = a
	}
	a.count += n
	if first.Before(a.first) {
		a.first = first
	}
	if last.After(a.last) {
		a.last = last
	}
	a.reason = reason
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Flush writes what was counted since the last flush. On a sink error the counts are kept for the next
// attempt.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	batch := r.pending
	r.pending = make(map[Key]*agg, len(batch))
	r.mu.Unlock()
	obs := make([]Observation, 0, len(batch))
	for k, a := range batch {
		obs = append(obs, Observation{Key: k, Reason: a.reason, Count: a.count, FirstSeen: a.first, LastSeen: a.last})
	}
	if err := r.sink(ctx, obs); err != nil {
		r.mu.Lock()
		for k, a := range batch {
			if b := r.pending[k]; b != nil {
				b.count += a.count
				b.first = a.first
			} else if len(r.pending) < maxPending {
				r.pending[k] = a
			}
		}
		r.mu.Unlock()
		return err
	}
	return nil
}

// Run flushes every interval until ctx ends, then flushes once more.
func (r *Recorder) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Warn("telemetry flush failed; counts kept for the next attempt", "err", err)
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.log.Warn("final telemetry flush failed", "err", err)
			}
			cancel()
			return
		}
	}
}

// WriteMetrics writes the handshake counter in the Prometheus text format.
func (r *Recorder) WriteMetrics(w io.Writer) {
	r.mu.Lock()
	keys := make([]metricKey, 0, len(r.metrics))
	for k := range r.metrics {
		keys = append(keys, k)
	}
	vals := make([]uint64, len(keys))
	slices.SortFunc(keys, func(a, b metricKey) int {
		return strings.Compare(fmt.Sprint(a.port, a.version, a.suite, a.result), fmt.Sprint(b.port, b.version, b.suite, b.result))
	})
	for i, k := range keys {
		vals[i] = r.metrics[k]
	}
	dropped := r.dropped
	r.mu.Unlock()
	fmt.Fprintln(w, "# HELP tlsfleet_tls_handshakes_total TLS handshakes seen by the Manager's listeners, by outcome.")
	fmt.Fprintln(w, "# TYPE tlsfleet_tls_handshakes_total counter")
	for i, k := range keys {
		fmt.Fprintf(w, "tlsfleet_tls_handshakes_total{port=%q,version=%q,cipher_suite=%q,result=%q} %d\n",
			strconv.Itoa(k.port), k.version, k.suite, k.result, vals[i])
	}
	fmt.Fprintln(w, "# HELP tlsfleet_telemetry_dropped_total Handshakes counted in metrics only, because too many distinct clients arrived between two flushes.")
	fmt.Fprintln(w, "# TYPE tlsfleet_telemetry_dropped_total counter")
	fmt.Fprintf(w, "tlsfleet_telemetry_dropped_total %d\n", dropped)
}
