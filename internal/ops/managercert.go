package ops

import (
	"context"
	"fmt"
	"os"
	"strings"

	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/tlspolicy"
)

// CertRequest asks for a new Manager certificate.
type CertRequest struct {
	// Key is the new key's type: "rsa" (RSA-2048) or "ecdsa" (ECDSA P-256); "" keeps the current type.
	Key string `json:"key,omitempty"`
}

// CertRotation is what RotateManagerCert did.
type CertRotation struct {
	Key         string   `json:"key"`          // the new key's type: rsa-2048, ecdsa-p256
	PreviousKey string   `json:"previous_key"` // the replaced certificate's
	Fingerprint string   `json:"fingerprint"`  // SHA-256 of the new certificate
	NotAfter    string   `json:"not_after"`
	DNSNames    []string `json:"dns_names"`
	IPAddresses []string `json:"ip_addresses"`
	Path        string   `json:"path"` // manager.pem
}

// ParseCertKey reads a key type: rsa or ecdsa (or the full names rsa-2048, ecdsa-p256); "" keeps the
// current one.
func ParseCertKey(v string) (pki.KeyType, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return "", nil
	case "rsa", string(pki.RSA2048):
		return pki.RSA2048, nil
	case "ecdsa", "ec", string(pki.ECDSAP256):
		return pki.ECDSAP256, nil
	}
	return "", invalid("key", "{field} %q is not a key type: use rsa (RSA-2048) or ecdsa (ECDSA P-256), or leave it out to keep the current type", v)
}

// RotateManagerCert replaces the Manager's certificate (ports 4119 and 4120, and its calls to agents'
// 4118) with a new one from the fleet CA: same names and addresses, a new key of the asked type. A
// running Manager puts it in force without a restart; agents pin the fleet CA, not this certificate,
// and keep working. A key type under which a port could complete no handshake (java.security or
// configuration.properties allow only the other type's suites) is refused, and nothing is written.
func (o *Ops) RotateManagerCert(ctx context.Context, r CertRequest) (CertRotation, error) {
	kt, err := ParseCertKey(r.Key)
	if err != nil {
		return CertRotation{}, err
	}
	if err := o.writable(); err != nil {
		return CertRotation{}, err
	}
	o.rotateMu.Lock() // two rotations at once could leave one's key beside the other's certificate
	defer o.rotateMu.Unlock()
	ca, err := pki.LoadCA(o.folder.Dir)
	if err != nil {
		return CertRotation{}, err
	}
	old, err := pki.ReadCertFile(o.folder.Path(pki.ServerFile))
	if err != nil {
		return CertRotation{}, fmt.Errorf("the current manager certificate: %w", err)
	}
	sc, err := ca.RotateServer(o.folder.Dir, kt)
	if err != nil {
		return CertRotation{}, err
	}
	if err := o.checkCertServes(ctx, sc); err != nil {
		return CertRotation{}, err
	}
	prev, err := o.readPair()
	if err != nil {
		return CertRotation{}, err
	}
	if err := sc.Write(o.folder.Dir); err != nil {
		return CertRotation{}, fmt.Errorf("write the new manager certificate: %w", err)
	}
	if err := o.hooks.ManagerCertChanged(ctx); err != nil {
		// The running Manager kept the certificate in force: the files go back to it, so that what is on
		// disk is what the ports serve (and what the next start serves).
		if rerr := o.writePair(prev); rerr != nil {
			return CertRotation{}, fmt.Errorf("the running Manager refused the new certificate (%v), and putting the previous one back failed: %w", err, rerr)
		}
		o.hooks.ManagerCertChanged(ctx)
		return CertRotation{}, fmt.Errorf("the running Manager refused the new certificate, and the previous one stays in force and on disk: %w", err)
	}
	leaf := sc.TLS.Leaf
	res := CertRotation{Key: string(pki.KeyTypeOf(leaf)), PreviousKey: string(pki.KeyTypeOf(old)), Fingerprint: pki.Fingerprint(leaf),
		NotAfter: leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z"), DNSNames: leaf.DNSNames, IPAddresses: []string{}, Path: o.folder.Path(pki.ServerFile)}
	for _, ip := range leaf.IPAddresses {
		res.IPAddresses = append(res.IPAddresses, ip.String())
	}
	return res, nil
}

// checkCertServes refuses a certificate under which one of the Manager's ports could complete no
// handshake, with the files and settings in force.
func (o *Ops) checkCertServes(ctx context.Context, sc *pki.ServerCert) error {
	layers, err := tlspolicy.LoadDir(o.folder.Dir)
	if err != nil {
		return err
	}
	vals, err := o.store.Settings(ctx)
	if err != nil {
		return err
	}
	layers.Settings = settings.Values(vals).Policy()
	if layers.Cert, err = tlspolicy.CertInfoOf(sc.TLS); err != nil {
		return err
	}
	if err := CheckPortsServe(o.managerListeners(), layers); err != nil {
		return invalid("key", "{field} %s: %v; keep the current key type, or change the files first", pki.KeyTypeOf(sc.TLS.Leaf), err)
	}
	return nil
}

// CheckPortsServe returns the lock-out error (tlspolicy.LockOutError, with its fix) of the first port
// that could complete no handshake under layers.
func CheckPortsServe(listeners []tlspolicy.Listener, layers tlspolicy.Layers) error {
	for _, l := range listeners {
		if err := tlspolicy.Explain(l, layers).LockOut(); err != nil {
			return err
		}
	}
	return nil
}

// certPair is the Manager's certificate and key files as they are on disk.
type certPair struct{ cert, key []byte }

func (o *Ops) readPair() (certPair, error) {
	var p certPair
	var err error
	if p.cert, err = os.ReadFile(o.folder.Path(pki.ServerFile)); err != nil {
		return p, fmt.Errorf("the current manager certificate: %w", err)
	}
	if p.key, err = os.ReadFile(o.folder.Path(pki.ServerKeyFile)); err != nil {
		return p, fmt.Errorf("the current manager key: %w", err)
	}
	return p, nil
}

func (o *Ops) writePair(p certPair) error {
	if err := pki.WriteFile(o.folder.Path(pki.ServerKeyFile), p.key, 0o600); err != nil {
		return err
	}
	return pki.WriteFile(o.folder.Path(pki.ServerFile), p.cert, 0o644)
}
