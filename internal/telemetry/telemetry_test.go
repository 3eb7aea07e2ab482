package telemetry

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestRecordFlushAndMetrics(t *testing.T) {
	var mu sync.Mutex
	var got []Observation
	fail := true
	r := New(func(_ context.Context, b []Observation) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("database locked")
		}
		got = append(got, b...)
		return nil
	}, nil)
	ok := Key{Port: 4119, ClientIP: "127.0.0.1", OfferedMax: "TLSv1.3", Version: "TLSv1.3", Suite: "TLS_AES_128_GCM_SHA256", Outcome: Accepted}
	old := Key{Port: 4120, ClientIP: "127.0.0.1", OfferedMax: "TLSv1", Outcome: Rejected}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				r.Record(ok, "")
			}
			r.Record(old, "protocol_version")
		}()
	}
	wg.Wait()
	if err := r.Flush(t.Context()); err == nil {
		t.Fatal("flush to a failing sink succeeded")
	}
	r.Record(ok, "")
	fail = false
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, o := range got {
		counts[o.Outcome] += o.Count
	}
	if counts[Accepted] != 801 || counts[Rejected] != 8 || len(got) != 2 {
		t.Errorf("flushed %+v", got)
	}
	var b strings.Builder
	r.WriteMetrics(&b)
	for _, want := range []string{
		`tlsfleet_tls_handshakes_total{port="4119",version="TLSv1.3",cipher_suite="TLS_AES_128_GCM_SHA256",result="accepted"} 801`,
		`tlsfleet_tls_handshakes_total{port="4120",version="none",cipher_suite="none",result="rejected"} 8`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, b.String())
		}
	}
}

// BenchmarkRecord is the telemetry's cost on one handshake's path.
func BenchmarkRecord(b *testing.B) {
	r := New(func(context.Context, []Observation) error { return nil }, nil)
	keys := make([]Key, 256)
	for i := range keys {
		keys[i] = Key{Port: 4119, ClientIP: "10.0.0." + string(rune('0'+i%10)), OfferedMax: "TLSv1.3", Version: "TLSv1.3", Suite: "TLS_AES_128_GCM_SHA256", Outcome: Accepted, UserAgent: "agent/" + string(rune('a'+i%26))}
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Record(keys[i%len(keys)], "")
			i++
		}
	})
}

// A Flush that finds nothing pending returns only once a flush already writing its batch is done: a
// reader that flushes and then queries the database sees the counts recorded before it.
func TestFlushWaitsForTheOneInFlight(t *testing.T) {
	writing, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	written := 0
	r := New(func(_ context.Context, b []Observation) error {
		close(writing)
		<-release
		mu.Lock()
		written += len(b)
		mu.Unlock()
		return nil
	}, nil)
	r.Record(Key{Port: 4119, ClientIP: "127.0.0.1", Version: "TLSv1.3", Outcome: Accepted}, "")
	first := make(chan error)
	go func() { first <- r.Flush(t.Context()) }()
	<-writing
	second := make(chan error)
	go func() { second <- r.Flush(t.Context()) }()
	for range 10_000 { // yields, not a timer: without the wait the second Flush returns at once
		select {
		case <-second:
			t.Fatal("the second Flush returned while the first was still writing")
		case err := <-first:
			t.Fatalf("the first Flush returned before its sink did: %v", err)
		default:
			runtime.Gosched()
		}
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if written != 1 {
		t.Errorf("%d observations written, want 1", written)
	}
}
