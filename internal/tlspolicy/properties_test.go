package tlspolicy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Property
		wantErr string
	}{
		{name: "separators", in: "a=1\nb:2\nc 3\nd = 4\ne\t:\t5\nf\n",
			want: []Property{{Key: "a", Value: "1", Line: 1}, {Key: "b", Value: "2", Line: 2}, {Key: "c", Value: "3", Line: 3},
				{Key: "d", Value: "4", Line: 4}, {Key: "e", Value: "5", Line: 5}, {Key: "f", Value: "", Line: 6}}},
		{name: "comments and blanks", in: "# comment\n! also\n\n   \n  key=value # not a comment\n",
			want: []Property{{Key: "key", Value: "value # not a comment", Line: 5}}},
		{name: "continuation drops leading space", in: "list=a, \\\n    b, \\\n\tc\nnext=1\n",
			want: []Property{{Key: "list", Value: "a, b, c", Line: 1}, {Key: "next", Value: "1", Line: 4}}},
		{name: "escaped backslash is not a continuation", in: "path=C:\\\\dir\\\\\nx=1\n",
			want: []Property{{Key: "path", Value: `C:\dir\`, Line: 1}, {Key: "x", Value: "1", Line: 2}}},
		{name: "escapes", in: "k\\ ey=a\\tb\\u00e9\\=\n",
			want: []Property{{Key: "k ey", Value: "a\tbé=", Line: 1}}},
		{name: "CRLF", in: "a=1\r\nb=2\r\n", want: []Property{{Key: "a", Value: "1", Line: 1}, {Key: "b", Value: "2", Line: 2}}},
		{name: "continuation at EOF", in: "a=1\\", want: []Property{{Key: "a", Value: "1", Line: 1}}},
		{name: "bad unicode escape", in: "ok=1\nbad=\\u12G4\n", wantErr: `p:2: malformed \uXXXX escape`},
		{name: "short unicode escape", in: "bad=\\u12", wantErr: `p:1: malformed \uXXXX escape`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProperties("p", []byte(tt.in))
			if wantError(t, err, tt.wantErr) {
				return
			}
			if diff := cmp.Diff(tt.want, p.All, cmpopts.IgnoreFields(Property{}, "File"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	p, _ := ParseProperties("p", []byte("a=1\na=2\n"))
	if got, _ := p.Get("a"); got.Value != "2" {
		t.Errorf("a later definition must win, got %q", got.Value)
	}
}
