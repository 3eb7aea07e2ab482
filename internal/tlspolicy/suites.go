package tlspolicy

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Suite is one entry of the IANA TLS cipher-suite registry, decomposed into its parts. The decomposition is
// derived from the IANA name, so that every registered suite — including the many that Go does not
// implement — can be named, matched against java.security entries and graded by the scanner.
type Suite struct {
	ID      uint16
	Name    string // IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	OpenSSL string // OpenSSL name where one exists, e.g. ECDHE-RSA-AES128-GCM-SHA256

	// KeyExchange is how the premaster/shared secret is made: RSA, DH, DHE, ECDH, ECDHE, PSK, DHE_PSK,
	// RSA_PSK, ECDHE_PSK, SRP, KRB5, ECCPWD, GOST, NULL; "" for TLS 1.3 suites, whose key exchange is
	// negotiated separately (always (EC)DHE or PSK).
	KeyExchange string
	// Auth is how the server authenticates: RSA, DSS, ECDSA, anon, PSK, SRP, KRB5, ECCPWD, GOST, NULL;
	// "" for TLS 1.3 suites (the certificate decides).
	Auth string
	// KexAuth is the raw key-exchange token of the IANA name (DHE_RSA, ECDH_anon, RSA_EXPORT, ...).
	KexAuth string

	Cipher       string // the IANA cipher token: AES_128_GCM, 3DES_EDE_CBC, RC4_128, CHACHA20_POLY1305, NULL
	CipherFamily string // AES, 3DES, DES, RC4, RC2, IDEA, CAMELLIA, ARIA, SEED, CHACHA20, AEGIS, SM4, GOST, NULL
	KeyBits      int    // nominal key size of the bulk cipher in bits (3DES 168, DES 56, export 40)
	BlockBits    int    // block size in bits for block ciphers (64 for 3DES, DES, IDEA, RC2); 0 for others
	Mode         string // CBC, GCM, CCM, CCM_8, STREAM, AEAD, CTR, CNT, MGM, NULL
	MAC          string // MD5, SHA1, SHA256, SHA384, OMAC, IMIT, AEAD, NULL
	PRF          string // hash of the PRF (TLS 1.2) or HKDF (TLS 1.3): SHA256, SHA384, SHA512, SM3; "" if none

	Export bool // an export-grade suite (40- or 56-bit)
	SCSV   bool // a signalling value, not a real suite
	TLS13  bool // a TLS 1.3 suite (negotiable only in TLS 1.3)

	MinVersion Version // oldest protocol version that can negotiate the suite
	MaxVersion Version // newest protocol version that can negotiate the suite
}

// AEAD reports whether the suite uses an authenticated-encryption mode.
func (s Suite) AEAD() bool { return s.MAC == "AEAD" }

// ForwardSecret reports whether the key exchange is ephemeral (or the suite is a TLS 1.3 suite).
func (s Suite) ForwardSecret() bool {
	switch s.KeyExchange {
	case "", "DHE", "ECDHE", "DHE_PSK", "ECDHE_PSK", "ECCPWD":
		return !s.SCSV
	}
	return false
}

// Strong reports whether the suite belongs to the strong set that settings.configuration.enableStrongCiphers
// keeps: ECDHE key exchange with an AEAD cipher (or a TLS 1.3 suite, all of which have both).
func (s Suite) Strong() bool {
	if s.SCSV {
		return false
	}
	if s.TLS13 {
		return s.CipherFamily != "NULL"
	}
	return s.KeyExchange == "ECDHE" && s.AEAD() && (s.Auth == "RSA" || s.Auth == "ECDSA")
}

// GoImplemented reports whether Go's crypto/tls can negotiate the suite as a server.
func (s Suite) GoImplemented() bool { return goSuites()[s.ID] }

// SupportsVersion reports whether the suite can be negotiated in protocol version v.
func (s Suite) SupportsVersion(v Version) bool { return v >= s.MinVersion && v <= s.MaxVersion }

func (s Suite) String() string { return s.Name }

var (
	registryOnce sync.Once
	registry     []Suite
	byID         map[uint16]int
	byName       map[string]int // upper-cased IANA, JDK SSL_ and OpenSSL names
)

func loadRegistry() {
	registryOnce.Do(func() {
		registry = make([]Suite, 0, len(ianaSuites))
		byID = make(map[uint16]int, len(ianaSuites))
		byName = make(map[string]int, 3*len(ianaSuites))
		for _, e := range ianaSuites {
			s := decompose(e.id, e.name)
			s.OpenSSL = e.openssl
			byID[s.ID] = len(registry)
			byName[strings.ToUpper(s.Name)] = len(registry)
			if strings.HasPrefix(s.Name, "TLS_") && !s.TLS13 {
				// The JDK and old OpenSSL documentation spell the SSLv3-era suites with SSL_.
				byName["SSL_"+strings.ToUpper(s.Name[4:])] = len(registry)
			}
			if s.OpenSSL != "" {
				if _, taken := byName[strings.ToUpper(s.OpenSSL)]; !taken {
					byName[strings.ToUpper(s.OpenSSL)] = len(registry)
				}
			}
			registry = append(registry, s)
		}
	})
}

