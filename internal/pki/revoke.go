package pki

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Revocation: the fleet CA signs a certificate revocation list (RFC 5280 §5) that every listener of the
// fleet checks locally — the Manager's 4120, agents' 4118 and relays' 4122 — so that a deactivated or
// superseded agent certificate is refused without a round trip to the Manager (agents and relays may be
// offline for days; short-lived certificates would strand them). The CRL's number grows with every
// change; a listener keeps the highest-numbered CRL it has seen.

// Revocation reasons (RFC 5280 §5.3.1) the fleet uses.
const (
	ReasonSuperseded      = 4 // replaced by a renewed certificate
	ReasonCertificateHold = 6 // the computer is deactivated; reactivation lifts the hold
)

// CRLValidity is how far a new CRL's NextUpdate lies ahead. Listeners keep using the newest CRL they
// have after that (an old list is better than none); the Manager signs a new one at every change.
const CRLValidity = 7 * 24 * time.Hour

// Revoked is one entry of a CRL.
type Revoked struct {
	Serial    *big.Int
	RevokedAt time.Time
	Reason    int
}

// SignCRL signs a CRL with the given number and entries, valid from now for CRLValidity.
func (ca *CA) SignCRL(number int64, entries []Revoked, now time.Time) ([]byte, error) {
	if number < 0 {
		return nil, fmt.Errorf("CRL number %d: must not be negative", number)
	}
	list := make([]x509.RevocationListEntry, len(entries))
	for i, e := range entries {
		list[i] = x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: e.RevokedAt.UTC(), ReasonCode: e.Reason}
	}
	tmpl := &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                now.UTC(),
		NextUpdate:                now.UTC().Add(CRLValidity),
		RevokedCertificateEntries: list,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign the CRL: %w", err)
	}
	return der, nil
}

// CRL is a parsed, verified fleet CRL.
type CRL struct {
	Number     int64
	ThisUpdate time.Time
	DER        []byte
	revoked    map[string]int // serial (hex) → reason
}

// ErrCRLSignature is returned for a CRL the fleet CA did not sign.
var ErrCRLSignature = errors.New("the CRL is not signed by this fleet's CA")

// ParseCRL parses a DER CRL and checks that ca signed it.
func ParseCRL(der []byte, ca *x509.Certificate) (*CRL, error) {
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("CRL: %w", err)
	}
	if err := rl.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCRLSignature, err)
	}
	if rl.Number == nil || !rl.Number.IsInt64() || rl.Number.Sign() < 0 {
		return nil, errors.New("CRL: no usable CRL number")
	}
	c := &CRL{Number: rl.Number.Int64(), ThisUpdate: rl.ThisUpdate, DER: der, revoked: make(map[string]int, len(rl.RevokedCertificateEntries))}
	for _, e := range rl.RevokedCertificateEntries {
		c.revoked[e.SerialNumber.Text(16)] = e.ReasonCode
	}
	return c, nil
}

// Len is the number of entries.
func (c *CRL) Len() int {
	if c == nil {
		return 0
	}
	return len(c.revoked)
}

// Check returns an error naming the certificate when the CRL lists its serial (a nil CRL lists none).
func (c *CRL) Check(cert *x509.Certificate) error {
	if c == nil || cert == nil {
		return nil
	}
	sn := cert.SerialNumber.Text(16)
	reason, ok := c.revoked[sn]
	if !ok {
		return nil
	}
	why := "revoked"
	switch reason {
	case ReasonCertificateHold:
		why = "on hold: the computer is deactivated (dsm_c -action reactivate lifts it)"
	case ReasonSuperseded:
		why = "superseded by a renewed certificate"
	}
	return fmt.Errorf("certificate %s of %q is %s (fleet CRL number %d)", sn, cert.Subject.CommonName, why, c.Number)
}
