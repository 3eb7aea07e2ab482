package tlspolicy

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// Group is a named group of the IANA "TLS Supported Groups" registry (elliptic curves, finite-field groups
// and post-quantum hybrids).
type Group struct {
	ID   tls.CurveID
	Name string // IANA name: secp256r1, x25519, ffdhe2048, X25519MLKEM768
	// ECBits is the size used for a java.security "EC keySize" constraint: the curve size, or for a hybrid
	// the size of its classical curve. 0 for groups without an elliptic curve.
	ECBits int
	// DHBits is the size used for a "DH keySize" constraint on finite-field groups; 0 otherwise.
	DHBits int
	// PostQuantum marks hybrids and pure ML-KEM groups; they exist only in TLS 1.3.
	PostQuantum bool
	// Go reports whether crypto/tls implements the group.
	Go bool
}

// groups lists the registry entries a scanner may meet, with the JDK's and OpenSSL's alias spellings in
// groupAliases below.
var groups = []Group{
	{ID: 1, Name: "sect163k1", ECBits: 163}, {ID: 2, Name: "sect163r1", ECBits: 163},
	{ID: 3, Name: "sect163r2", ECBits: 163}, {ID: 4, Name: "sect193r1", ECBits: 193},
	{ID: 5, Name: "sect193r2", ECBits: 193}, {ID: 6, Name: "sect233k1", ECBits: 233},
	{ID: 7, Name: "sect233r1", ECBits: 233}, {ID: 8, Name: "sect239k1", ECBits: 239},
	{ID: 9, Name: "sect283k1", ECBits: 283}, {ID: 10, Name: "sect283r1", ECBits: 283},
	{ID: 11, Name: "sect409k1", ECBits: 409}, {ID: 12, Name: "sect409r1", ECBits: 409},
	{ID: 13, Name: "sect571k1", ECBits: 571}, {ID: 14, Name: "sect571r1", ECBits: 571},
	{ID: 15, Name: "secp160k1", ECBits: 160}, {ID: 16, Name: "secp160r1", ECBits: 160},
	{ID: 17, Name: "secp160r2", ECBits: 160}, {ID: 18, Name: "secp192k1", ECBits: 192},
	{ID: 19, Name: "secp192r1", ECBits: 192}, {ID: 20, Name: "secp224k1", ECBits: 224},
	{ID: 21, Name: "secp224r1", ECBits: 224},
	{ID: 22, Name: "secp256k1", ECBits: 256},
	{ID: 23, Name: "secp256r1", ECBits: 256, Go: true},
	{ID: 24, Name: "secp384r1", ECBits: 384, Go: true},
	{ID: 25, Name: "secp521r1", ECBits: 521, Go: true},
	{ID: 26, Name: "brainpoolP256r1", ECBits: 256}, {ID: 27, Name: "brainpoolP384r1", ECBits: 384},
	{ID: 28, Name: "brainpoolP512r1", ECBits: 512},
	{ID: 29, Name: "x25519", ECBits: 255, Go: true},
	{ID: 30, Name: "x448", ECBits: 448},
	{ID: 31, Name: "brainpoolP256r1tls13", ECBits: 256}, {ID: 32, Name: "brainpoolP384r1tls13", ECBits: 384},
	{ID: 33, Name: "brainpoolP512r1tls13", ECBits: 512},
	{ID: 34, Name: "GC256A", ECBits: 256}, {ID: 35, Name: "GC256B", ECBits: 256}, {ID: 36, Name: "GC256C", ECBits: 256},
	{ID: 37, Name: "GC256D", ECBits: 256}, {ID: 38, Name: "GC512A", ECBits: 512}, {ID: 39, Name: "GC512B", ECBits: 512},
	{ID: 40, Name: "GC512C", ECBits: 512}, {ID: 41, Name: "curveSM2", ECBits: 256},
	{ID: 256, Name: "ffdhe2048", DHBits: 2048}, {ID: 257, Name: "ffdhe3072", DHBits: 3072},
	{ID: 258, Name: "ffdhe4096", DHBits: 4096}, {ID: 259, Name: "ffdhe6144", DHBits: 6144},
	{ID: 260, Name: "ffdhe8192", DHBits: 8192},
	{ID: 512, Name: "MLKEM512", PostQuantum: true}, {ID: 513, Name: "MLKEM768", PostQuantum: true},
	{ID: 514, Name: "MLKEM1024", PostQuantum: true},
	{ID: 4587, Name: "SecP256r1MLKEM768", ECBits: 256, PostQuantum: true, Go: true},
	{ID: 4588, Name: "X25519MLKEM768", ECBits: 255, PostQuantum: true, Go: true},
	{ID: 4589, Name: "SecP384r1MLKEM1024", ECBits: 384, PostQuantum: true, Go: true},
	{ID: 0x6399, Name: "X25519Kyber768Draft00", ECBits: 255, PostQuantum: true},
}

// keyFamily names the JDK key-agreement algorithm a java.security constraint must name to reach the group
// ("EC", "XDH" or "DH"), with the key size it is checked against.
func (g Group) keyFamily() (string, int) {
	n := strings.ToLower(g.Name)
	switch {
	case g.DHBits > 0:
		return "DH", g.DHBits
	case strings.HasPrefix(n, "x25519") || strings.HasPrefix(n, "x448"):
		return "XDH", g.ECBits
	case g.ECBits > 0:
		return "EC", g.ECBits
	}
	return "", 0
}

// groupAliases maps other spellings (JDK, OpenSSL, NIST) to IANA names.
var groupAliases = map[string]string{
	"p-256": "secp256r1", "p256": "secp256r1", "prime256v1": "secp256r1",
	"p-384": "secp384r1", "p384": "secp384r1",
	"p-521": "secp521r1", "p521": "secp521r1",
	"p-224": "secp224r1", "p-192": "secp192r1", "prime192v1": "secp192r1",
	"curve25519": "x25519", "curve448": "x448",
}

// Groups returns the known named groups. The slice is shared: do not modify it.
func Groups() []Group { return groups }

// GroupByID returns a known group.
func GroupByID(id tls.CurveID) (Group, bool) {
	for _, g := range groups {
		if g.ID == id {
			return g, true
		}
	}
	return Group{}, false
}

// GroupName returns the IANA name of a group, or a hex form when unknown.
func GroupName(id tls.CurveID) string {
	if g, ok := GroupByID(id); ok {
		return g.Name
	}
	return fmt.Sprintf("0x%04x", uint16(id))
}

// LookupGroup finds a group by name, case-insensitively, accepting the aliases above.
func LookupGroup(name string) (Group, bool) {
	n := strings.TrimSpace(name)
	if a, ok := groupAliases[strings.ToLower(n)]; ok {
		n = a
	}
	for _, g := range groups {
		if strings.EqualFold(g.Name, n) {
			return g, true
		}
	}
	return Group{}, false
}

// goGroups lists the groups crypto/tls implements, in Go's own preference order (which Go applies whatever
// order Config.CurvePreferences has).
func goGroups() []Group {
	order := []tls.CurveID{tls.X25519MLKEM768, tls.SecP256r1MLKEM768, tls.SecP384r1MLKEM1024,
		tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}
	out := make([]Group, 0, len(order))
	for _, id := range order {
		g, _ := GroupByID(id)
		out = append(out, g)
	}
	return out
}
