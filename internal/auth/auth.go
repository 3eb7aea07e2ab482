// Package auth makes and checks the Manager's secrets: API keys (shown once, stored as a SHA-256 of a
// 256-bit random secret, found by a public prefix) and admin passwords (stored as argon2id hashes).
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// APIKey is a freshly made key: Plaintext goes to the user once; Prefix and Hash go to the store.
type APIKey struct {
	Plaintext, Prefix, Hash string
}

// NewAPIKey makes a key of the form tf_<prefix>_<secret>.
func NewAPIKey() (APIKey, error) {
	var p [6]byte
	var s [32]byte
	if _, err := rand.Read(p[:]); err != nil {
		return APIKey{}, err
	}
	if _, err := rand.Read(s[:]); err != nil {
		return APIKey{}, err
	}
	prefix := hex.EncodeToString(p[:])
	plain := "tf_" + prefix + "_" + base64.RawURLEncoding.EncodeToString(s[:])
	return APIKey{Plaintext: plain, Prefix: prefix, Hash: hashKey(plain)}, nil
}

func hashKey(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// ErrMalformedKey is returned for a string that is not shaped like an API key.
var ErrMalformedKey = errors.New("malformed API key")

// KeyPrefix returns the public prefix of a presented key.
func KeyPrefix(plain string) (string, error) {
	parts := strings.SplitN(plain, "_", 3) // the base64url secret may itself contain "_"
	if len(parts) != 3 || parts[0] != "tf" || len(parts[1]) != 12 || len(parts[2]) < 40 {
		return "", ErrMalformedKey
	}
	return parts[1], nil
}

// KeyMatches compares a presented key with a stored hash in constant time.
func KeyMatches(plain, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(hashKey(plain)), []byte(hash)) == 1
}

// NewActivationToken makes a one-time activation token; only its hash is stored.
func NewActivationToken() (plain, hash string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	plain = "act_" + base64.RawURLEncoding.EncodeToString(b[:])
	return plain, HashToken(plain), nil
}

// HashToken is how activation tokens are stored and looked up.
func HashToken(plain string) string { return hashKey(plain) }

// NewPassword makes a random one-time password of 20 characters.
func NewPassword() (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:]), nil
}

// HashPassword hashes a password with argon2id (RFC 9106's second recommended parameters).
func HashPassword(pw string) (string, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	const t, m, p = 3, 64 * 1024, 2
	key := argon2.IDKey([]byte(pw), salt[:], t, m, p, 32)
	return fmt.Sprintf("argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p,
		base64.RawStdEncoding.EncodeToString(salt[:]), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword verifies a password against a HashPassword hash.
func CheckPassword(pw, hash string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 5 || parts[0] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[3])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[4])
	if err1 != nil || err2 != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}
