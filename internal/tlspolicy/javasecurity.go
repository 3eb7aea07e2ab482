package tlspolicy

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// DisabledAlgorithmsKey is the java.security property whose entries the JDK (and tlsfleet) applies to TLS.
const DisabledAlgorithmsKey = "jdk.tls.disabledAlgorithms"

// DisabledNamedCurvesKey is the property of curves the JDK's default list includes by reference.
const DisabledNamedCurvesKey = "jdk.disabled.namedCurves"

// KeySizeConstraint is a "keySize <op> <bits>" constraint of a disabledAlgorithms entry.
type KeySizeConstraint struct {
	Op   string // <, <=, ==, !=, >=, >
	Bits int
}

// Disallows reports whether a key of the given size falls under the constraint.
func (k KeySizeConstraint) Disallows(bits int) bool {
	switch k.Op {
	case "<":
		return bits < k.Bits
	case "<=":
		return bits <= k.Bits
	case "==":
		return bits == k.Bits
	case "!=":
		return bits != k.Bits
	case ">=":
		return bits >= k.Bits
	case ">":
		return bits > k.Bits
	}
	return false
}

func (k KeySizeConstraint) String() string { return fmt.Sprintf("keySize %s %d", k.Op, k.Bits) }

// DisabledEntry is one comma-separated entry of jdk.tls.disabledAlgorithms, in the JDK grammar:
//
//	AlgorithmName [Constraint] { '&' Constraint } | include <security property>
type DisabledEntry struct {
	Text      string // the entry as written, trimmed
	File      string
	Line      int
	Property  string // the property the entry came from (differs from DisabledAlgorithmsKey for includes)
	Algorithm string
	KeySize   []KeySizeConstraint
	JDKCA     bool
	DenyAfter string
	Usage     []string

	upper string // Algorithm upper-cased, for matching
}

// Constrained reports whether the entry only disables keys of some sizes (or some uses) rather than the
// algorithm as a whole.
func (e DisabledEntry) Constrained() bool {
	return len(e.KeySize) > 0 || e.JDKCA || e.DenyAfter != "" || len(e.Usage) > 0
}

// JavaSecurity is a parsed java.security file (with its includes).
type JavaSecurity struct {
	Path     string
	Props    *Properties
	Defined  bool // whether jdk.tls.disabledAlgorithms is present
	Disabled []DisabledEntry
	Warnings []string
}

var (
	keySizeRE   = regexp.MustCompile(`^keySize\s*(<=|>=|==|!=|<|>)\s*(\d+)$`)
	denyAfterRE = regexp.MustCompile(`^denyAfter\s+(\d{4}-\d{2}-\d{2})$`)
	usageRE     = regexp.MustCompile(`^usage((?:\s+\w+)+)$`)
	algNameRE   = regexp.MustCompile(`^[A-Za-z0-9_.\-/+*]+$`)
)

// readConfigFile reads at most MaxFileSize+1 bytes, so that ParseProperties refuses an oversized file
// without the whole of it in memory.
func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

var usageNames = []string{"TLSServer", "TLSClient", "SignedJAR", "HandshakeSignature", "CertificateSignature"}

// LoadJavaSecurity reads a java.security file from disk.
func LoadJavaSecurity(path string) (*JavaSecurity, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return ParseJavaSecurity(path, data)
}

// ParseJavaSecurity parses java.security content.
//
// A line "include FILE" is not followed: JDK 17, the reference, has no such directive (JDK 24 added it)
// and reads the line as a property named "include" that nothing uses, so a JDK 17 Manager would never
// see the included file's entries. tlsfleet does the same and warns, so that nobody counts on them.
func ParseJavaSecurity(file string, data []byte) (*JavaSecurity, error) {
	js := &JavaSecurity{Path: file}
	props, err := ParseProperties(file, data)
	if err != nil {
		return nil, err
	}
	js.Props = props
	for _, pr := range props.All {
		if pr.Key == "include" {
			js.Warnings = append(js.Warnings, fmt.Sprintf("%s:%d: \"include %s\" is ignored: JDK 17 has no include lines (JDK 24 added them) and would never read that file, so tlsfleet does not either; copy the entries you need into %s", pr.File, pr.Line, pr.Value, file))
		}
	}
	prop, ok := props.Get(DisabledAlgorithmsKey)
	if !ok {
		js.Warnings = append(js.Warnings, fmt.Sprintf("%s defines no %s: this layer disables nothing (the page's procedure adds the whole line)", file, DisabledAlgorithmsKey))
		return js, nil
	}
	js.Defined = true
	entries, warns, err := parseDisabled(prop, props, map[string]bool{DisabledAlgorithmsKey: true})
	if err != nil {
		return nil, err
	}
	js.Disabled = entries
	js.Warnings = append(js.Warnings, warns...)
	return js, nil
}

