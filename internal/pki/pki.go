// Package pki is the fleet's certificate authority: the CA that the Manager creates on first start, the
// Manager's server certificate it signs, the certificates it issues (for the agent channel) and the
// revocation list it signs (revoke.go). Keys
// are written 0600, certificates 0644, as PEM in the install folder.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names in the install folder.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "manager.pem"
	ServerKeyFile = "manager-key.pem"
)

// KeyType is the algorithm of a new key.
type KeyType string

// Key types for the Manager's server certificate.
const (
	ECDSAP256 KeyType = "ecdsa-p256"
	RSA2048   KeyType = "rsa-2048"
)

// CA is the fleet CA.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Fingerprint is the SHA-256 of the CA certificate, as agents pin it (hex, colon-separated).
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert) }

// Fingerprint formats a certificate's SHA-256 fingerprint.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

func newKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case ECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("unknown key type %q: use %s or %s", t, ECDSAP256, RSA2048)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// ErrNoCA is wrapped by LoadCA's error when dir holds no fleet CA certificate.
var ErrNoCA = errors.New("no fleet CA")

// LoadCA loads the fleet CA (certificate and key) from dir; it never creates one.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if _, err := os.Stat(certPath); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is missing", ErrNoCA, certPath)
	} else if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("fleet CA: %w", err)
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("fleet CA: key cannot sign")
	}
	return &CA{Cert: c, Key: signer}, nil
}

// LoadOrCreateCA loads the CA from dir, creating it on first use.
func LoadOrCreateCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	if ca, err := LoadCA(dir); !errors.Is(err, ErrNoCA) {
		return ca, err
	}
	key, err := newKey(ECDSAP256)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "tlsfleet fleet CA " + host, Organization: []string{"tlsfleet"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	if err := writePair(certPath, keyPath, der, key); err != nil {
		return nil, err
	}
	c, _ := x509.ParseCertificate(der)
	return &CA{Cert: c, Key: key}, nil
}

// LoadOrCreateServer loads the Manager's server certificate from dir, issuing one from the CA (for the
// given host names and addresses, plus localhost) on first use.
func (ca *CA) LoadOrCreateServer(dir string, kt KeyType, hosts []string) (tls.Certificate, error) {
	if _, err := os.Stat(filepath.Join(dir, ServerFile)); err == nil {
		return ca.LoadServer(dir)
	}
	dnsNames, ips := []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" && h != "localhost" {
			dnsNames = append(dnsNames, h)
		}
	}
	sc, err := ca.issueServer(kt, dnsNames, ips)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := sc.Write(dir); err != nil {
		return tls.Certificate{}, err
	}
	return ca.LoadServer(dir)
}

// LoadServer loads the Manager's server certificate from dir, with the CA after it.
func (ca *CA) LoadServer(dir string) (tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("manager certificate: %w", err)
	}
	if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
		return tls.Certificate{}, fmt.Errorf("manager certificate: %w", err)
	}
	return ca.withChain(pair), nil
}

// ServerCert is a new server certificate, in memory until Write.
type ServerCert struct {
	TLS tls.Certificate // with the CA after the leaf, Leaf set
	der []byte
	key crypto.Signer
}

// Write puts the certificate in dir: the key and then the certificate, each replaced by a rename (a
// reader that comes between the two sees a mismatched pair, and tries again).
func (sc *ServerCert) Write(dir string) error {
	return writePair(filepath.Join(dir, ServerFile), filepath.Join(dir, ServerKeyFile), sc.der, sc.key)
}

// RotateServer issues (in memory) a successor of dir's server certificate: a new key of type kt ("" keeps
// the current key's type) and the same names and addresses.
func (ca *CA) RotateServer(dir string, kt KeyType) (*ServerCert, error) {
	old, err := ReadCertFile(filepath.Join(dir, ServerFile))
	if err != nil {
		return nil, fmt.Errorf("the current manager certificate (its names are kept): %w", err)
	}
	if kt == "" {
		kt = KeyTypeOf(old)
	}
	return ca.issueServer(kt, old.DNSNames, old.IPAddresses)
}

// KeyTypeOf is the key type of a certificate's key, as newKey makes it ("" for another key).
func KeyTypeOf(c *x509.Certificate) KeyType {
	switch c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return ECDSAP256
	case *rsa.PublicKey:
		return RSA2048
	}
	return ""
}

// issueServer makes the Manager's server certificate for the given names.
func (ca *CA) issueServer(kt KeyType, dnsNames []string, ips []net.IP) (*ServerCert, error) {
	key, err := newKey(kt)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: ManagerCommonName, Organization: []string{"tlsfleet"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		// ClientAuth too: the Manager presents this certificate when it calls agents on 4118.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pair := ca.withChain(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf})
	return &ServerCert{TLS: pair, der: der, key: key}, nil
}

// ReadCertFile reads the first PEM certificate of a file.
func ReadCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ManagerCommonName names the Manager's certificate (agents check it when the Manager calls them).
const ManagerCommonName = "tlsfleet manager"

// withChain sends the CA after the leaf, so that an agent activating with only the CA's fingerprint can
// check the chain.
func (ca *CA) withChain(pair tls.Certificate) tls.Certificate {
	pair.Certificate = append(pair.Certificate[:1:1], ca.Cert.Raw)
	return pair
}

func writePair(certPath, keyPath string, der []byte, key crypto.Signer) error {
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile writes through a temporary file and a rename, so that a crash never leaves half a file.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteFile is writeFile for other packages (install-folder files).
func WriteFile(path string, data []byte, mode os.FileMode) error { return writeFile(path, data, mode) }

// Agent certificates are valid this long; the agent renews them at two thirds of their lifetime over
// the agent channel (POST /agent/v1/renew on 4120, mutual TLS with the current certificate).
const agentCertValidity = 365 * 24 * time.Hour

// ErrWeakKey is returned for a CSR whose key the fleet does not accept.
var ErrWeakKey = errors.New("the CSR's key must be ECDSA P-256/P-384, Ed25519 or RSA of at least 2048 bits")

// IssueAgent signs an agent's certificate request: CommonName is the computer's GUID, usable both as a
// TLS client (heartbeats to 4120) and as a TLS server (the agent's own port 4118, relays' 4122).
func (ca *CA) IssueAgent(csrDER []byte, guid string) (*x509.Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if n := k.Curve.Params().BitSize; n != 256 && n != 384 {
			return nil, ErrWeakKey
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, ErrWeakKey
		}
	case ed25519PublicKey:
	default:
		return nil, ErrWeakKey
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: guid, Organization: []string{"tlsfleet agent"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(agentCertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{guid},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// PEM encodes a certificate.
func PEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

type ed25519PublicKey = ed25519.PublicKey
