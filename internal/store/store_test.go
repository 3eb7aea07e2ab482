package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tlsfleet/internal/store/storetest"
)

func TestSettingsAndEvents(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, b storetest.Backend) {
		ctx := t.Context()
		v0, _ := db.SettingsVersion(ctx)
		old, changed, err := db.SetSetting(ctx, "a", "TLSv1.2", "dsm_c")
		if err != nil || !changed || old != "" {
			t.Fatalf("first set: %q %v %v", old, changed, err)
		}
		if _, changed, _ := db.SetSetting(ctx, "a", "TLSv1.2", "dsm_c"); changed {
			t.Error("setting the same value again counted as a change")
		}
		old, changed, _ = db.SetSetting(ctx, "a", "TLSv1", "api:ops")
		if !changed || old != "TLSv1.2" {
			t.Errorf("second set: old %q changed %v", old, changed)
		}
		if v, _ := db.SettingsVersion(ctx); v != v0+2 {
			t.Errorf("settings version %d, want %d", v, v0+2)
		}
		ev, _ := db.SettingEvents(ctx, "a", 10)
		if len(ev) != 2 || ev[0].NewValue != "TLSv1" || ev[0].OldValue != "TLSv1.2" || ev[0].Actor != "api:ops" {
			t.Errorf("events = %+v", ev)
		}
		// A second connection (dsm_c beside a running Manager) sees the committed change.
		other, err := OpenDatabase(ctx, b.Database)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if m, _ := other.Settings(ctx); m["a"] != "TLSv1" {
			t.Errorf("other connection sees %v", m)
		}
	})
}

func TestObservationsAggregate(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, b storetest.Backend) {
		ctx := t.Context()
		o := Observation{Port: 4119, ClientIP: "127.0.0.1", OfferedMax: "TLSv1.3", Version: "TLSv1.3", Suite: "TLS_AES_128_GCM_SHA256", Outcome: "accepted", Count: 2,
			FirstSeen: "2026-11-27T00:00:00Z", LastSeen: "2026-11-27T00:00:01Z"}
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); db.AddObservations(ctx, []Observation{o}) }()
		}
		wg.Wait()
		rej := o
		rej.Version, rej.Suite, rej.Outcome, rej.OfferedMax, rej.Reason, rej.Count = "", "", "rejected", "TLSv1", "protocol_version", 1
		if err := db.AddObservations(ctx, []Observation{rej}); err != nil {
			t.Fatal(err)
		}
		got, err := db.Observations(ctx, "2026-11-26T00:00:00Z", 4119)
		if err != nil || len(got) != 2 {
			t.Fatalf("observations = %+v, %v", got, err)
		}
		for _, g := range got {
			if g.Outcome == "accepted" && g.Count != 8 || g.Outcome == "rejected" && g.Count != 1 {
				t.Errorf("%+v", g)
			}
		}
		if got, _ := db.Observations(ctx, "2026-11-28T00:00:00Z", 0); len(got) != 0 {
			t.Errorf("since filter: %+v", got)
		}
	})
}

// The reporting node is part of an observation's key: two relays that saw the same client keep a row each,
// apart from the Manager's own.
func TestObservationsByNode(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, b storetest.Backend) {
		ctx := t.Context()
		o := Observation{Port: 4122, ClientIP: "10.0.0.9", OfferedMax: "TLSv1.3", Version: "TLSv1.3", Suite: "TLS_AES_128_GCM_SHA256", Outcome: "accepted", Count: 3,
			FirstSeen: "2026-11-27T00:00:00Z", LastSeen: "2026-11-27T00:00:01Z"}
		var batch []Observation
		for _, node := range []string{"", "relay-1", "relay-2", "relay-1"} {
			n := o
			n.Node = node
			batch = append(batch, n)
		}
		if err := db.AddObservations(ctx, batch); err != nil {
			t.Fatal(err)
		}
		got, err := db.Observations(ctx, "2026-11-26T00:00:00Z", 4122)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int64{}
		for _, g := range got {
			counts[g.Node] += g.Count
		}
		if len(got) != 3 || counts[""] != 3 || counts["relay-1"] != 6 || counts["relay-2"] != 3 {
			t.Errorf("rows by node %v from %+v", counts, got)
		}
	})
}

// A release is written only over the policy it was computed from: a concurrent one wins, not the stale.
func TestReleaseCompareAndSet(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, b storetest.Backend) {
		ctx := t.Context()
		db.InsertActivationToken(ctx, "h", ActivationToken{ExpiresAt: "2999-01-01T00:00:00Z", UsesLeft: 1})
		if _, err := db.Activate(ctx, "h", time.Now(), Computer{}, func(ActivationToken) (Computer, error) { return Computer{GUID: "g1", Hostname: "h1"}, nil }); err != nil {
			t.Fatal(err)
		}
		rows := func(prev, fp string) func(int64) ([]ReleaseRow, error) {
			return func(serial int64) ([]ReleaseRow, error) {
				return []ReleaseRow{{GUID: "g1", Prev: prev, JSON: fmt.Sprintf(`{"serial":%d}`, serial), Fingerprint: fp}}, nil
			}
		}
		if w, err := db.Release(ctx, rows("", "fp1")); err != nil || len(w) != 1 {
			t.Fatalf("first release: %v %v", w, err)
		}
		if w, _ := db.Release(ctx, rows("", "stale")); len(w) != 0 {
			t.Error("a release computed from the old policy overwrote the newer one")
		}
		if w, _ := db.Release(ctx, rows("fp1", "fp2")); len(w) != 1 {
			t.Error("a release over the current policy was dropped")
		}
		cs, _ := db.Computers(ctx)
		if cs[0].PolicySent != "fp2" {
			t.Errorf("policy_sent %q", cs[0].PolicySent)
		}
	})
}

// Transactions that read and then write, run at once from several connections, all succeed: each takes
// the write lock when it begins (and waits for it under busy_timeout) instead of failing with
// SQLITE_BUSY_SNAPSHOT when another wrote between its read and its write.
func TestConcurrentReadThenWrite(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, b storetest.Backend) {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					if _, _, err := db.SetSetting(t.Context(), "a", fmt.Sprintf("v%d-%d", g, i), "test"); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// A connection the pool opens after the database file is gone fails instead of creating a new, empty
// database in its place (an install folder replaced under the Manager).
func TestNoNewDatabaseUnderARunningStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "manager")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tlsfleet.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := os.Rename(dir, dir+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	tx, err := db.db.BeginTx(t.Context(), nil) // holds the pool's one connection: the next query opens another
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := db.Settings(t.Context()); err == nil {
		t.Error("a query through a new connection succeeded on a database that is not there")
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("a new connection created %s", path)
	}
}

func TestMain(m *testing.M) { storetest.Main(m) }

// eachDB runs f on a new store on SQLite and on PostgreSQL (storetest.EachDB); b reopens the same
// database.
func eachDB(t *testing.T, f func(t *testing.T, db *DB, b storetest.Backend)) {
	storetest.EachDB(t, func(t *testing.T, b storetest.Backend) {
		db, err := OpenDatabase(t.Context(), b.Database)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		f(t, db, b)
	})
}
