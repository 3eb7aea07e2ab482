package fleetapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// BodyError is a request body that DecodeJSON refused, with the HTTP status to answer: 400 (not one
// well-formed JSON value of the right shape), 413 (over the limit) or 415 (not sent as JSON).
type BodyError struct {
	Status int
	msg    string
	err    error
}

func (e *BodyError) Error() string { return e.msg }

// Unwrap returns the underlying error (an *http.MaxBytesError for a 413).
func (e *BodyError) Unwrap() error { return e.err }

func bodyErr(status int, err error, format string, a ...any) *BodyError {
	return &BodyError{Status: status, msg: fmt.Sprintf(format, a...), err: err}
}

// DecodeJSON reads a request body of at most max bytes into v. It takes only a body sent as
// application/json (a charset parameter, if any, must be utf-8) holding exactly one JSON value with no
// key twice in any object and no field v lacks; anything else is a *BodyError. The whole body is read
// and checked before v is touched (only a field of the wrong type or unknown to v leaves v partly
// filled). w may be nil.
func DecodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		if err := checkContentType(ct); err != nil {
			return err
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return bodyErr(http.StatusRequestEntityTooLarge, err, "the request body is larger than %d bytes", mbe.Limit)
	case err != nil:
		return bodyErr(http.StatusBadRequest, err, "reading the request body: %v", err)
	case len(bytes.TrimSpace(data)) == 0:
		return bodyErr(http.StatusBadRequest, nil, "the request body is empty")
	case ct == "":
		return bodyErr(http.StatusUnsupportedMediaType, nil, "the request has no Content-Type; send the body with Content-Type: application/json")
	}
	if err := CheckStrictJSON(data); err != nil {
		return bodyErr(http.StatusBadRequest, err, "%v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyErr(http.StatusBadRequest, err, "%v", err)
	}
	return nil
}

func checkContentType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return bodyErr(http.StatusUnsupportedMediaType, err, "Content-Type %q is not JSON; send the body with Content-Type: application/json", ct)
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return bodyErr(http.StatusUnsupportedMediaType, nil, "Content-Type %q: JSON is UTF-8 and takes no %s=%s; send Content-Type: application/json", ct, k, v)
		}
	}
	return nil
}

// frame is an object or array being read by CheckStrictJSON.
type frame struct {
	object  bool
	keys    map[string]string // the keys seen, by their folded form
	key     string            // the current key (objects)
	index   int               // the current element (arrays)
	wantKey bool              // the next token of the object is a key or its end
}

// maxSnippet bounds how much of a body an error quotes.
const maxSnippet = 40

// CheckStrictJSON reports what encoding/json lets by: data after the first JSON value (the decoder
// stops at it, so `{"value":"TLSv1.3"}{"value":"TLSv1"}` would apply the first) and a key given twice
// in one object (the decoder keeps the last). Keys that differ only in case count as the same key, since
// encoding/json matches them to the same field. It also fails on malformed JSON.
func CheckStrictJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("the body is not valid JSON: %w", err)
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			top := stack[n-1]
			if k, ok := tok.(string); ok {
				if err := top.addKey(k, stack); err != nil {
					return err
				}
				continue
			}
			stack = stack[:n-1] // the '}' that ends it: the decoder allows nothing else here
		} else {
			switch tok {
			case json.Delim('{'):
				stack = append(stack, &frame{object: true, keys: map[string]string{}, wantKey: true})
				continue
			case json.Delim('['):
				stack = append(stack, &frame{})
				continue
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		// A value ended: a scalar, or the object or array just closed.
		if len(stack) == 0 {
			break
		}
		if top := stack[len(stack)-1]; top.object {
			top.wantKey = true
		} else {
			top.index++
		}
	}
	rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")
	if len(rest) > 0 {
		return fmt.Errorf("trailing data after the JSON value at byte %d: %s; send one JSON object and nothing after it",
			len(data)-len(rest), snippet(rest))
	}
	return nil
}

// addKey records a key of the object on top of stack, refusing one seen before.
func (f *frame) addKey(k string, stack []*frame) error {
	fold := foldKey(k)
	if prev, dup := f.keys[fold]; dup {
		same := ""
		if prev != k {
			same = fmt.Sprintf(" (the same field as %s: names are matched without regard to case)", strconv.Quote(prev))
		}
		return fmt.Errorf("duplicate key %s%s%s; give each key once", strconv.Quote(k), where(stack), same)
	}
	f.keys[fold], f.key, f.wantKey = k, k, false
	return nil
}

// where names the object being read by its path from the top ("" for the top object).
func where(stack []*frame) string {
	var b strings.Builder
	for _, f := range stack[:len(stack)-1] {
		if f.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		} else {
			fmt.Fprintf(&b, "[%d]", f.index)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return " in " + strconv.Quote(b.String())
}

// foldKey maps keys that encoding/json would match to the same field (bytes.EqualFold) to one string.
func foldKey(k string) string {
	var b strings.Builder
	for _, r := range k {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// snippet quotes the start of b for an error message.
func snippet(b []byte) string {
	if len(b) <= maxSnippet {
		return strconv.Quote(string(b))
	}
	cut := maxSnippet
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + fmt.Sprintf(" (%d bytes)", len(b))
}