// Registry returns every registered suite, sorted by code point. The slice is shared: do not modify it.
func Registry() []Suite {
	loadRegistry()
	return registry
}

// SuiteByID returns the registered suite with the given code point.
func SuiteByID(id uint16) (Suite, bool) {
	loadRegistry()
	i, ok := byID[id]
	if !ok {
		return Suite{}, false
	}
	return registry[i], true
}

// SuiteName returns the IANA name of a code point, or its hex form when unassigned.
func SuiteName(id uint16) string {
	if s, ok := SuiteByID(id); ok {
		return s.Name
	}
	return fmt.Sprintf("0x%04X", id)
}

// LookupSuite finds a suite by its IANA name, its JDK SSL_ spelling, its OpenSSL name (all
// case-insensitive) or a hex code point such as 0xC02F.
func LookupSuite(name string) (Suite, bool) {
	loadRegistry()
	n := strings.ToUpper(strings.TrimSpace(name))
	if i, ok := byName[n]; ok {
		return registry[i], true
	}
	if strings.HasPrefix(n, "0X") && len(n) <= 6 {
		if v, err := strconv.ParseUint(n[2:], 16, 16); err == nil {
			return SuiteByID(uint16(v))
		}
	}
	return Suite{}, false
}

var (
	goSuitesOnce sync.Once
	goSuiteSet   map[uint16]bool
)

// goSuites is the set of suites that crypto/tls implements, secure or not.
func goSuites() map[uint16]bool {
	goSuitesOnce.Do(func() {
		goSuiteSet = map[uint16]bool{}
		for _, cs := range tls.CipherSuites() {
			goSuiteSet[cs.ID] = true
		}
		for _, cs := range tls.InsecureCipherSuites() {
			goSuiteSet[cs.ID] = true
		}
	})
	return goSuiteSet
}

// kexAuthTokens decomposes the key-exchange token of an IANA name (the part between TLS_ and _WITH_).
var kexAuthTokens = map[string]struct {
	kex, auth string
	export    bool
}{
	"NULL":               {"NULL", "NULL", false},
	"RSA":                {"RSA", "RSA", false},
	"RSA_EXPORT":         {"RSA", "RSA", true},
	"RSA_EXPORT1024":     {"RSA", "RSA", true},
	"DH_DSS":             {"DH", "DSS", false},
	"DH_DSS_EXPORT":      {"DH", "DSS", true},
	"DH_RSA":             {"DH", "RSA", false},
	"DH_RSA_EXPORT":      {"DH", "RSA", true},
	"DHE_DSS":            {"DHE", "DSS", false},
	"DHE_DSS_EXPORT":     {"DHE", "DSS", true},
	"DHE_DSS_EXPORT1024": {"DHE", "DSS", true},
	"DHE_RSA":            {"DHE", "RSA", false},
	"DHE_RSA_EXPORT":     {"DHE", "RSA", true},
	"DH_anon":            {"DH", "anon", false},
	"DH_anon_EXPORT":     {"DH", "anon", true},
	"KRB5":               {"KRB5", "KRB5", false},
	"KRB5_EXPORT":        {"KRB5", "KRB5", true},
	"PSK":                {"PSK", "PSK", false},
	"DHE_PSK":            {"DHE_PSK", "PSK", false},
	"RSA_PSK":            {"RSA_PSK", "PSK", false},
	"ECDHE_PSK":          {"ECDHE_PSK", "PSK", false},
	"ECDH_ECDSA":         {"ECDH", "ECDSA", false},
	"ECDHE_ECDSA":        {"ECDHE", "ECDSA", false},
	"ECDH_RSA":           {"ECDH", "RSA", false},
	"ECDHE_RSA":          {"ECDHE", "RSA", false},
	"ECDH_anon":          {"ECDH", "anon", false},
	"SRP_SHA":            {"SRP", "SRP", false},
	"SRP_SHA_RSA":        {"SRP", "RSA", false},
	"SRP_SHA_DSS":        {"SRP", "DSS", false},
	"ECCPWD":             {"ECCPWD", "ECCPWD", false},
	"GOSTR341112_256":    {"GOST", "GOST", false},
	"GOSTR341001":        {"GOST", "GOST", false},
	"GOSTR341094":        {"GOST", "GOST", false},
}

