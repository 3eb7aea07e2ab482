package store

import (
	"testing"

	"tlsfleet/internal/store/storetest"
)

// On PostgreSQL, a telemetry prune waits for the write lock a running write transaction holds (so that
// it cannot deadlock with a flush upserting the same rows): the server reports it waiting on a lock
// until the transaction commits, and only then does the prune finish.
func TestPruneTakesTheWriteLock(t *testing.T) {
	db, err := OpenDatabase(t.Context(), storetest.Postgres(t).Database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	done := make(chan error, 1)
	go func() { _, err := db.PruneObservations(t.Context(), "2000-01-01T00:00:00Z"); done <- err }()
	for waiting := false; !waiting; {
		select {
		case err := <-done:
			t.Fatalf("the prune finished beside a write transaction (err %v): it does not take the write lock", err)
		default:
		}
		// Polls the server's own view (no sleep): a backend of this database waiting on a lock.
		if err := db.db.QueryRowContext(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
