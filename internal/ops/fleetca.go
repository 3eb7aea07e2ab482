package ops

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"tlsfleet/internal/pki"
)

// FleetCA is the fleet CA's certificate, which agents pin.
type FleetCA struct {
	PEM         string            `json:"pem"`
	Fingerprint string            `json:"fingerprint"` // SHA-256, as dsa_control -fingerprint takes it
	Cert        *x509.Certificate `json:"-"`
}

// ReadFleetCA reads the fleet CA certificate from the install folder (not its key: the front-ends never
// create or need the CA, which the Manager's first start made).
func (o *Ops) ReadFleetCA() (FleetCA, error) {
	caPath := o.folder.Path(pki.CAFile)
	data, err := os.ReadFile(caPath)
	if err != nil {
		return FleetCA{}, fmt.Errorf("read the fleet CA certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return FleetCA{}, fmt.Errorf("%s holds no PEM certificate", caPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return FleetCA{}, fmt.Errorf("%s: %w", caPath, err)
	}
	return FleetCA{PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})), Fingerprint: pki.Fingerprint(cert), Cert: cert}, nil
}
