package ops

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"tlsfleet/internal/store"
)

// maxCell bounds how much of a client-chosen text a message or a table shows.
const maxCell = 60

// Cell makes display text of text a client or an agent chose (a host name, an SNI, a User-Agent):
// control characters are escaped so that they cannot break a table or drive a terminal, long text is
// cut, and empty is "-".
func Cell(s string) string {
	if s == "" {
		return "-"
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxCell {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// Who names a computer in messages: host name and GUID.
func Who(c store.Computer) string { return fmt.Sprintf("%s (%s)", Cell(c.Hostname), c.GUID) }

// MaxListed bounds the computers a message or a report lists.
const MaxListed = 20

// computerNames lists computers for a message, at most MaxListed.
func computerNames(cs []store.Computer) string {
	var names []string
	for i, c := range cs {
		if i == MaxListed {
			names = append(names, fmt.Sprintf("and %d more", len(cs)-MaxListed))
			break
		}
		names = append(names, Who(c))
	}
	return strings.Join(names, ", ")
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// Plural is "1 thing" or "N things".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// Label limits.
const (
	MaxLabel      = 64  // relay group names and policy IDs
	MaxBundleName = 128 // bundle names are often file names
)

// checkLabel checks a name the user chooses (a relay group, a policy ID, a bundle name): printable text
// of 1 to max characters.
func checkLabel(field, what, v string, max int) error {
	rule := fmt.Sprintf("printable characters, up to %d", max)
	switch {
	case v == "":
		return invalid(field, "{field} needs %s (%s)", what, rule)
	case !utf8.ValidString(v):
		return invalid(field, "{field} %q is not UTF-8 text; use %s", v, rule)
	case utf8.RuneCountInString(v) > max:
		return invalid(field, "{field} %q is %d characters long; use %s", v, utf8.RuneCountInString(v), rule)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return invalid(field, "{field} %q: %s is not allowed in %s; use %s", v, strconv.QuoteRune(r), what, rule)
		}
	}
	return nil
}
