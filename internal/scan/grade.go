package scan

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"

	"tlsfleet/internal/tlspolicy"
)

// The grading follows nmap's ssl-enum-ciphers so that both tools give every suite the same letter: a
// key-exchange strength in RSA-equivalent bits and a cipher strength in bits each map to a score, the
// weighted sum (43% key exchange, 57% cipher) maps to A–F.

// kexProps describes a key-exchange token of a suite name (the part between TLS_ and _WITH_) as nmap's
// table does: which certificate key it uses, what its ServerKeyExchange carries, and its flags.
type kexProps struct {
	pubkey string // certificate key type the exchange relies on: rsa, ec, dsa, dh; "" for none
	skx    string // what the ServerKeyExchange (or TLS 1.3 key_share) carries: dh, ec, rsa, srp, psk; "" for none
	pfs    bool
	anon   bool
	export bool
}

var kexTable = map[string]kexProps{
	"NULL":             {anon: true},
	"DH_anon":          {anon: true, skx: "dh"},
	"DH_anon_EXPORT":   {anon: true, export: true, skx: "dh"},
	"ECDH_anon":        {anon: true, skx: "ec"},
	"ECDH_anon_EXPORT": {anon: true, export: true, skx: "ec"},
	"RSA":              {pubkey: "rsa"},
	"RSA_FIPS":         {pubkey: "rsa"},
	"RSA_EXPORT":       {pubkey: "rsa", export: true, skx: "rsa"},
	"RSA_EXPORT1024":   {pubkey: "rsa", export: true, skx: "rsa"},
	"DHE_RSA":          {pubkey: "rsa", skx: "dh", pfs: true},
	"DHE_RSA_EXPORT":   {pubkey: "rsa", skx: "dh", pfs: true, export: true},
	"DHE_DSS":          {pubkey: "dsa", skx: "dh", pfs: true},
	"DHE_DSS_EXPORT":   {pubkey: "dsa", skx: "dh", pfs: true, export: true},
	"DH_DSS":           {pubkey: "dh"},
	"DH_DSS_EXPORT":    {pubkey: "dh", export: true},
	"DH_RSA":           {pubkey: "dh"},
	"DH_RSA_EXPORT":    {pubkey: "dh", export: true},
	"ECDHE_RSA":        {pubkey: "rsa", skx: "ec", pfs: true},
	"ECDHE_ECDSA":      {pubkey: "ec", skx: "ec", pfs: true},
	"ECDH_ECDSA":       {pubkey: "ec"},
	"ECDH_RSA":         {pubkey: "ec"},
	"PSK":              {skx: "psk"},
	"RSA_PSK":          {pubkey: "rsa", skx: "psk"},
	"DHE_PSK":          {skx: "dh", pfs: true},
	"PSK_DHE":          {skx: "dh", pfs: true},
	"ECDHE_PSK":        {skx: "ec", pfs: true},
	"SRP_SHA":          {skx: "srp", pfs: true},
	"SRP_SHA_DSS":      {pubkey: "dsa", skx: "srp", pfs: true},
	"SRP_SHA_RSA":      {pubkey: "rsa", skx: "srp", pfs: true},
	"KRB5_EXPORT":      {export: true},
	"AKE":              {skx: "ec", pfs: true}, // TLS 1.3: the key_share group stands in for a ServerKeyExchange
}

// cipherInfo is what a suite name says about its bulk cipher, read the way nmap reads it.
type cipherInfo struct {
	kex       string
	cipher    string // 3DES, AES, RC4, CHACHA20-POLY1305, ...
	size      int    // strength in bits (3DES counts 112, RC4 at most 80)
	sizeKnown bool
	blockBits int
	mode      string // CBC, GCM, CCM, CCM_8, stream, ...
	hash      string
	tls13     bool
}

// nmap's per-algorithm strengths (bits) and block sizes, for ciphers whose name carries no key size.
var cipherAlgorithms = map[string]struct{ size, block int }{
	"3DES": {112, 64}, "CHACHA20": {256, 128}, "IDEA": {128, 64}, "SEED": {128, 128}, "FORTEZZA": {80, 64},
	"DES": {56, 64}, "RC2": {40, 64}, "DES40": {40, 64}, "NULL": {0, 0}, "CAMELLIA": {-1, 128},
	"ARIA": {-1, 128}, "AES": {-1, 128}, "SM4": {128, 128},
}

// nmapName is the name nmap 7.93 uses for a suite: TLS 1.3 suites read TLS_AKE_WITH_*.
func nmapName(s tlspolicy.Suite) string {
	if s.TLS13 {
		return "TLS_AKE_WITH_" + strings.TrimPrefix(s.Name, "TLS_")
	}
	return s.Name
}

