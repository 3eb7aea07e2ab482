package tlspolicy

import (
	"strings"
	"sync"
)

// This file gives java.security entries the JDK's meaning: an algorithm name disables a cipher suite when
// it equals (case-insensitively) the suite's name or one of the sub-elements the JDK decomposes the suite
// into; a name with a keySize constraint restricts keys only.

// jdkComponents returns the sub-elements of a suite, named as the JDK names them (key exchange, bulk cipher
// transformation and name, MAC, PRF hash). For suites the JDK does not implement, the same rules are
// applied to the decomposed parts so that entries such as CAMELLIA or PSK still mean what they say.
func jdkComponents(s Suite) []string {
	var c []string
	switch s.KexAuth {
	case "NULL":
		c = append(c, "K_NULL")
	case "RSA":
		c = append(c, "RSA")
	case "RSA_EXPORT", "RSA_EXPORT1024":
		c = append(c, "RSA", "RSA_EXPORT")
	case "DH_RSA", "DH_RSA_EXPORT":
		c = append(c, "RSA", "DH", "DiffieHellman", "DH_RSA")
	case "DH_DSS", "DH_DSS_EXPORT":
		c = append(c, "DSA", "DSS", "DH", "DiffieHellman", "DH_DSS")
	case "DHE_DSS", "DHE_DSS_EXPORT", "DHE_DSS_EXPORT1024":
		c = append(c, "DSA", "DSS", "DH", "DHE", "DiffieHellman", "DHE_DSS")
	case "DHE_RSA", "DHE_RSA_EXPORT":
		c = append(c, "RSA", "DH", "DHE", "DiffieHellman", "DHE_RSA")
	case "DH_anon", "DH_anon_EXPORT":
		c = append(c, "ANON", "DH", "DiffieHellman", "DH_ANON")
	case "ECDH_ECDSA":
		c = append(c, "ECDH", "ECDSA", "ECDH_ECDSA")
	case "ECDH_RSA":
		c = append(c, "ECDH", "RSA", "ECDH_RSA")
	case "ECDHE_ECDSA":
		c = append(c, "ECDHE", "ECDSA", "ECDHE_ECDSA")
	case "ECDHE_RSA":
		c = append(c, "ECDHE", "RSA", "ECDHE_RSA")
	case "ECDH_anon":
		c = append(c, "ECDH", "ANON", "ECDH_ANON")
	case "":
	default:
		c = append(c, s.KexAuth)
		c = append(c, strings.Split(s.KexAuth, "_")...)
	}
	// Bulk cipher: the JCE transformation's parts, then the suite-specific name.
	switch s.CipherFamily {
	case "NULL":
		c = append(c, "NULL", "C_NULL")
	case "RC4":
		c = append(c, "RC4", s.Cipher)
	case "RC2":
		c = append(c, "RC2", "RC2_CBC_40")
	case "DES":
		c = append(c, "DES", "CBC", "NoPadding")
		if s.KeyBits == 40 {
			c = append(c, "DES40_CBC", "DES_CBC_40")
		} else {
			c = append(c, "DES_CBC")
		}
	case "3DES":
		c = append(c, "DESede", "CBC", "NoPadding", "3DES_EDE_CBC")
	case "CHACHA20":
		// The JDK names it by its transformation only; "CHACHA20_POLY1305" matches nothing there.
		c = append(c, "ChaCha20-Poly1305")
	case "":
	default:
		c = append(c, s.CipherFamily, s.Cipher)
		if s.Mode != "" && s.Mode != "AEAD" {
			c = append(c, s.Mode, "NoPadding")
		}
	}
	c = append(c, hashComponents(s.MAC)...)
	c = append(c, hashComponents(s.PRF)...)
	if s.MAC == "NULL" && s.CipherFamily != "NULL" {
		c = append(c, "M_NULL")
	}
	return c
}

func hashComponents(h string) []string {
	switch h {
	case "MD5":
		return []string{"MD5", "HmacMD5"}
	case "SHA1":
		return []string{"SHA1", "SHA-1", "HmacSHA1"}
	case "SHA256":
		return []string{"SHA256", "SHA-256", "HmacSHA256"}
	case "SHA384":
		return []string{"SHA384", "SHA-384", "HmacSHA384"}
	}
	return nil
}

// matchesSuite reports whether an unconstrained entry disables the suite.
func (e DisabledEntry) matchesSuite(s Suite) bool {
	if e.Constrained() || s.SCSV {
		return false
	}
	name := e.upper
	if name == "" {
		name = strings.ToUpper(e.Algorithm)
	}
	// JDK 17 has no wildcards (JDK 24 added them): "TLS_RSA_*" is a name no suite has, and removes
	// nothing. describeEntry says so.
	return suiteComponents(s.ID)[name]
}

var (
	componentsOnce sync.Once
	componentSets  map[uint16]map[string]bool
)

// suiteComponents returns, upper-cased, the suite's names (IANA and SSL_) and JDK sub-elements. They are
// computed once: java.security matching runs for every entry and every registered suite.
func suiteComponents(id uint16) map[string]bool {
	componentsOnce.Do(func() {
		componentSets = make(map[uint16]map[string]bool, len(Registry()))
		for _, s := range Registry() {
			set := map[string]bool{
				strings.ToUpper(s.Name): true,
				"SSL_" + strings.ToUpper(strings.TrimPrefix(s.Name, "TLS_")): true,
			}
			for _, c := range jdkComponents(s) {
				set[strings.ToUpper(c)] = true
			}
			componentSets[s.ID] = set
		}
	})
	return componentSets[id]
}

