package tlswire

import (
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
)

// KeyExchange is what a ServerKeyExchange message tells a scanner: the named group of an ECDHE exchange,
// the prime size of a DHE one, the modulus size of an export RSA key.
type KeyExchange struct {
	Kind   string // ecdh, dh, rsa
	Group  uint16 // ecdh: named curve
	Bits   int    // dh: prime bits; rsa: modulus bits
	Prime  []byte // dh: the prime, so callers can recognise well-known groups
	Custom bool   // ecdh: explicit curve parameters (curve_type 1 or 2), not a named curve
}

// ParseServerKeyExchange parses a ServerKeyExchange body for a key-exchange family: "ECDHE" (and
// ECDH_anon), "DHE" (and DH_anon), or "RSA" (export suites' temporary RSA key). The signature that
// follows the parameters is not checked.
func ParseServerKeyExchange(body []byte, family string) (KeyExchange, error) {
	s := cryptobyte.String(body)
	bad := func(what string) (KeyExchange, error) {
		return KeyExchange{}, fmt.Errorf("%w: ServerKeyExchange %s", ErrMalformed, what)
	}
	switch family {
	case "ECDHE", "ECDH":
		var curveType uint8
		if !s.ReadUint8(&curveType) {
			return bad("truncated")
		}
		if curveType != 3 {
			return KeyExchange{Kind: "ecdh", Custom: true}, nil
		}
		var group uint16
		var point cryptobyte.String
		if !s.ReadUint16(&group) || !s.ReadUint8LengthPrefixed(&point) || len(point) == 0 {
			return bad("named-curve parameters")
		}
		return KeyExchange{Kind: "ecdh", Group: group}, nil
	case "DHE", "DH":
		var p, g, ys cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&p) || !s.ReadUint16LengthPrefixed(&g) || !s.ReadUint16LengthPrefixed(&ys) || len(p) == 0 {
			return bad("DH parameters")
		}
		bits := new(big.Int).SetBytes(p).BitLen()
		if bits < 2 {
			return bad("DH prime (zero or one)")
		}
		return KeyExchange{Kind: "dh", Bits: bits, Prime: append([]byte(nil), p...)}, nil
	case "RSA":
		var mod, exp cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&mod) || !s.ReadUint16LengthPrefixed(&exp) || len(mod) == 0 {
			return bad("RSA parameters")
		}
		return KeyExchange{Kind: "rsa", Bits: new(big.Int).SetBytes(mod).BitLen()}, nil
	}
	return KeyExchange{}, fmt.Errorf("tlswire: no ServerKeyExchange parser for %q key exchange", family)
}
