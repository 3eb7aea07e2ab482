package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestCAAndServerCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []KeyType{ECDSAP256, RSA2048} {
		sub := filepath.Join(dir, string(kt))
		os.Mkdir(sub, 0o700)
		cert, err := ca.LoadOrCreateServer(sub, kt, []string{"manager.example", "10.0.0.5"})
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(cert.Certificate[0])
		pool := x509.NewCertPool()
		pool.AddCert(ca.Cert)
		for _, name := range []string{"localhost", "manager.example", "10.0.0.5", "127.0.0.1"} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
				t.Errorf("%s: %s: %v", kt, name, err)
			}
		}
		if st, _ := os.Stat(filepath.Join(sub, ServerKeyFile)); st.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v", st.Mode())
		}
	}
	again, err := LoadOrCreateCA(dir)
	if err != nil || again.Fingerprint() != ca.Fingerprint() {
		t.Errorf("reloaded CA differs: %v", err)
	}
	if len(ca.Fingerprint()) != 95 {
		t.Errorf("fingerprint %q", ca.Fingerprint())
	}
}