// parseCipherInfo decomposes a suite name in nmap's way.
func parseCipherInfo(name string) cipherInfo {
	tok := strings.Split(name, "_")
	var ci cipherInfo
	if len(tok) < 2 || tok[0] != "TLS" && tok[0] != "SSL" {
		return ci
	}
	i := 1
	for i < len(tok) && tok[i] != "WITH" {
		i++
	}
	ci.kex = strings.Join(tok[1:i], "_")
	kp := kexTable[ci.kex]
	ci.tls13 = ci.kex == "AKE"
	i++ // cipher
	if i >= len(tok) {
		return ci
	}
	ci.cipher = tok[i]
	if ci.cipher == "3DES" {
		i++ // EDE
	}
	if a, ok := cipherAlgorithms[ci.cipher]; ok {
		ci.blockBits = a.block
		if a.size >= 0 {
			ci.size, ci.sizeKnown = a.size, true
		}
	}
	if !ci.sizeKnown {
		i++
		if i < len(tok) {
			if n, err := strconv.Atoi(tok[i]); err == nil {
				ci.size, ci.sizeKnown = n, true
			}
		}
	}
	switch ci.cipher {
	case "RC4":
		ci.mode = "stream"
	case "CHACHA20":
		i++
		ci.cipher, ci.mode = "CHACHA20-POLY1305", "stream"
	case "NULL":
	default:
		i++
		if i < len(tok) {
			ci.mode = tok[i]
		}
	}
	if kp.export && i+1 < len(tok) {
		if n, err := strconv.Atoi(tok[i+1]); err == nil {
			i++
			ci.size, ci.sizeKnown = n, true
		}
	}
	if ci.cipher == "RC4" { // RFC 7465 forbids RC4: nmap caps its strength
		if !ci.sizeKnown {
			ci.size, ci.sizeKnown = 80, true
		}
		ci.size = min(ci.size, 80)
	}
	if ci.mode == "CCM" {
		ci.hash = "SHA256"
	}
	i++
	if i < len(tok) {
		if tok[i] == "8" && ci.mode == "CCM" {
			ci.mode = "CCM_8"
			i++
		} else if _, err := strconv.Atoi(tok[i]); err == nil && kp.export {
			n, _ := strconv.Atoi(tok[i])
			ci.size = n
			i++
		}
		if i < len(tok) {
			ci.hash = tok[i]
		}
	}
	return ci
}

// rsaEquivalent converts a key size to RSA-equivalent bits (NIST SP 800-57), as nmap does.
func rsaEquivalent(keyType string, bits int) (int, bool) {
	switch keyType {
	case "rsa", "dsa", "dh":
		return bits, true
	case "ec":
		switch {
		case bits < 160:
			return 512, true
		case bits < 224:
			return 1024, true
		case bits < 256:
			return 2048, true
		case bits < 384:
			return 3072, true
		case bits < 512:
			return 7680, true
		default:
			return 15360, true
		}
	}
	return 0, false
}

// score combines key-exchange and cipher strength; ok is false when either is unknown.
func score(kexStrength int, kexKnown bool, ci cipherInfo) (float64, bool) {
	if !kexKnown || !ci.sizeKnown {
		return 0, false
	}
	if kexStrength <= 0 || ci.size <= 0 {
		return 0, true
	}
	var kexScore, cipherScore float64
	switch {
	case kexStrength < 512:
		kexScore = 0.2
	case kexStrength < 1024:
		kexScore = 0.4
	case kexStrength < 2048:
		kexScore = 0.8
	case kexStrength < 4096:
		kexScore = 0.9
	default:
		kexScore = 1.0
	}
	switch {
	case ci.size < 128:
		cipherScore = 0.2
	case ci.size < 256:
		cipherScore = 0.8
	default:
		cipherScore = 1.0
	}
	// Two separately rounded products, as in nmap's Lua (float64 conversions forbid a fused multiply-add).
	return float64(0.43*kexScore) + float64(0.57*cipherScore), true
}

// letter maps a score to A–F with nmap's thresholds.
func letter(s float64, ok bool) string {
	switch {
	case !ok:
		return "unknown"
	case s >= 0.80:
		return "A"
	case s >= 0.65:
		return "B"
	case s >= 0.50:
		return "C"
	case s >= 0.35:
		return "D"
	case s >= 0.20:
		return "E"
	}
	return "F"
}

