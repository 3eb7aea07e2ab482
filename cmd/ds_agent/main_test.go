package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The built binary: its name in the usage and messages, exit statuses, and the version set by -ldflags.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ds_agent")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args           []string
		code           int
		stdout, stderr []string // substrings
	}{
		{[]string{"version"}, 0, []string{"ds_agent v9.9.9-test (reports agent version "}, nil},
		{[]string{"--version"}, 0, []string{"ds_agent v9.9.9-test"}, nil},
		{[]string{"--help"}, 2, nil, []string{"ds_agent --dir STATE [flags]", "--listen ADDR", "--accept-any-activation"}},
		{[]string{"--nope"}, 2, nil, []string{"ds_agent --dir STATE [flags]", "ds_agent: usage: flag provided but not defined: -nope"}},
		{nil, 2, nil, []string{"ds_agent: usage: ds_agent needs --dir STATE"}},
	} {
		cmd := exec.CommandContext(t.Context(), bin, c.args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		ok := code == c.code && (c.stdout != nil || stdout.Len() == 0) && (c.stderr != nil || stderr.Len() == 0)
		for _, w := range c.stdout {
			ok = ok && strings.Contains(stdout.String(), w)
		}
		for _, w := range c.stderr {
			ok = ok && strings.Contains(stderr.String(), w)
		}
		if !ok || strings.Contains(stdout.String()+stderr.String(), "tlsfleet agent") {
			t.Errorf("ds_agent %q: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d, stdout with %q, stderr with %q, nowhere \"tlsfleet agent\"",
				c.args, code, stdout.String(), stderr.String(), c.code, c.stdout, c.stderr)
		}
	}
}
