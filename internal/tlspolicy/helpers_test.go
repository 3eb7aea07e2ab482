package tlspolicy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// newKey makes an ECDSA (bits 256/384) or RSA key.
func newKey(t testing.TB, alg string, bits int) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case "RSA":
		k, err = rsa.GenerateKey(rand.Reader, bits)
	case "EC":
		c := elliptic.P256()
		if bits == 384 {
			c = elliptic.P384()
		}
		k, err = ecdsa.GenerateKey(c, rand.Reader)
	default:
		t.Fatalf("unknown key algorithm %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue makes a certificate for key, signed by parent/parentKey (self-signed when parent is nil).
func issue(t testing.TB, cn string, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, isCA bool, usage x509.ExtKeyUsage) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}
}

func selfSigned(t testing.TB, alg string, bits int) tls.Certificate {
	t.Helper()
	_, c := issue(t, "localhost", newKey(t, alg, bits), nil, nil, false, x509.ExtKeyUsageServerAuth)
	return c
}

// wantError checks err against a wanted substring ("" wants none) and reports whether the caller should
// stop (an error was wanted or found).
func wantError(t *testing.T, err error, want string) bool {
	t.Helper()
	if want != "" {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error = %v\nwant it to contain %q", err, want)
		}
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}
