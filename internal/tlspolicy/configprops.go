package tlspolicy

import (
	"fmt"
	"strings"
)

// ConfigProperties is the Manager's configuration.properties: protocols= and ciphers= restrict the console
// port (4119), as the page's "GUI port only" procedure uses them; every other key (ports, database, ...) is
// kept for the Manager in Props.
type ConfigProperties struct {
	Path  string
	Props *Properties

	Protocols      []Version // nil when protocols= is absent
	ProtocolsEntry Property
	Ciphers        []Suite // nil when ciphers= is absent
	CiphersEntry   Property
	Warnings       []string
}

// LoadConfigProperties reads configuration.properties from disk.
func LoadConfigProperties(path string) (*ConfigProperties, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfigProperties(path, data)
}

// ParseConfigProperties parses configuration.properties content. Unknown protocol or cipher names are errors
// that name the line and the accepted spellings; nothing partial is returned.
func ParseConfigProperties(file string, data []byte) (*ConfigProperties, error) {
	props, err := ParseProperties(file, data)
	if err != nil {
		return nil, err
	}
	cp := &ConfigProperties{Path: file, Props: props}
	if pr, ok := props.Get("protocols"); ok {
		cp.ProtocolsEntry = pr
		cp.Protocols = []Version{}
		for _, item := range splitList(pr.Value) {
			v, err := ParseVersion(item)
			if err != nil {
				return nil, &ParseError{File: file, Line: pr.Line, Msg: fmt.Sprintf("protocols=%s: %v", pr.Value, err)}
			}
			if v == SSLv3 {
				cp.Warnings = append(cp.Warnings, fmt.Sprintf("%s:%d: protocols= lists SSLv3, which tlsfleet never accepts", file, pr.Line))
			}
			cp.Protocols = append(cp.Protocols, v)
		}
		if len(cp.Protocols) == 0 {
			return nil, &ParseError{File: file, Line: pr.Line, Msg: "protocols= is empty: list versions such as protocols=TLSv1.2,TLSv1.3, or remove the line"}
		}
	}
	if pr, ok := props.Get("ciphers"); ok {
		cp.CiphersEntry = pr
		cp.Ciphers = []Suite{}
		for _, item := range splitList(pr.Value) {
			s, ok := LookupSuite(item)
			if !ok {
				return nil, &ParseError{File: file, Line: pr.Line, Msg: fmt.Sprintf("ciphers=: %q is not a cipher suite; use IANA names (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) or OpenSSL names (ECDHE-RSA-AES128-GCM-SHA256)", item)}
			}
			if s.SCSV {
				return nil, &ParseError{File: file, Line: pr.Line, Msg: fmt.Sprintf("ciphers=: %s is a signalling value, not a cipher suite", s.Name)}
			}
			if !s.GoImplemented() && !s.TLS13 {
				cp.Warnings = append(cp.Warnings, fmt.Sprintf("%s:%d: ciphers= lists %s, which Go's crypto/tls does not implement; it is ignored", file, pr.Line, s.Name))
			}
			cp.Ciphers = append(cp.Ciphers, s)
		}
		if len(cp.Ciphers) == 0 {
			return nil, &ParseError{File: file, Line: pr.Line, Msg: "ciphers= is empty: list suites, or remove the line to use the defaults"}
		}
	}
	return cp, nil
}

// splitList splits a comma- (or colon-, as OpenSSL writes) separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ':' || r == ' ' || r == '\t' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
