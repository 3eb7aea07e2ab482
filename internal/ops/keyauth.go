package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/store"
)

// KeyUseInterval is how often, at most, a key's last use is written: a key that calls the API all the
// time costs one write a minute, not one a request.
const KeyUseInterval = time.Minute

// ErrBadKey means an API key is missing, malformed, unknown, revoked or expired; the REST API answers
// 401.
var ErrBadKey = errors.New("bad API key")

// KeyError says why a key was refused.
type KeyError struct{ Why string }

func (e *KeyError) Error() string { return e.Why }

// Unwrap makes a KeyError an ErrBadKey.
func (e *KeyError) Unwrap() error { return ErrBadKey }

// Caller is who presented a valid API key.
type Caller struct {
	Name   string
	Prefix string
	Scope  string
}

// CheckAPIKey returns the caller whose API key is key, read from the database on every call: a key
// revoked on one Manager node (or by dsm_c) is refused by every node at once. A missing, malformed,
// unknown, revoked or expired key is a *KeyError; any other error means the store failed. The key's last
// use is recorded at most every KeyUseInterval.
func (o *Ops) CheckAPIKey(ctx context.Context, key string) (Caller, error) {
	if key == "" {
		return Caller{}, &KeyError{"no API key"}
	}
	prefix, err := auth.KeyPrefix(key)
	if err != nil {
		return Caller{}, &KeyError{"malformed API key"}
	}
	k, hash, err := o.store.APIKeyByPrefix(ctx, prefix)
	if errors.Is(err, store.ErrNotFound) || err == nil && !auth.KeyMatches(key, hash) {
		return Caller{}, &KeyError{"unknown API key"}
	}
	if err != nil {
		return Caller{}, err
	}
	// Only a caller who holds the secret learns that the key was revoked or expired.
	now := o.now()
	switch KeyStatus(k, now) {
	case KeyRevoked:
		return Caller{}, &KeyError{fmt.Sprintf("API key %q was revoked at %s", k.Name, k.RevokedAt)}
	case KeyExpired:
		return Caller{}, &KeyError{fmt.Sprintf("API key %q expired at %s", k.Name, k.ExpiresAt)}
	}
	// The key is good: a last-use time not written (a busy database) must not refuse the request; the
	// stored time stays old, so the next use tries again.
	_ = o.noteUse(ctx, k, now)
	return Caller{Name: k.Name, Prefix: k.Prefix, Scope: k.Scope}, nil
}

// noteUse writes a key's last use unless the one stored is recent. The stored time, read with the key,
// is the throttle: it holds across Manager nodes and restarts with no state of its own (a time ahead of
// this node's clock, written by a node whose clock runs ahead, counts as recent).
func (o *Ops) noteUse(ctx context.Context, k store.APIKey, now time.Time) error {
	if last, err := time.Parse(time.RFC3339Nano, k.LastUsedAt); err == nil && now.Sub(last) < KeyUseInterval {
		return nil
	}
	if err := o.store.TouchAPIKey(ctx, k.Prefix, now.UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("record the use of API key %q: %w", k.Name, err)
	}
	return nil
}

// ErrForbidden means the key's scope does not allow the action; the REST API answers 403.
var ErrForbidden = errors.New("forbidden by the API key's scope")

// ScopeError says which scope refused an action.
type ScopeError struct {
	Key, Scope string
}

func (e *ScopeError) Error() string {
	return fmt.Sprintf("API key %q has the %s scope: it may only read (GET and HEAD); change things with a key of the admin scope (dsm_c -action createapikey -name N -scope admin)",
		e.Key, e.Scope)
}

// Unwrap makes a ScopeError an ErrForbidden.
func (e *ScopeError) Unwrap() error { return ErrForbidden }

// MayChange says whether the caller may run an action that changes something: only admin keys may; any
// other scope (read-only, or one this Manager does not know) reads only.
func (c Caller) MayChange() error {
	if c.Scope == ScopeAdmin {
		return nil
	}
	return &ScopeError{Key: c.Name, Scope: c.Scope}
}
