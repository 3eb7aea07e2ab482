package testtarget

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// CertKind selects a server certificate. Every kind is a self-signed leaf for CN=localhost with the
// subject alternative names localhost and 127.0.0.1.
type CertKind string

// The certificates a target can present.
const (
	RSA2048     CertKind = "rsa2048"      // RSA-2048, SHA256-RSA
	RSA1024     CertKind = "rsa1024"      // RSA-1024, SHA256-RSA: OpenSSL needs @SECLEVEL=1 or 0 to load it
	RSA2048SHA1 CertKind = "rsa2048-sha1" // RSA-2048, SHA1-RSA: "Insecure certificate signature (SHA1)"
	ECDSAP256   CertKind = "ecdsa-p256"   // ECDSA P-256, ECDSA-SHA256
)

// CertKinds lists every CertKind.
var CertKinds = []CertKind{RSA2048, RSA1024, RSA2048SHA1, ECDSAP256}

// Cert is a certificate and its key, in memory and as PEM files.
type Cert struct {
	Kind     CertKind
	DER      []byte
	Leaf     *x509.Certificate
	TLS      tls.Certificate
	CertFile string // PEM certificate
	KeyFile  string // PEM PKCS#8 private key, mode 0600
	Key      string // "rsa 2048", "ec 256"
	Sig      string // x509.SignatureAlgorithm.String(): "SHA256-RSA", "SHA1-RSA", "ECDSA-SHA256"
	// OpenSSLAuth is the authentication OpenSSL's cipher listing shows for suites this key can serve
	// ("RSA" or "ECDSA"); anonymous suites ("None") need no key.
	OpenSSLAuth string
}

type certMaterial struct {
	der     []byte
	leaf    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	keyPEM  []byte
}

// Key generation (RSA-2048 takes up to a few hundred milliseconds) is done once per process and kind.
var (
	certMu    sync.Mutex
	certCache = map[CertKind]*certMaterial{}
)

func material(kind CertKind) (*certMaterial, error) {
	certMu.Lock()
	defer certMu.Unlock()
	if m := certCache[kind]; m != nil {
		return m, nil
	}
	var key crypto.Signer
	var err error
	sigAlg := x509.UnknownSignatureAlgorithm
	switch kind {
	case RSA2048:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case RSA1024:
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	case RSA2048SHA1:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		sigAlg = x509.SHA1WithRSA // Go still creates (but no longer verifies) SHA-1 signatures
	case ECDSAP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("testtarget: unknown certificate kind %q", kind)
	}
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"tlsfleet testtarget " + string(kind)}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		SignatureAlgorithm:    sigAlg,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("testtarget: %s certificate: %w", kind, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	m := &certMaterial{
		der:     der,
		leaf:    leaf,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	}
	certCache[kind] = m
	return m, nil
}

// NewCert returns a certificate of the given kind with its PEM files in a fresh t.TempDir(). The key is
// generated once per test process and kind.
func NewCert(t testing.TB, kind CertKind) *Cert {
	t.Helper()
	c, err := writeCert(kind, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeCert writes kind's certificate and key as cert.pem and key.pem into dir.
func writeCert(kind CertKind, dir string) (*Cert, error) {
	m, err := material(kind)
	if err != nil {
		return nil, err
	}
	c := &Cert{
		Kind:     kind,
		DER:      m.der,
		Leaf:     m.leaf,
		TLS:      tls.Certificate{Certificate: [][]byte{m.der}, PrivateKey: m.key, Leaf: m.leaf},
		CertFile: filepath.Join(dir, string(kind)+"-cert.pem"),
		KeyFile:  filepath.Join(dir, string(kind)+"-key.pem"),
		Sig:      m.leaf.SignatureAlgorithm.String(),
	}
	switch k := m.key.Public().(type) {
	case *rsa.PublicKey:
		c.Key, c.OpenSSLAuth = fmt.Sprintf("rsa %d", k.N.BitLen()), "RSA"
	case *ecdsa.PublicKey:
		c.Key, c.OpenSSLAuth = fmt.Sprintf("ec %d", k.Curve.Params().BitSize), "ECDSA"
	}
	if err := os.WriteFile(c.CertFile, m.certPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.KeyFile, m.keyPEM, 0o600); err != nil {
		return nil, err
	}
	return c, nil
}
