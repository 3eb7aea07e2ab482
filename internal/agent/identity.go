package agent

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"tlsfleet/internal/fleetapi"
)

// identity is what an activated agent authenticates with and trusts.
type identity struct {
	guid    string
	manager string // HOST:PORT
	host    string // HOST, for the Manager's certificate check
	// server is the chain [leaf, fleet CA] the agent serves on 4118 and 4122; client is [leaf], which it
	// presents to the Manager and to relays.
	server, client tls.Certificate
	ca             *x509.Certificate
	pool           *x509.CertPool
}

// loadIdentity reads key, certificate, fleet CA and state.
func loadIdentity(dir string) (*identity, *State, error) {
	st, err := LoadState(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := recoverRenewal(dir); err != nil {
		return nil, nil, fmt.Errorf("finishing an interrupted certificate renewal: %w", err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("agent key and certificate: %w (dsa_control -r, then -a, activates again)", err)
	}
	ca, err := readCA(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, nil, err
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", CertFile, err)
		}
		pair.Leaf = leaf
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, nil, fmt.Errorf("%s does not verify against the fleet CA in %s: %w", CertFile, CAFile, err)
	}
	if leaf.Subject.CommonName != st.GUID {
		return nil, nil, fmt.Errorf("%s belongs to %q, state.json to %q (dsa_control -r, then -a, activates again)", CertFile, leaf.Subject.CommonName, st.GUID)
	}
	host, _, err := net.SplitHostPort(st.Manager)
	if err != nil {
		return nil, nil, fmt.Errorf("state.json Manager %q: %w", st.Manager, err)
	}
	id := &identity{guid: st.GUID, manager: st.Manager, host: host, ca: ca, pool: pool}
	id.client = pair
	id.server = pair
	id.server.Certificate = [][]byte{pair.Certificate[0], ca.Raw}
	return id, st, nil
}

// readCA reads a PEM CA certificate.
func readCA(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("fleet CA: %w", err)
	}
	return parseCAPEM(path, b)
}

func parseCAPEM(what string, b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM CERTIFICATE (dsm_c -action exportdsmcert -value FILE writes the right file)", what)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !c.IsCA || !c.BasicConstraintsValid {
		return nil, fmt.Errorf("%s is not a CA certificate (%q): export the fleet CA with dsm_c -action exportdsmcert", what, c.Subject.CommonName)
	}
	return c, nil
}

// ParseFingerprint reads a SHA-256 fingerprint written with or without colons (or spaces), in any case.
func ParseFingerprint(s string) ([]byte, error) {
	h := strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s))
	h = strings.TrimPrefix(strings.TrimPrefix(h, "sha256/"), "SHA256/")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%w: -fingerprint %q is not a SHA-256 fingerprint (64 hex digits, colons optional; dsm_c -action exportdsmcert prints it)", ErrUsage, s)
	}
	return b, nil
}

func sha256Of(c *x509.Certificate) []byte {
	sum := sha256.Sum256(c.Raw)
	return sum[:]
}

// verifyChainTo checks a peer's chain against one CA: the leaf must chain to ca (the rest of the chain
// serving as intermediates), carry ExtKeyUsage usage and, when host is set, name host.
func verifyChainTo(peers []*x509.Certificate, ca *x509.Certificate, host string, usage x509.ExtKeyUsage) error {
	if len(peers) == 0 {
		return errors.New("the peer sent no certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range peers[1:] {
		if !bytes.Equal(c.Raw, ca.Raw) {
			inter.AddCert(c)
		}
	}
	_, err := peers[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

// verifyFleetPeer is VerifyConnection for connections to relays and for the Manager's calls: the chain
// must verify against the fleet CA with the given usage, without a host name (agents' and relays'
// certificates name their GUID).
func verifyFleetPeer(pool *x509.CertPool, usage x509.ExtKeyUsage) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the peer sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
		if err != nil {
			return fmt.Errorf("peer certificate %q is not from this fleet's CA: %w", cs.PeerCertificates[0].Subject.CommonName, err)
		}
		return nil
	}
}

// verifyManagerPeer accepts only the Manager's certificate on 4118 (its chain was verified against the
// fleet CA by the handshake).
func verifyManagerPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("4118 accepts only the Manager: no client certificate")
	}
	if cn := cs.PeerCertificates[0].Subject.CommonName; cn != fleetapi.ManagerCommonName {
		return fmt.Errorf("4118 accepts only the Manager (%q); the client certificate names %q", fleetapi.ManagerCommonName, cn)
	}
	return nil
}