type cipherInfo struct {
	family    string
	bits      int
	blockBits int
	mode      string
}

// cipherTokens decomposes the bulk-cipher token of an IANA name.
var cipherTokens = map[string]cipherInfo{
	"NULL":              {"NULL", 0, 0, "NULL"},
	"RC4_40":            {"RC4", 40, 0, "STREAM"},
	"RC4_56":            {"RC4", 56, 0, "STREAM"},
	"RC4_128":           {"RC4", 128, 0, "STREAM"},
	"RC2_CBC_40":        {"RC2", 40, 64, "CBC"},
	"RC2_CBC_56":        {"RC2", 56, 64, "CBC"},
	"IDEA_CBC":          {"IDEA", 128, 64, "CBC"},
	"DES40_CBC":         {"DES", 40, 64, "CBC"},
	"DES_CBC_40":        {"DES", 40, 64, "CBC"},
	"DES_CBC":           {"DES", 56, 64, "CBC"},
	"3DES_EDE_CBC":      {"3DES", 168, 64, "CBC"},
	"SEED_CBC":          {"SEED", 128, 128, "CBC"},
	"CHACHA20_POLY1305": {"CHACHA20", 256, 0, "AEAD"},
	"28147_CNT":         {"GOST", 256, 64, "CNT"},
	"KUZNYECHIK_CTR":    {"KUZNYECHIK", 256, 128, "CTR"},
	"MAGMA_CTR":         {"MAGMA", 256, 64, "CTR"},
	"KUZNYECHIK_MGM_L":  {"KUZNYECHIK", 256, 128, "MGM"},
	"KUZNYECHIK_MGM_S":  {"KUZNYECHIK", 256, 128, "MGM"},
	"MAGMA_MGM_L":       {"MAGMA", 256, 64, "MGM"},
	"MAGMA_MGM_S":       {"MAGMA", 256, 64, "MGM"},
	"AEGIS_128L":        {"AEGIS", 128, 0, "AEAD"},
	"ASCONAEAD128":      {"ASCON", 128, 0, "AEAD"},
	"AEGIS_256":         {"AEGIS", 256, 0, "AEAD"},
	"SM4_GCM":           {"SM4", 128, 128, "GCM"},
	"SM4_CCM":           {"SM4", 128, 128, "CCM"},
}

// parseCipherToken handles the table above and the regular FAMILY_BITS_MODE spelling (AES_128_GCM,
// CAMELLIA_256_CBC, ARIA_128_GCM, AES_128_CCM_8).
func parseCipherToken(tok string) (cipherInfo, bool) {
	if ci, ok := cipherTokens[tok]; ok {
		return ci, true
	}
	parts := strings.SplitN(tok, "_", 3)
	if len(parts) < 2 {
		return cipherInfo{}, false
	}
	bits, err := strconv.Atoi(parts[1])
	if err != nil {
		return cipherInfo{}, false
	}
	mode := "CBC"
	if len(parts) == 3 {
		mode = parts[2]
	}
	switch mode {
	case "CBC", "GCM", "CCM", "CCM_8", "CTR":
	default:
		return cipherInfo{}, false
	}
	return cipherInfo{family: parts[0], bits: bits, blockBits: 128, mode: mode}, true
}

// tls13IDs are the code points of TLS 1.3 suites (RFC 8446, RFC 9150, RFC 9367, RFC 8998, AEGIS).
var tls13IDs = map[uint16]bool{
	0x006E: true, 0x006F: true, 0x0070: true, 0x0071: true,
	0x1301: true, 0x1302: true, 0x1303: true, 0x1304: true, 0x1305: true, 0x1306: true, 0x1307: true,
	0x00C6: true, 0x00C7: true, 0xC0B4: true, 0xC0B5: true,
	0xC103: true, 0xC104: true, 0xC105: true, 0xC106: true,
}

var macTokens = []struct{ suffix, mac string }{
	{"_SHA384", "SHA384"}, {"_SHA256", "SHA256"}, {"_SHA512", "SHA512"}, {"_SHA", "SHA1"}, {"_MD5", "MD5"},
	{"_OMAC", "OMAC"}, {"_IMIT", "IMIT"}, {"_SM3", "SM3"}, {"_ASCONHASH256", "ASCONHASH256"},
}

