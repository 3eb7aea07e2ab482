package ops

import (
	"errors"
	"fmt"
	"strings"
)

// Kind sorts input errors for the front-ends: dsm_c exits 2 for all of them, the REST API answers 400,
// 404 or 409.
type Kind int

// The kinds of input error.
const (
	Invalid  Kind = iota // the value is wrong
	NotFound             // it names something that does not exist
	Conflict             // it clashes with what exists
)

// InputError is the caller's fault: nothing was changed. Its message may name the request field at
// fault as "{field}"; each front-end renders that as its own name for it (dsm_c "-name", the REST API
// "name").
type InputError struct {
	Kind  Kind
	Field string // the request field at fault, "" if none
	msg   string
}

func (e *InputError) Error() string { return e.Render(nil) }

// Render spells the message with the front-end's name for the field (nil: the field's own name).
func (e *InputError) Render(name func(field string) string) string {
	f := e.Field
	if name != nil {
		f = name(e.Field)
	}
	return strings.ReplaceAll(e.msg, "{field}", f)
}

func newInput(kind Kind, field, format string, a ...any) *InputError {
	return &InputError{Kind: kind, Field: field, msg: fmt.Sprintf(format, a...)}
}

// invalid, notFound and conflict make InputErrors; "{field}" in format names the field.
func invalid(field, format string, a ...any) error { return newInput(Invalid, field, format, a...) }

func notFound(field, format string, a ...any) error { return newInput(NotFound, field, format, a...) }

func conflict(field, format string, a ...any) error { return newInput(Conflict, field, format, a...) }

// UnavailableError says the Manager takes no changes now, and why (its install folder or database is
// gone from under it): nothing was changed. The REST API answers 503.
type UnavailableError struct{ Why string }

func (e *UnavailableError) Error() string { return e.Why }

// AsInput returns the InputError in err's chain, if any.
func AsInput(err error) (*InputError, bool) {
	var ie *InputError
	ok := errors.As(err, &ie)
	return ie, ok
}
