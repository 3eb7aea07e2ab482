package tlspolicy

import (
	"crypto/tls"
	"strings"
)

// sigScheme is a TLS signature scheme Go can sign handshakes with, and the names a java.security entry may
// use for it: the TLS name (rsa_pss_rsae_sha256), the JCA name (SHA256withRSAandMGF1), its hash and key
// algorithm.
type sigScheme struct {
	id     tls.SignatureScheme
	name   string
	jca    string
	hash   string
	keyAlg []string
	key    string // certificate key family it needs: RSA, EC, Ed25519
	bits   int    // for ECDSA in TLS 1.3: the curve size it is bound to
	tls12  bool   // usable only up to TLS 1.2
}

var sigSchemes = []sigScheme{
	{tls.PSSWithSHA256, "rsa_pss_rsae_sha256", "SHA256withRSAandMGF1", "SHA256", []string{"RSA", "RSASSA-PSS"}, "RSA", 0, false},
	{tls.PSSWithSHA384, "rsa_pss_rsae_sha384", "SHA384withRSAandMGF1", "SHA384", []string{"RSA", "RSASSA-PSS"}, "RSA", 0, false},
	{tls.PSSWithSHA512, "rsa_pss_rsae_sha512", "SHA512withRSAandMGF1", "SHA512", []string{"RSA", "RSASSA-PSS"}, "RSA", 0, false},
	{tls.PKCS1WithSHA256, "rsa_pkcs1_sha256", "SHA256withRSA", "SHA256", []string{"RSA"}, "RSA", 0, true},
	{tls.PKCS1WithSHA384, "rsa_pkcs1_sha384", "SHA384withRSA", "SHA384", []string{"RSA"}, "RSA", 0, true},
	{tls.PKCS1WithSHA512, "rsa_pkcs1_sha512", "SHA512withRSA", "SHA512", []string{"RSA"}, "RSA", 0, true},
	{tls.ECDSAWithP256AndSHA256, "ecdsa_secp256r1_sha256", "SHA256withECDSA", "SHA256", []string{"EC", "ECDSA"}, "EC", 256, false},
	{tls.ECDSAWithP384AndSHA384, "ecdsa_secp384r1_sha384", "SHA384withECDSA", "SHA384", []string{"EC", "ECDSA"}, "EC", 384, false},
	{tls.ECDSAWithP521AndSHA512, "ecdsa_secp521r1_sha512", "SHA512withECDSA", "SHA512", []string{"EC", "ECDSA"}, "EC", 521, false},
	{tls.Ed25519, "ed25519", "Ed25519", "", []string{"Ed25519", "EdDSA"}, "Ed25519", 0, false},
}

// forbidsHandshakeScheme reports whether an entry disables a signature scheme for handshake signatures:
// by the scheme's TLS or JCA name, its hash, or its key algorithm, unconstrained or with
// "usage HandshakeSignature".
func (e DisabledEntry) forbidsHandshakeScheme(s sigScheme) bool {
	if len(e.KeySize) > 0 || e.JDKCA || e.DenyAfter != "" {
		return false
	}
	if len(e.Usage) > 0 && !usageOnly(e, "HandshakeSignature") {
		return false
	}
	n := strings.ToUpper(e.Algorithm)
	if n == strings.ToUpper(s.name) || n == strings.ToUpper(s.jca) || s.hash != "" && normHash(n) == s.hash {
		return true
	}
	for _, k := range s.keyAlg {
		if n == strings.ToUpper(k) {
			return true
		}
	}
	return false
}

// schemesFor lists the schemes Go would sign with for a certificate in some TLS version.
func schemesFor(c CertInfo) []sigScheme {
	var out []sigScheme
	for _, s := range sigSchemes {
		if s.key == certKeyFamily(c) {
			out = append(out, s)
		}
	}
	return out
}

// minRSABytes is the smallest RSA modulus, in bytes, that can carry the scheme: PSS needs two hash lengths
// plus two bytes, PKCS #1 v1.5 the DigestInfo prefix (19 bytes), the hash and 11 bytes of padding.
func (s sigScheme) minRSABytes() int {
	h := map[string]int{"SHA256": 32, "SHA384": 48, "SHA512": 64}[s.hash]
	if strings.HasPrefix(s.name, "rsa_pss") {
		return 2*h + 2
	}
	return 19 + h + 11
}
