package tlspolicy

import (
	"fmt"
	"strconv"
	"strings"
)

// Property is one key/value pair of a Java properties file, with where it was defined.
type Property struct {
	Key   string
	Value string
	File  string
	Line  int // line on which the logical line starts, 1-based
}

// Properties is a parsed Java properties file. Later definitions of a key replace earlier ones, as
// java.util.Properties does; All keeps every definition in file order.
type Properties struct {
	All   []Property
	index map[string]int
}

// Get returns the last definition of key.
func (p *Properties) Get(key string) (Property, bool) {
	if p == nil {
		return Property{}, false
	}
	i, ok := p.index[key]
	if !ok {
		return Property{}, false
	}
	return p.All[i], true
}

func (p *Properties) add(pr Property) {
	if p.index == nil {
		p.index = map[string]int{}
	}
	p.index[pr.Key] = len(p.All)
	p.All = append(p.All, pr)
}

// ParseError is a problem at a place in a configuration file.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ParseProperties reads data with the grammar of java.util.Properties.load: '#' and '!' comments, keys ended
// by '=', ':' or white space, backslash line continuations (leading white space of the next line dropped),
// and the escapes \t \n \r \f \uXXXX. The only malformed input in that grammar is a bad \u escape.
func ParseProperties(file string, data []byte) (*Properties, error) {
	if len(data) > MaxFileSize {
		return nil, &ParseError{File: file, Msg: fmt.Sprintf("file is %d bytes; configuration files are limited to %d", len(data), MaxFileSize)}
	}
	p := &Properties{}
	lines := splitLines(string(data))
	var logical strings.Builder
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimLeft(lines[i], " \t\f")
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if line == `\` {
			// A continuation of nothing: Java goes on as if a new line started (blank lines and comments
			// after it are skipped as usual).
			continue
		}
		// Join continuation lines: a line ending in an odd number of backslashes continues. Each physical
		// line is copied once, so long continued values stay linear.
		logical.Reset()
		for endsWithContinuation(line) && i+1 < len(lines) {
			logical.WriteString(line[:len(line)-1])
			i++
			line = strings.TrimLeft(lines[i], " \t\f")
		}
		if endsWithContinuation(line) { // continuation at end of file: Java drops the backslash
			line = line[:len(line)-1]
		}
		logical.WriteString(line)
		key, value := splitKeyValue(logical.String())
		k, err := unescapeProperty(key)
		if err != nil {
			return nil, &ParseError{File: file, Line: start, Msg: err.Error()}
		}
		v, err := unescapeProperty(value)
		if err != nil {
			return nil, &ParseError{File: file, Line: start, Msg: err.Error()}
		}
		p.add(Property{Key: k, Value: v, File: file, Line: start})
	}
	return p, nil
}

// MaxFileSize bounds java.security and configuration.properties (and their includes): real ones are a few
// kilobytes; anything near this limit is a mistake or an attack.
const MaxFileSize = 1 << 20

func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func endsWithContinuation(line string) bool {
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitKeyValue splits a logical line at the first unescaped '=', ':' or white space.
func splitKeyValue(line string) (key, value string) {
	i := 0
	for i < len(line) {
		c := line[i]
		if c == '\\' {
			i += 2
			continue
		}
		if c == '=' || c == ':' || c == ' ' || c == '\t' || c == '\f' {
			break
		}
		i++
	}
	if i > len(line) {
		i = len(line)
	}
	key = line[:i]
	rest := strings.TrimLeft(line[i:], " \t\f")
	if i < len(line) && (line[i] == '=' || line[i] == ':') {
		rest = strings.TrimLeft(line[i+1:], " \t\f")
	} else if rest != "" && (rest[0] == '=' || rest[0] == ':') {
		rest = strings.TrimLeft(rest[1:], " \t\f")
	}
	return key, rest
}

func unescapeProperty(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(s) {
				return "", fmt.Errorf(`malformed \uXXXX escape %q: expected four hex digits`, s[i-1:])
			}
			r, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf(`malformed \uXXXX escape %q: expected four hex digits`, s[i-1:i+5])
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}
