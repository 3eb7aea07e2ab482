package ops

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/store"
)

var keyNow = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

func TestKeyRequestCheck(t *testing.T) {
	tests := []struct {
		name    string
		req     KeyRequest
		scope   string
		expires string
		wantErr string
	}{
		{name: "defaults", req: KeyRequest{Name: "ci"}, scope: "admin"},
		{name: "days", req: KeyRequest{Name: "ci", Expires: "30d"}, scope: "admin", expires: "2027-01-02T09:00:00Z"},
		{name: "duration", req: KeyRequest{Name: "ci", Expires: "90m"}, scope: "admin", expires: "2026-12-03T10:30:00Z"},
		{name: "RFC 3339", req: KeyRequest{Name: "ci", Expires: "2027-06-30T12:00:00+02:00"}, scope: "admin", expires: "2027-06-30T10:00:00Z"},
		{name: "read-only in capitals", req: KeyRequest{Name: "ci", Scope: " Read-Only "}, scope: "read-only"},
		{name: "admin", req: KeyRequest{Name: "ci", Scope: "admin"}, scope: "admin"},
		{name: "unknown scope", req: KeyRequest{Name: "ci", Scope: "readonly"}, wantErr: `scope "readonly" is not a scope; use admin`},
		{name: "words", req: KeyRequest{Name: "ci", Expires: "next week"}, wantErr: `expires "next week": use whole days like 30d`},
		{name: "in the past", req: KeyRequest{Name: "ci", Expires: "2026-12-01T00:00:00Z"}, wantErr: "is not ahead of now (2026-12-03T09:00:00Z)"},
		{name: "zero days", req: KeyRequest{Name: "ci", Expires: "0d"}, wantErr: "is not ahead of now"},
		{name: "negative", req: KeyRequest{Name: "ci", Expires: "-5h"}, wantErr: "is not ahead of now"},
		{name: "too far", req: KeyRequest{Name: "ci", Expires: "3651d"}, wantErr: "more than 3650 days ahead"},
		{name: "bad name", req: KeyRequest{Name: "ci/bot"}, wantErr: `name "ci/bot"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := tt.req.Check(keyNow)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Check() = %v, want %q", err, tt.wantErr)
				}
				if _, ok := AsInput(err); !ok {
					t.Errorf("%v is not an input error", err)
				}
				return
			}
			if err != nil || k.Scope != tt.scope || k.ExpiresAt != tt.expires {
				t.Fatalf("Check() = %+v, %v; want scope %q, expires %q", k, err, tt.scope, tt.expires)
			}
		})
	}
}

// touchCounter counts the writes of last use.
type touchCounter struct {
	*store.DB
	touches int
}

func (c *touchCounter) TouchAPIKey(ctx context.Context, prefix, at string) error {
	c.touches++
	return c.DB.TouchAPIKey(ctx, prefix, at)
}

func openStore(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// A key used all the time writes its last use once a minute, not once a request.
func TestKeyUseThrottled(t *testing.T) {
	st := &touchCounter{DB: openStore(t, filepath.Join(t.TempDir(), "db"))}
	o := New(st, nil, nil)
	clock := keyNow
	o.now = func() time.Time { return clock }
	key, err := o.CreateAPIKey(t.Context(), KeyRequest{Name: "hot"})
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() string {
		keys, err := o.ListAPIKeys(t.Context())
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys %+v, %v", keys, err)
		}
		return keys[0].LastUsedAt
	}
	if got := lastUsed(); got != "" {
		t.Errorf("an unused key has last_used_at %q", got)
	}
	for i := range 120 { // two requests a second for 59.5 s
		clock = keyNow.Add(time.Duration(i) * 500 * time.Millisecond)
		if _, err := o.CheckAPIKey(t.Context(), key.Key); err != nil {
			t.Fatal(err)
		}
	}
	if st.touches != 1 || lastUsed() != keyNow.Format(time.RFC3339Nano) {
		t.Errorf("120 requests in a minute: %d writes, last_used_at %s; want 1 write at %s", st.touches, lastUsed(), keyNow.Format(time.RFC3339Nano))
	}
	clock = keyNow.Add(KeyUseInterval)
	if _, err := o.CheckAPIKey(t.Context(), key.Key); err != nil {
		t.Fatal(err)
	}
	if st.touches != 2 || lastUsed() != clock.Format(time.RFC3339Nano) {
		t.Errorf("a minute later: %d writes, last_used_at %s", st.touches, lastUsed())
	}
}

// A key revoked through one Manager node's operations is refused by another node's on its next check:
// nothing is cached. Revoking twice changes nothing; an unknown name lists the keys.
func TestRevokeReachesEveryNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	a, b := New(openStore(t, path), nil, nil), New(openStore(t, path), nil, nil)
	key, err := a.CreateAPIKey(t.Context(), KeyRequest{Name: "ci", Scope: "read-only"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.CheckAPIKey(t.Context(), key.Key)
	if err != nil || c.Name != "ci" || c.Scope != ScopeReadOnly {
		t.Fatalf("node b: %+v, %v", c, err)
	}
	if err := c.MayChange(); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), `"ci" has the read-only scope`) {
		t.Errorf("MayChange() = %v", err)
	}
	res, err := a.RevokeAPIKey(t.Context(), "ci")
	if err != nil || !res.Changed || res.RevokedAt == "" {
		t.Fatalf("revoke: %+v, %v", res, err)
	}
	if _, err := b.CheckAPIKey(t.Context(), key.Key); !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), `"ci" was revoked at `+res.RevokedAt) {
		t.Errorf("node b after the revocation: %v", err)
	}
	if again, err := b.RevokeAPIKey(t.Context(), "ci"); err != nil || again.Changed || again.RevokedAt != res.RevokedAt {
		t.Errorf("revoke again: %+v, %v", again, err)
	}
	_, err = b.RevokeAPIKey(t.Context(), "CI")
	if ie, ok := AsInput(err); !ok || ie.Kind != NotFound || !strings.Contains(err.Error(), `"CI" is not an API key (did you mean "ci"?); the keys are: "ci"`) {
		t.Errorf("unknown key: %v", err)
	}
}

// What checking a key against the database on every request costs (one indexed read; the last use is
// written once a minute).
func BenchmarkCheckAPIKey(b *testing.B) {
	db, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	o := New(db, nil, nil)
	key, err := o.CreateAPIKey(b.Context(), KeyRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := o.CheckAPIKey(b.Context(), key.Key); err != nil {
			b.Fatal(err)
		}
	}
}