// matchesVersion reports whether an entry disables a protocol version.
func (e DisabledEntry) matchesVersion(v Version) bool {
	if e.Constrained() {
		return false
	}
	// The JDK compares protocol names as it spells them, ignoring case: "TLSv1.2" or "tlsv1.2", never
	// "TLS1.2" (describeEntry warns about such a spelling).
	return strings.EqualFold(e.Algorithm, v.String())
}

// keyAlgorithmAliases maps a java.security key-algorithm name to the key families it covers.
var keyAlgorithmAliases = map[string][]string{
	"RSA": {"RSA"}, "RSASSA-PSS": {"RSA"},
	"EC": {"EC"}, "ECDSA": {"EC"},
	"DH": {"DH"}, "DIFFIEHELLMAN": {"DH"},
	"DSA":   {"DSA"},
	"EDDSA": {"Ed25519"}, "ED25519": {"Ed25519"},
	"XDH": {"XDH"}, "X25519": {"XDH"},
}

// forbidsKey reports whether the entry disables a key of the given family ("RSA", "EC", "Ed25519", "DH",
// "DSA", "XDH") and size.
func (e DisabledEntry) forbidsKey(family string, bits int) bool {
	fams, ok := keyAlgorithmAliases[strings.ToUpper(e.Algorithm)]
	if !ok || e.JDKCA || e.DenyAfter != "" || len(e.Usage) > 0 {
		return false
	}
	found := false
	for _, f := range fams {
		if f == family {
			found = true
		}
	}
	if !found {
		return false
	}
	if len(e.KeySize) == 0 {
		// A bare RSA or EC entry in the JDK disables the algorithm in every use. We apply it to keys only
		// when the name is not also a suite component (RSA is; it already removes the RSA suites).
		switch strings.ToUpper(e.Algorithm) {
		case "EC", "DSA", "RSA", "XDH":
			return true
		}
		return false
	}
	for _, k := range e.KeySize {
		if !k.Disallows(bits) {
			return false
		}
	}
	return true
}

// forbidsGroup reports whether the entry disables a key-exchange group: by its name, or by an EC, XDH or DH
// constraint on the group's key. x25519 and x448 are XDH in the JDK, so "EC keySize < ..." and a bare "EC"
// leave them alone; a hybrid counts as its classical half.
func (e DisabledEntry) forbidsGroup(g Group) bool {
	if !e.Constrained() {
		if strings.EqualFold(e.Algorithm, g.Name) {
			return true
		}
		if alias, ok := groupAliases[strings.ToLower(e.Algorithm)]; ok && alias == g.Name {
			return true
		}
	}
	switch fam, bits := g.keyFamily(); fam {
	case "EC":
		// Only the key-agreement name counts here: "ECDSA keySize < 256" restricts signature keys.
		return strings.EqualFold(e.Algorithm, "EC") && e.forbidsKey("EC", bits)
	case "XDH", "DH":
		return e.forbidsKey(fam, bits)
	}
	return false
}

// signatureAlgorithmRE-like recognition: "SHA1withRSA", "MD5withRSA", "SHA256withECDSA", TLS signature
// scheme names (rsa_pkcs1_sha1, ecdsa_sha1) and bare hash names.
func isSignatureName(name string) bool {
	n := strings.ToUpper(name)
	if strings.HasPrefix(n, "TLS_") || strings.HasPrefix(n, "SSL_") {
		return false // a cipher-suite name ("…_WITH_…"), not a signature algorithm
	}
	if strings.Contains(n, "WITH") {
		return true
	}
	switch n {
	case "MD2", "MD5", "SHA1", "SHA-1", "SHA224", "SHA-224":
		return true
	}
	return strings.HasPrefix(n, "RSA_PKCS1_") || strings.HasPrefix(n, "ECDSA_") || strings.HasPrefix(n, "DSA_") || strings.HasPrefix(n, "RSA_PSS_")
}

// forbidsCertSignature reports whether the entry disables a certificate signature algorithm in a chain of the
// given kind ("TLSServer" for the listener's own chain, "TLSClient" for a mutual-TLS peer's), given as Go's
// x509.SignatureAlgorithm.String() ("SHA1-RSA", "SHA256-RSA", "ECDSA-SHA1", "MD5-RSA").
func (e DisabledEntry) forbidsCertSignature(goName, chain string) bool {
	if e.Constrained() && !usageOnly(e, "CertificateSignature", chain) {
		return false
	}
	hash, alg := splitGoSigName(goName)
	if hash == "" {
		return false
	}
	n := strings.ToUpper(e.Algorithm)
	if before, after, ok := strings.Cut(n, "WITH"); ok {
		return normHash(before) == hash && (after == alg || after == "RSA" && alg == "RSAPSS")
	}
	return normHash(n) == hash
}

func usageOnly(e DisabledEntry, allowed ...string) bool {
	if len(e.KeySize) > 0 || e.JDKCA || e.DenyAfter != "" || len(e.Usage) == 0 {
		return false
	}
	for _, u := range e.Usage {
		ok := false
		for _, a := range allowed {
			ok = ok || u == a
		}
		if !ok {
			return false
		}
	}
	return true
}

func normHash(h string) string {
	return strings.ReplaceAll(strings.ToUpper(h), "-", "")
}

// splitGoSigName turns "SHA256-RSA" / "ECDSA-SHA1" / "SHA256-RSAPSS" / "MD5-RSA" into (hash, algorithm).
func splitGoSigName(s string) (hash, alg string) {
	a, b, ok := strings.Cut(strings.ToUpper(s), "-")
	if !ok {
		return "", ""
	}
	if strings.HasPrefix(a, "SHA") || strings.HasPrefix(a, "MD") {
		return a, b
	}
	return b, a
}