// parseDisabled splits a disabledAlgorithms value into entries, expanding "include <property>".
func parseDisabled(prop Property, all *Properties, expanding map[string]bool) ([]DisabledEntry, []string, error) {
	value := strings.TrimSpace(prop.Value)
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	perr := func(entry, msg string) error { return entryError(prop, entry, msg) }
	if strings.ContainsAny(value, "、，") {
		return nil, nil, &ParseError{File: prop.File, Line: prop.Line, Msg: fmt.Sprintf("%s uses a full-width comma (、 or ，): separate entries with ASCII commas, e.g. SSLv3, RC4, DH keySize < 1024", prop.Key)}
	}
	var out []DisabledEntry
	var warns []string
	for _, raw := range strings.Split(value, ",") {
		text := strings.Join(strings.Fields(raw), " ")
		if text == "" {
			continue
		}
		e := DisabledEntry{Text: text, File: prop.File, Line: prop.Line, Property: prop.Key}
		name, rest, _ := strings.Cut(text, " ")
		if name == "include" {
			if rest == "" || strings.Contains(rest, " ") {
				return nil, nil, perr(text, "expected include <security property>, e.g. include jdk.disabled.namedCurves")
			}
			if expanding[rest] {
				return nil, nil, perr(text, "the property includes itself")
			}
			if rest != DisabledNamedCurvesKey {
				warns = append(warns, fmt.Sprintf("%s:%d: %s entry %q: the JDK accepts include only for %s and would refuse this line; tlsfleet expands it", prop.File, prop.Line, prop.Key, text, DisabledNamedCurvesKey))
			}
			inc, ok := all.Get(rest)
			if !ok {
				warns = append(warns, fmt.Sprintf("%s:%d: %s entry %q: property %s is not defined; the entry has no effect", prop.File, prop.Line, prop.Key, text, rest))
				continue
			}
			expanding[rest] = true
			sub, w, err := parseDisabled(inc, all, expanding)
			delete(expanding, rest)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, sub...)
			warns = append(warns, w...)
			continue
		}
		if strings.EqualFold(name, "X9.62") && rest != "" && !strings.ContainsAny(rest, " &") {
			// A multi-word curve name from jdk.disabled.namedCurves ("X9.62 c2tnb191v1"): a curve Go
			// never offers, kept whole so that reports name it.
			e.Algorithm, e.upper = text, strings.ToUpper(text)
			out = append(out, e)
			continue
		}
		// The JDK needs white space between the name and its constraints, and around a keySize operator
		// ("DH keySize < 1024"); tlsfleet also reads "DH keySize<1024", with a warning.
		if i := strings.IndexAny(name, "<>=!"); i >= 0 {
			return nil, nil, perr(text, "expected an algorithm name followed by a space and a constraint, e.g. DH keySize < 1024")
		}
		if !algNameRE.MatchString(name) {
			return nil, nil, perr(text, fmt.Sprintf("%q is not an algorithm name: use ASCII letters, digits and _ . - / (e.g. RC4, DES40_CBC, TLSv1.1, EC keySize < 224)", name)+nonASCIIHint(name))
		}
		e.Algorithm, e.upper = name, strings.ToUpper(name)
		w, err := parseConstraints(prop, &e, rest)
		if err != nil {
			return nil, nil, err
		}
		warns = append(warns, w...)
		out = append(out, e)
	}
	return out, warns, nil
}

// entryError is a ParseError about one entry of a disabledAlgorithms property.
func entryError(prop Property, entry, msg string) error {
	return &ParseError{File: prop.File, Line: prop.Line, Msg: fmt.Sprintf("%s entry %q: %s", prop.Key, entry, msg)}
}

// parseConstraints reads the constraints that follow an entry's algorithm name ("keySize < 1024 &
// usage TLSServer"; "" for none) into e.
func parseConstraints(prop Property, e *DisabledEntry, rest string) ([]string, error) {
	if rest == "" {
		return nil, nil
	}
	var warns []string
	for _, c := range strings.Split(rest, "&") {
		c = strings.TrimSpace(c)
		switch {
		case keySizeRE.MatchString(c):
			m := keySizeRE.FindStringSubmatch(c)
			if f := strings.Fields(c); len(f) != 3 {
				warns = append(warns, fmt.Sprintf("%s:%d: %s entry %q: a JDK refuses %q (it needs spaces, as in \"keySize %s %s\"); tlsfleet reads it that way", prop.File, prop.Line, prop.Key, e.Text, c, m[1], m[2]))
			}
			bits, err := strconv.Atoi(m[2])
			if err != nil || bits > 1<<20 {
				return nil, entryError(prop, e.Text, "key size out of range")
			}
			e.KeySize = append(e.KeySize, KeySizeConstraint{Op: m[1], Bits: bits})
		case strings.EqualFold(c, "jdkCA"):
			if e.JDKCA {
				return nil, entryError(prop, e.Text, "jdkCA may appear once per entry")
			}
			e.JDKCA = true
		case denyAfterRE.MatchString(c):
			if e.DenyAfter != "" {
				return nil, entryError(prop, e.Text, "denyAfter may appear once per entry")
			}
			e.DenyAfter = denyAfterRE.FindStringSubmatch(c)[1]
		case usageRE.MatchString(c):
			for _, u := range strings.Fields(usageRE.FindStringSubmatch(c)[1]) {
				i := slices.IndexFunc(usageNames, func(n string) bool { return strings.EqualFold(n, u) })
				if i < 0 {
					return nil, entryError(prop, e.Text, fmt.Sprintf("unknown usage %q: expected %s", u, strings.Join(usageNames, ", ")))
				}
				e.Usage = append(e.Usage, usageNames[i])
			}
		default:
			return nil, entryError(prop, e.Text, fmt.Sprintf("constraint %q is not one of: keySize <op> <bits> (op: < <= == != >= >), jdkCA, denyAfter YYYY-MM-DD, usage <type>...; join constraints with &", c)+nonASCIIHint(c))
		}
	}
	return warns, nil
}

func nonASCIIHint(s string) string {
	for _, r := range s {
		if r > unicode.MaxASCII {
			return " (it contains non-ASCII characters; was it copied from a translated page?)"
		}
	}
	return ""
}