// decompose derives a Suite's parts from its IANA name.
func decompose(id uint16, name string) Suite {
	s := Suite{ID: id, Name: name, MinVersion: TLSv1, MaxVersion: TLSv1_2}
	if strings.HasSuffix(name, "_SCSV") {
		s.SCSV = true
		s.MinVersion, s.MaxVersion = SSLv3, TLSv1_3
		return s
	}
	rest := strings.TrimPrefix(name, "TLS_")
	if tls13IDs[id] {
		s.TLS13 = true
		s.MinVersion, s.MaxVersion = TLSv1_3, TLSv1_3
		if i := strings.Index(rest, "_WITH_"); i >= 0 { // GOST TLS 1.3 suites keep the _WITH_ spelling
			rest = rest[i+len("_WITH_"):]
			s.PRF = "STREEBOG256"
			if ci, ok := parseCipherToken(rest); ok {
				s.Cipher, s.CipherFamily, s.KeyBits, s.BlockBits, s.Mode, s.MAC = rest, ci.family, ci.bits, ci.blockBits, ci.mode, "AEAD"
			}
			return s
		}
		for _, m := range macTokens {
			if strings.HasSuffix(rest, m.suffix) {
				s.PRF = m.mac
				rest = strings.TrimSuffix(rest, m.suffix)
				break
			}
		}
		if strings.HasPrefix(rest, "SHA") { // RFC 9150 integrity-only suites
			s.Cipher, s.CipherFamily, s.Mode, s.MAC = "NULL", "NULL", "NULL", strings.ReplaceAll(rest, "_", "")
			return s
		}
		if ci, ok := parseCipherToken(rest); ok {
			s.Cipher, s.CipherFamily, s.KeyBits, s.BlockBits, s.Mode, s.MAC = rest, ci.family, ci.bits, ci.blockBits, ci.mode, "AEAD"
		}
		return s
	}
	i := strings.Index(rest, "_WITH_")
	if i < 0 {
		return s
	}
	s.KexAuth = rest[:i]
	if ka, ok := kexAuthTokens[s.KexAuth]; ok {
		s.KeyExchange, s.Auth, s.Export = ka.kex, ka.auth, ka.export
	} else {
		s.KeyExchange, s.Auth = s.KexAuth, s.KexAuth
	}
	cm := rest[i+len("_WITH_"):]
	if cm == "NULL_NULL" { // TLS_NULL_WITH_NULL_NULL, the state before any handshake
		s.Cipher, s.CipherFamily, s.Mode, s.MAC, s.MinVersion = "NULL", "NULL", "NULL", "NULL", SSLv3
		return s
	}
	for _, m := range macTokens {
		if strings.HasSuffix(cm, m.suffix) {
			if ci, ok := parseCipherToken(strings.TrimSuffix(cm, m.suffix)); ok {
				s.Cipher = strings.TrimSuffix(cm, m.suffix)
				s.CipherFamily, s.KeyBits, s.BlockBits, s.Mode, s.MAC = ci.family, ci.bits, ci.blockBits, ci.mode, m.mac
				break
			}
		}
	}
	if s.Cipher == "" { // CCM suites carry no hash in their name
		if ci, ok := parseCipherToken(cm); ok {
			s.Cipher, s.CipherFamily, s.KeyBits, s.BlockBits, s.Mode, s.MAC = cm, ci.family, ci.bits, ci.blockBits, ci.mode, "AEAD"
		}
	}
	switch s.Mode {
	case "GCM", "CCM", "CCM_8", "AEAD", "MGM":
		if s.MAC != "AEAD" {
			s.PRF = s.MAC // GCM suites name their PRF hash where CBC suites name their MAC
		}
		s.MAC = "AEAD"
	}
	switch {
	case s.PRF != "":
	case s.KeyExchange == "GOST":
		s.PRF = "STREEBOG256"
	case s.MAC == "SHA384":
		s.PRF = "SHA384"
	case !s.Export:
		s.PRF = "SHA256"
	}
	// Versions: AEAD and SHA-2 MAC suites need TLS 1.2 (RFC 5246, 5288, 5289); export suites were
	// forbidden from TLS 1.1 on (RFC 4346); DES and IDEA were removed from TLS 1.2 (RFC 5246).
	switch {
	case s.MAC == "AEAD" || s.MAC == "SHA256" || s.MAC == "SHA384" || s.KeyExchange == "GOST" || s.KeyExchange == "ECCPWD":
		s.MinVersion = TLSv1_2
	case s.Export:
		s.MinVersion, s.MaxVersion = SSLv3, TLSv1
	case s.CipherFamily == "DES" || s.CipherFamily == "IDEA":
		s.MinVersion, s.MaxVersion = SSLv3, TLSv1_1
	case s.KeyExchange == "RSA" || s.KeyExchange == "DH" || s.KeyExchange == "DHE" || s.KeyExchange == "NULL" || s.KeyExchange == "KRB5":
		s.MinVersion = SSLv3
	}
	return s
}

// SortSuites sorts suites by code point.
func SortSuites(ss []Suite) {
	sort.Slice(ss, func(i, j int) bool { return ss[i].ID < ss[j].ID })
}
