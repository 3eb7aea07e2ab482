package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

func testAgentCert(t testing.TB, ca *CA, guid string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: guid}}, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.IssueAgent(csr, guid)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A CRL signed by the fleet CA lists held and superseded serials; another CA's CRL is refused.
func TestCRL(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := LoadOrCreateCA(t.TempDir())
	held, superseded, fine := testAgentCert(t, ca, "g-held"), testAgentCert(t, ca, "g-old"), testAgentCert(t, ca, "g-fine")
	now := time.Now()
	der, err := ca.SignCRL(7, []Revoked{{Serial: held.SerialNumber, RevokedAt: now, Reason: ReasonCertificateHold},
		{Serial: superseded.SerialNumber, RevokedAt: now, Reason: ReasonSuperseded}}, now)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ParseCRL(der, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if crl.Number != 7 || crl.Len() != 2 {
		t.Errorf("number %d, %d entries; want 7, 2", crl.Number, crl.Len())
	}
	for _, tt := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{
		{"held", held, "on hold"},
		{"superseded", superseded, "superseded"},
		{"not listed", fine, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := crl.Check(tt.cert)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check = %v, want %q", err, tt.want)
			}
		})
	}
	var none *CRL
	if none.Check(held) != nil {
		t.Error("a nil CRL revokes")
	}
	if _, err := ParseCRL(der, other.Cert); !errors.Is(err, ErrCRLSignature) {
		t.Errorf("another CA's key: %v, want ErrCRLSignature", err)
	}
	for _, bad := range [][]byte{nil, []byte("garbage"), der[:len(der)/2]} {
		if _, err := ParseCRL(bad, ca.Cert); err == nil {
			t.Errorf("ParseCRL(%d bytes of garbage) accepted", len(bad))
		}
	}
}

// BenchmarkCRL measures what a fleet's CRL costs: its size per entry, the Manager's signing and a
// listener's loading (parse, signature check, index), for 10,000 and 50,000 entries.
func BenchmarkCRL(b *testing.B) {
	ca, err := LoadOrCreateCA(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10_000, 50_000} {
		entries := make([]Revoked, n)
		now := time.Now()
		for i := range entries {
			sn, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
			entries[i] = Revoked{Serial: sn, RevokedAt: now, Reason: ReasonCertificateHold}
		}
		der, err := ca.SignCRL(1, entries, now)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("sign/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := ca.SignCRL(1, entries, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(der))/float64(n), "bytes/entry")
			b.ReportMetric(float64(len(der)), "crl-bytes")
		})
		b.Run(fmt.Sprintf("load/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := ParseCRL(der, ca.Cert); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzParseCRL: a CRL comes over the network (pushed to 4118, fetched from 4120); whatever the bytes,
// ParseCRL returns a verified list or an error, never panics.
func FuzzParseCRL(f *testing.F) {
	ca, err := LoadOrCreateCA(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	der, err := ca.SignCRL(3, []Revoked{{Serial: big.NewInt(42), RevokedAt: time.Now(), Reason: ReasonCertificateHold}}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	f.Add([]byte("garbage"))
	f.Add(der[:len(der)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		crl, err := ParseCRL(b, ca.Cert)
		if err == nil && crl.Number < 0 {
			t.Errorf("accepted a negative CRL number %d", crl.Number)
		}
	})
}