// groupStrength is nmap's size for a named group: the number in its name (x25519 and curveSM2 count
// 256), with ffdhe groups as finite-field DH.
func groupStrength(name string) (keyType string, bits int) {
	if strings.HasPrefix(name, "arbitrary") {
		return "ec", 0
	}
	i := strings.IndexFunc(name, func(r rune) bool { return r >= '0' && r <= '9' })
	if i < 0 {
		return "ec", 0
	}
	j := i
	for j < len(name) && name[j] >= '0' && name[j] <= '9' {
		j++
	}
	bits, _ = strconv.Atoi(name[i:j])
	if strings.HasPrefix(name, "ffdhe") {
		return "dh", bits
	}
	if name == "ecdh_x25519" || name == "curveSM2" {
		bits = 256
	}
	return "ec", bits
}

// nmapGroupName is the name nmap gives a named group in kex output.
func nmapGroupName(id uint16) string {
	switch id {
	case 29:
		return "ecdh_x25519"
	case 30:
		return "ecdh_x448"
	}
	return tlspolicy.GroupName(tlsCurve(id))
}

// insecureSignature returns the weak hash in a certificate signature algorithm (Go's name, such as
// SHA1-RSA or ECDSA-SHA1), or "".
func insecureSignature(sig string) string {
	u := strings.ToUpper(sig)
	for _, h := range []string{"MD2", "MD4", "MD5", "SHA1"} {
		if strings.Contains(u, h) {
			return h
		}
	}
	return ""
}

// suiteGrade grades one accepted suite from what its probe saw, adding nmap's warnings to w.
func suiteGrade(proto string, s tlspolicy.Suite, cert *certInfo, kx *kexSeen, w map[string]bool) (kexInfo, grade string, pfs bool) {
	ci := parseCipherInfo(nmapName(s))
	kp := kexTable[ci.kex]
	if ci.hash == "MD5" {
		w["Ciphersuite uses MD5 for message integrity"] = true
	}
	if ci.mode == "CBC" && ci.blockBits > 0 && ci.blockBits <= 64 {
		w[fmt.Sprintf("64-bit block cipher %s vulnerable to SWEET32 attack", ci.cipher)] = true
	}
	if proto == tlspolicy.SSLv3.ScanName() && ci.mode == "CBC" {
		w["CBC-mode cipher in SSLv3 (CVE-2014-3566)"] = true
	} else if ci.cipher == "RC4" {
		w["Broken cipher RC4 is deprecated by RFC 7465"] = true
	}
	if proto == tlspolicy.TLSv1_3.ScanName() && !ci.tls13 {
		w["Non-TLSv1.3 ciphersuite chosen for TLSv1.3"] = true
	}
	var strength int
	known := false
	if kp.export {
		w["Export key exchange"] = true
		strength, known = 512, true
		if strings.HasSuffix(ci.kex, "1024") {
			strength = 1024
		}
	}
	if kp.anon {
		w["Anonymous key exchange, score capped at F"] = true
		strength, known = 0, true
	} else if kp.pubkey != "" && cert != nil && cert.keyType == kp.pubkey {
		if h := insecureSignature(cert.signature); h != "" {
			strength, known = 0, true
			w[fmt.Sprintf("Insecure certificate signature (%s), score capped at F", h)] = true
		}
		if eq, ok := rsaEquivalent(cert.keyType, cert.bits); ok {
			if !known || eq < strength {
				strength = eq
			}
			known = true
		}
		if cert.exponent == 1 {
			strength = 0
			w["Certificate RSA exponent is 1, score capped at F"] = true
		}
		if cert.curve != "" {
			kexInfo = cert.curve
		} else {
			kexInfo = fmt.Sprintf("%s %d", cert.keyType, cert.bits)
		}
	}
	if kx != nil && kx.bits > 0 {
		kexType := kx.keyType
		if kx.curve != "" {
			kexInfo = kx.curve
		} else {
			kexInfo = fmt.Sprintf("%s %d", kexType, kx.bits)
		}
		if eq, ok := rsaEquivalent(kexType, kx.bits); ok {
			if known && strength > eq {
				strength = eq
				w[fmt.Sprintf("Key exchange (%s) of lower strength than certificate key", kexInfo)] = true
			}
			if !known || eq < strength {
				strength = eq
			}
			known = true
		}
	}
	return kexInfo, letter(score(strength, known, ci)), kp.pfs
}

// worstGrade returns the weaker of two letters in nmap's sense (string order: A < B < ... < F < unknown).
func worstGrade(a, b string) string {
	if b > a {
		return b
	}
	return a
}

func tlsCurve(id uint16) tls.CurveID { return tls.CurveID(id) }
