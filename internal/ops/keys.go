package ops

import (
	"context"
	"errors"
	"strings"
	"unicode"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/store"
)

// MaxKeyName bounds an API key's name.
const MaxKeyName = 64

// KeyNameRule says what an API key's name may hold.
const KeyNameRule = "ASCII letters, digits, '.', '_', '-' and spaces, up to 64 characters"

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

// NewKey is a created API key; Key is its secret, shown this once (the store keeps only its hash).
type NewKey struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	Prefix string `json:"prefix"`
}

// CreateAPIKey creates an API key for the REST API. A name that exists is a Conflict.
func (o *Ops) CreateAPIKey(ctx context.Context, name string) (NewKey, error) {
	name = strings.TrimSpace(name)
	if err := CheckKeyName(name); err != nil {
		return NewKey{}, err
	}
	if err := o.writable(); err != nil {
		return NewKey{}, err
	}
	taken := func() error {
		return conflict("name", "{field} %q: an API key of that name exists already; choose another name (%s)", name, KeyNameRule)
	}
	if t, err := o.store.APIKeyNameTaken(ctx, name); err != nil {
		return NewKey{}, err
	} else if t {
		return NewKey{}, taken()
	}
	key, err := auth.NewAPIKey()
	if err != nil {
		return NewKey{}, err
	}
	if err := o.store.InsertAPIKey(ctx, name, key.Prefix, key.Hash); err != nil {
		if t, err2 := o.store.APIKeyNameTaken(ctx, name); err2 == nil && t {
			return NewKey{}, taken() // created by someone else meanwhile
		}
		return NewKey{}, err
	}
	return NewKey{Name: name, Key: key.Plaintext, Prefix: key.Prefix}, nil
}

// ErrBadKey means an API key is missing, malformed or unknown; the REST API answers 401.
var ErrBadKey = errors.New("bad API key")

// KeyError says why a key was refused.
type KeyError struct{ Why string }

func (e *KeyError) Error() string { return e.Why }

// Unwrap makes a KeyError an ErrBadKey.
func (e *KeyError) Unwrap() error { return ErrBadKey }

// CheckAPIKey returns the name of the API key whose secret is key. A missing, malformed or unknown key is
// a *KeyError; any other error means the store failed.
func (o *Ops) CheckAPIKey(ctx context.Context, key string) (string, error) {
	if key == "" {
		return "", &KeyError{"no API key"}
	}
	prefix, err := auth.KeyPrefix(key)
	if err != nil {
		return "", &KeyError{"malformed API key"}
	}
	name, hash, err := o.store.APIKeyHash(ctx, prefix)
	if errors.Is(err, store.ErrNotFound) || err == nil && !auth.KeyMatches(key, hash) {
		return "", &KeyError{"unknown API key"}
	}
	return name, err
}
