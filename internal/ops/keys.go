package ops

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/store"
)

// MaxKeyName bounds an API key's name.
const MaxKeyName = 64

// KeyNameRule says what an API key's name may hold.
const KeyNameRule = "ASCII letters, digits, '.', '_', '-' and spaces, up to 64 characters"

// The scopes of an API key.
const (
	ScopeAdmin    = store.ScopeAdmin // every action (the default)
	ScopeReadOnly = "read-only"      // GET and HEAD only
)

// MaxKeyLife bounds an API key's expiry: ten years ahead. A key may also never expire.
const MaxKeyLife = 3650 * 24 * time.Hour

// The states of an API key, as listapikeys shows them.
const (
	KeyActive  = "active"
	KeyExpired = "expired"
	KeyRevoked = "revoked"
)

// CheckKeyName validates an API key's name without the database.
func CheckKeyName(name string) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return invalid("name", "{field} needs a name for the key (%s), e.g. ci-pipeline", KeyNameRule)
	}
	if len(name) > MaxKeyName {
		return invalid("name", "{field} %q is %d characters long; use %s", name, len(name), KeyNameRule)
	}
	for _, r := range name {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._- ", r)) {
			return invalid("name", "{field} %q: %q is not allowed in a key name; use %s", name, r, KeyNameRule)
		}
	}
	return nil
}

// KeyRequest asks for an API key.
type KeyRequest struct {
	Name string `json:"name"`
	// Expires is when the key stops working: whole days (30d), a Go duration (720h) or an RFC 3339
	// time, up to ten years ahead; "" never.
	Expires string `json:"expires,omitempty"`
	Scope   string `json:"scope,omitempty"` // admin (the default) or read-only
}

// Check validates the request without the database and returns the key to store (without its prefix).
func (r KeyRequest) Check(now time.Time) (store.APIKey, error) {
	name := strings.TrimSpace(r.Name)
	if err := CheckKeyName(name); err != nil {
		return store.APIKey{}, err
	}
	scope, err := parseScope(r.Scope)
	if err != nil {
		return store.APIKey{}, err
	}
	expires, err := parseKeyExpiry(r.Expires, now)
	if err != nil {
		return store.APIKey{}, err
	}
	return store.APIKey{Name: name, Scope: scope, ExpiresAt: expires}, nil
}

func parseScope(v string) (string, error) {
	switch s := strings.ToLower(strings.TrimSpace(v)); s {
	case "":
		return ScopeAdmin, nil
	case ScopeAdmin, ScopeReadOnly:
		return s, nil
	}
	return "", invalid("scope", "{field} %q is not a scope; use admin (every action, the default) or read-only (GET and HEAD only)", v)
}

// parseKeyExpiry returns the RFC 3339 time at which a key given expires v stops working ("" never).
func parseKeyExpiry(v string, now time.Time) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	const how = "use whole days like 30d, a Go duration like 720h or an RFC 3339 time like 2027-01-31T00:00:00Z, from 1m to 3650d ahead; leave it out for a key that does not expire"
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		d, ok := parseLife(v)
		if !ok {
			return "", invalid("expires", "{field} %q: %s", v, how)
		}
		at = now.Add(d)
	}
	switch d := at.Sub(now); {
	case d < MinTokenLife:
		return "", invalid("expires", "{field} %q is not ahead of now (%s): a key would be expired at once; %s", v, now.UTC().Format(time.RFC3339), how)
	case d > MaxKeyLife:
		return "", invalid("expires", "{field} %q is more than 3650 days ahead; %s", v, how)
	}
	return at.UTC().Truncate(time.Second).Format(time.RFC3339), nil
}

// NewKey is a created API key; Key is its secret, shown this once (the store keeps only its hash).
type NewKey struct {
	Name      string `json:"name"`
	Key       string `json:"key"`
	Prefix    string `json:"prefix"`
	Scope     string `json:"scope"`
	ExpiresAt string `json:"expires_at"` // "" never
}

