package tlswire

import (
	"crypto/dsa" //lint:ignore SA1019 DSA certificates still exist on servers we scan
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// ParseCertificates parses a TLS 1.0–1.2 Certificate message body into DER certificates, leaf first.
func ParseCertificates(body []byte) ([][]byte, error) {
	s := cryptobyte.String(body)
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
		return nil, fmt.Errorf("%w: Certificate message framing", ErrMalformed)
	}
	var out [][]byte
	for !list.Empty() {
		var der cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&der) || len(der) == 0 {
			return nil, fmt.Errorf("%w: Certificate entry framing", ErrMalformed)
		}
		out = append(out, der)
	}
	return out, nil
}

// CertKey describes a certificate's public key and signature.
type CertKey struct {
	Type      string // rsa, ec, dsa, ed25519, dh, unknown
	Bits      int
	Curve     string // for ec: secp256r1, secp384r1, secp521r1
	Signature string // x509.SignatureAlgorithm.String(), e.g. SHA256-RSA, SHA1-RSA, MD5-RSA
	Exponent  int    // rsa: the public exponent
}

// ParseCertKey describes a DER certificate's key. A certificate Go's x509 cannot parse is reported with
// Type "unknown" and the parse error.
func ParseCertKey(der []byte) (CertKey, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return CertKey{Type: "unknown"}, fmt.Errorf("%w: certificate: %v", ErrMalformed, err)
	}
	k := CertKey{Signature: c.SignatureAlgorithm.String()}
	switch pub := c.PublicKey.(type) {
	case *rsa.PublicKey:
		k.Type, k.Bits, k.Exponent = "rsa", pub.N.BitLen(), pub.E
	case *ecdsa.PublicKey:
		k.Type, k.Bits = "ec", pub.Curve.Params().BitSize
		k.Curve = map[string]string{"P-224": "secp224r1", "P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1"}[pub.Curve.Params().Name]
	case ed25519.PublicKey:
		k.Type, k.Bits = "ed25519", 255
	case *dsa.PublicKey:
		k.Type, k.Bits = "dsa", pub.P.BitLen()
	default:
		k.Type = "unknown"
	}
	return k, nil
}
