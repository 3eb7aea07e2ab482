package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func TestPolicyCommand(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode string // "" success, "usage", "error"
		godebug  string
	}{
		{name: "new-install", args: []string{"policy", "--dir", "testdata/new-install"}},
		{name: "new-install-json", args: []string{"policy", "--dir", "testdata/new-install", "--json"}},
		{name: "page-enforce-4120", args: []string{"policy", "--dir", "testdata/page-enforce", "--port", "4120"}},
		{name: "page-enforce-json", args: []string{"policy", "--dir", "testdata/page-enforce", "--json"}},
		{name: "gui-only", args: []string{"policy", "--dir", "testdata/gui-only"}},
		{name: "gui-only-json", args: []string{"policy", "--dir", "testdata/gui-only", "--json"}},
		{name: "gui-undo-4119", args: []string{"policy", "--dir", "testdata/gui-undo", "--port", "4119"}},
		{name: "bad-java", args: []string{"policy", "--dir", "testdata/bad-java"}, wantCode: "error"},
		{name: "bad-conf", args: []string{"policy", "--dir", "testdata/bad-conf"}, wantCode: "error"},
		{name: "missing-dir", args: []string{"policy", "--dir", "testdata/does-not-exist"}, wantCode: "error"},
		{name: "bad-port", args: []string{"policy", "--dir", "testdata/new-install", "--port", "443"}, wantCode: "usage"},
		{name: "no-command", args: nil, wantCode: "usage"},
		{name: "godebug", args: []string{"policy", "--dir", "testdata/new-install", "--port", "4120"}, godebug: "http2client=0,tlsrsakex=1, tlssha1=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.godebug != "" {
				t.Setenv("GODEBUG", tt.godebug)
			}
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			got := stdout.String()
			switch tt.wantCode {
			case "":
				if err != nil {
					t.Fatalf("error: %v\n%s", err, stderr.String())
				}
			case "usage":
				if err == nil || !strings.Contains(err.Error(), "usage") {
					t.Fatalf("want a usage error, got %v", err)
				}
				got = err.Error() + "\n"
			case "error":
				if err == nil {
					t.Fatal("want an error")
				}
				got = err.Error() + "\n"
			}
			checkGolden(t, tt.name, got)
		})
	}
}