// CreateAPIKey creates an API key for the REST API. A name that exists is a Conflict.
func (o *Ops) CreateAPIKey(ctx context.Context, r KeyRequest) (NewKey, error) {
	k, err := r.Check(o.now())
	if err != nil {
		return NewKey{}, err
	}
	if err := o.writable(); err != nil {
		return NewKey{}, err
	}
	taken := func() error {
		return conflict("name", "{field} %q: an API key of that name exists already; choose another name (%s)", k.Name, KeyNameRule)
	}
	if t, err := o.store.APIKeyNameTaken(ctx, k.Name); err != nil {
		return NewKey{}, err
	} else if t {
		return NewKey{}, taken()
	}
	key, err := auth.NewAPIKey()
	if err != nil {
		return NewKey{}, err
	}
	k.Prefix = key.Prefix
	if err := o.store.AddAPIKey(ctx, k, key.Hash); err != nil {
		if t, err2 := o.store.APIKeyNameTaken(ctx, k.Name); err2 == nil && t {
			return NewKey{}, taken() // created by someone else meanwhile
		}
		return NewKey{}, err
	}
	return NewKey{Name: k.Name, Key: key.Plaintext, Prefix: key.Prefix, Scope: k.Scope, ExpiresAt: k.ExpiresAt}, nil
}

// KeyView is an API key as listapikeys shows it: never its secret or hash.
type KeyView struct {
	store.APIKey
	Status string `json:"status"` // active, expired or revoked
}

// KeyStatus says whether a key works at a time.
func KeyStatus(k store.APIKey, now time.Time) string {
	if k.RevokedAt != "" {
		return KeyRevoked
	}
	if k.ExpiresAt != "" {
		// An unreadable expiry counts as passed: a key is refused rather than kept forever.
		if at, err := time.Parse(time.RFC3339Nano, k.ExpiresAt); err != nil || !now.Before(at) {
			return KeyExpired
		}
	}
	return KeyActive
}

// ListAPIKeys returns every API key by name, with its state now.
func (o *Ops) ListAPIKeys(ctx context.Context) ([]KeyView, error) {
	keys, err := o.store.APIKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := o.now()
	out := make([]KeyView, len(keys))
	for i, k := range keys {
		out[i] = KeyView{APIKey: k, Status: KeyStatus(k, now)}
	}
	return out, nil
}

// KeyRevocation is what RevokeAPIKey did.
type KeyRevocation struct {
	Name      string `json:"name"`
	Prefix    string `json:"prefix"`
	RevokedAt string `json:"revoked_at"`
	Changed   bool   `json:"changed"` // false: it was revoked already
}

// RevokeAPIKey revokes an API key by name: every Manager node sharing the database refuses it from its
// next request on (keys are checked against the database on every request). Revoking a revoked key
// changes nothing.
func (o *Ops) RevokeAPIKey(ctx context.Context, name string) (KeyRevocation, error) {
	name = strings.TrimSpace(name)
	if err := CheckKeyName(name); err != nil {
		return KeyRevocation{}, err
	}
	if err := o.writable(); err != nil {
		return KeyRevocation{}, err
	}
	k, err := o.findKey(ctx, name)
	if err != nil {
		return KeyRevocation{}, err
	}
	res := KeyRevocation{Name: k.Name, Prefix: k.Prefix, RevokedAt: k.RevokedAt}
	if k.RevokedAt != "" {
		return res, nil
	}
	at := o.now().UTC().Format(time.RFC3339Nano)
	if res.Changed, err = o.store.RevokeAPIKey(ctx, k.Name, at); err != nil {
		return KeyRevocation{}, err
	}
	res.RevokedAt = at
	if !res.Changed { // revoked by someone else meanwhile
		if k, _, err = o.store.APIKeyByPrefix(ctx, k.Prefix); err != nil {
			return KeyRevocation{}, err
		}
		res.RevokedAt = k.RevokedAt
	}
	return res, nil
}

// findKey returns the key of a name; an unknown name is a NotFound error that lists the keys.
func (o *Ops) findKey(ctx context.Context, name string) (store.APIKey, error) {
	keys, err := o.store.APIKeys(ctx)
	if err != nil {
		return store.APIKey{}, err
	}
	hint := ""
	names := make([]string, len(keys))
	for i, k := range keys {
		if k.Name == name {
			return k, nil
		}
		if strings.EqualFold(k.Name, name) {
			hint = fmt.Sprintf(" (did you mean %q?)", k.Name)
		}
		names[i] = k.Name
	}
	if len(keys) == 0 {
		return store.APIKey{}, notFound("name", "{field} %q is not an API key: there are none (dsm_c -action createapikey -name N creates one)", name)
	}
	return store.APIKey{}, notFound("name", "{field} %q is not an API key%s; the keys are: %s (dsm_c -action listapikeys lists them)",
		name, hint, quoteList(names))
}
