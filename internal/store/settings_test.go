package store

import (
	"strconv"
	"sync"
	"testing"

	"tlsfleet/internal/store/storetest"
)

// Two writers changing settings at once (dsm_c beside a running Manager, two API requests) both succeed:
// a settings change takes the write lock first, so that SQLite waits for the other writer (busy_timeout)
// instead of failing with "database is locked" when a read transaction cannot be upgraded.
func TestConcurrentSetSetting(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, b storetest.Backend) {
		const rounds = 100
		var wg sync.WaitGroup
		errs := make(chan error, 2*rounds)
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rounds {
					if _, _, err := db.SetSetting(t.Context(), "s"+strconv.Itoa(w), strconv.Itoa(i), "test"); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("SetSetting beside another writer: %v", err)
			break
		}
	})
}
