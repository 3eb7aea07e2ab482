package fleetapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type setting struct {
	Value string   `json:"value"`
	List  []string `json:"list,omitempty"`
}

// Each body encoding/json alone would take (trailing data, a key twice, a body not sent as JSON) or
// answer with the wrong status is refused with its own status and a message naming what is wrong; v is
// left as it was unless the body was strict JSON of the wrong shape.
func TestDecodeJSON(t *testing.T) {
	const limit = 64
	tests := []struct {
		name, ctype, body string
		status            int      // 0: accepted
		want              []string // in the error
		value             string   // decoded, when accepted
	}{
		{name: "plain", ctype: "application/json", body: `{"value":"TLSv1.3"}`, value: "TLSv1.3"},
		{name: "charset utf-8", ctype: "application/json; charset=UTF-8", body: `{"value":"TLSv1.3"}`, value: "TLSv1.3"},
		{name: "whitespace after", ctype: "application/json", body: "{\"value\":\"TLSv1.3\"}\r\n\t ", value: "TLSv1.3"},
		{name: "unknown field", ctype: "application/json", body: `{"value":"a","list":[],"x":null}`, status: 400, want: []string{`unknown field "x"`}},
		{name: "second object", ctype: "application/json", body: `{"value":"TLSv1.3"}{"value":"TLSv1"}`, status: 400,
			want: []string{"trailing data", `{\"value\":\"TLSv1\"}`, "at byte 19", "nothing after it"}},
		{name: "closing brace after", ctype: "application/json", body: `{"value":"TLSv1.3"}}`, status: 400, want: []string{"trailing data", `"}"`}},
		{name: "closing bracket after", ctype: "application/json", body: `{"value":"TLSv1.3"} ]`, status: 400, want: []string{"trailing data", `"]"`}},
		{name: "long trailing data is cut", ctype: "application/json", body: `{"value":"a"}` + strings.Repeat("x", 45), status: 400,
			want: []string{"trailing data", "(45 bytes)"}},
		{name: "duplicate key", ctype: "application/json", body: `{"value":"TLSv1.3","value":"TLSv1"}`, status: 400,
			want: []string{`duplicate key "value"`, "give each key once"}},
		{name: "duplicate key in another case", ctype: "application/json", body: `{"value":"TLSv1.3","VALUE":"TLSv1"}`, status: 400,
			want: []string{`duplicate key "VALUE"`, `the same field as "value"`}},
		{name: "duplicate key by Unicode folding", ctype: "application/json", body: `{"list":[],"li\u017Ft":[]}`, status: 400,
			want: []string{`duplicate key "liſt"`}},
		{name: "nested duplicate key", ctype: "application/json", body: `{"value":"a","list":[{"a":1},{"b":1,"b":2}]}`, status: 400,
			want: []string{`duplicate key "b" in "list[1]"`}},
		{name: "malformed", ctype: "application/json", body: `{"value":`, status: 400, want: []string{"not valid JSON"}},
		{name: "wrong type", ctype: "application/json", body: `{"value":3}`, status: 400, want: []string{"cannot unmarshal number"}},
		{name: "empty", ctype: "application/json", body: " ", status: 400, want: []string{"empty"}},
		{name: "form", ctype: "application/x-www-form-urlencoded", body: `{"value":"TLSv1"}`, status: 415,
			want: []string{`Content-Type "application/x-www-form-urlencoded" is not JSON`, "Content-Type: application/json"}},
		{name: "text", ctype: "text/plain", body: `{"value":"TLSv1"}`, status: 415, want: []string{`"text/plain"`}},
		{name: "other charset", ctype: "application/json; charset=latin1", body: `{"value":"TLSv1"}`, status: 415, want: []string{"charset=latin1"}},
		{name: "no content type", body: `{"value":"TLSv1"}`, status: 415, want: []string{"no Content-Type"}},
		{name: "over the limit", ctype: "application/json", body: `{"value":"` + strings.Repeat("a", limit) + `"}`, status: 413,
			want: []string{"larger than 64 bytes"}},
		// The decoder alone would stop after the object and take it.
		{name: "over the limit in trailing space", ctype: "application/json", body: `{"value":"TLSv1"}` + strings.Repeat(" ", limit), status: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPut, "/", strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			got := setting{Value: "before"}
			err := DecodeJSON(httptest.NewRecorder(), r, limit, &got)
			if tt.status == 0 {
				if err != nil || got.Value != tt.value {
					t.Fatalf("DecodeJSON = %v, value %q; want %q", err, got.Value, tt.value)
				}
				return
			}
			var be *BodyError
			if !errors.As(err, &be) || be.Status != tt.status {
				t.Fatalf("DecodeJSON = %v (%T), want a BodyError with status %d", err, err, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if got.Value != "before" && !strings.Contains(tt.name, "unknown") && tt.name != "wrong type" {
				t.Errorf("a refused body changed v: %+v", got)
			}
			if tt.status == 413 {
				var mbe *http.MaxBytesError
				if !errors.As(err, &mbe) {
					t.Errorf("a 413 does not wrap the http.MaxBytesError: %v", err)
				}
			}
		})
	}
}

// CheckStrictJSON agrees with encoding/json on what is well-formed, and never refuses a document that
// has one value and no repeated key.
func FuzzCheckStrictJSON(f *testing.F) {
	for _, s := range []string{`{"value":"TLSv1.3"}`, `{"a":[1,{"b":2}],"c":{}}`, `{"a":1,"A":2}`, `[]`, `"x"`, `{"a":1}{}`, `{"a":1}]`, `{`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckStrictJSON(data)
		if err == nil && !json.Valid(data) {
			t.Fatalf("CheckStrictJSON accepted invalid JSON %q", data)
		}
		if err != nil && json.Valid(data) && !strings.Contains(err.Error(), "duplicate key") {
			t.Fatalf("CheckStrictJSON refused valid JSON %q: %v", data, err)
		}
	})
}
