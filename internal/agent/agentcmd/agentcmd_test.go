package agentcmd

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent/agenttest"
)

// Every flag is in the usage, under the name of the binary that runs; the alias points to ds_agent.
func TestUsage(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	o.Flags(fs)
	for _, c := range []struct {
		name      string
		want, not []string
	}{
		{Binary, []string{"ds_agent --dir STATE [flags]", "ds_agent version"}, []string{"alias", "tlsfleet agent"}},
		{"tlsfleet agent", []string{"tlsfleet agent --dir STATE [flags]", "tlsfleet agent is an alias of ds_agent"}, []string{"ds_agent version"}},
	} {
		u := Usage(c.name)
		fs.VisitAll(func(f *flag.Flag) { c.want = append(c.want, "\n  --"+f.Name+" ") })
		for _, w := range c.want {
			if !strings.Contains(u, w) {
				t.Errorf("%s: usage lacks %q:\n%s", c.name, w, u)
			}
		}
		for _, n := range append(c.not, " string ") { // a string flag without a `PLACEHOLDER`
			if strings.Contains(u, n) {
				t.Errorf("%s: usage has %q:\n%s", c.name, n, u)
			}
		}
		for line := range strings.Lines(u) {
			if len([]rune(strings.TrimSuffix(line, "\n"))) > 110 {
				t.Errorf("%s: usage line longer than 110 characters: %q", c.name, line)
			}
		}
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the error; "" for none
	}{
		{[]string{"--dir", "s", "--listen", "127.0.0.1:1", "--relay-listen", ":2", "--legacy-max-tls", "TLSv1", "--report-version", "9",
			"--activation-fingerprint", "AB", "--accept-any-activation", "--log-json"}, ""},
		{nil, "usage: ds_agent needs --dir STATE"},
		{[]string{"--listen", ":1"}, "usage: ds_agent needs --dir STATE"},
		{[]string{"--dir", "s", "extra"}, `usage: ds_agent takes flags only, not "extra"`},
		{[]string{"--nope"}, "usage: flag provided but not defined: -nope (ds_agent --help lists the flags)"},
		{[]string{"--dir"}, "usage: flag needs an argument: -dir"},
		{[]string{"--help"}, flag.ErrHelp.Error()},
	} {
		var stderr bytes.Buffer
		o, err := Parse(Binary, c.args, &stderr)
		switch {
		case c.want == "":
			if err != nil || stderr.Len() > 0 {
				t.Errorf("%q: %v %s", c.args, err, stderr.String())
			}
			a := o.Agent
			if a.Dir != "s" || a.Listen != "127.0.0.1:1" || a.RelayListen != ":2" || a.LegacyMaxTLS != "TLSv1" || a.ReportVersion != "9" ||
				a.ActivationFingerprint != "AB" || !a.AcceptAnyActivation || !o.LogJSON {
				t.Errorf("%q: parsed %+v", c.args, o)
			}
		case err == nil || !strings.HasPrefix(err.Error(), c.want):
			t.Errorf("%q: error %v, want %q", c.args, err, c.want)
		case !errors.Is(err, ErrUsage) && !errors.Is(err, flag.ErrHelp):
			t.Errorf("%q: %v is neither ErrUsage nor flag.ErrHelp", c.args, err)
		case stderr.String() != Usage(Binary):
			t.Errorf("%q: stderr is not the usage:\n%s", c.args, stderr.String())
		}
	}
}

func TestMainExitStatus(t *testing.T) {
	for _, c := range []struct {
		args           []string
		code           int
		stdout, stderr string // prefixes; stderr's is of its last line
	}{
		{[]string{"version"}, 0, "ds_agent v1.2.3 (reports agent version 1.0.0)\n", ""},
		{[]string{"--version"}, 0, "ds_agent v1.2.3 ", ""},
		{[]string{"help"}, 0, "ds_agent --dir STATE [flags]", ""},
		{[]string{"--help"}, 2, "", "ds_agent version prints the version."},
		{[]string{"--nope"}, 2, "", "ds_agent: usage: flag provided but not defined: -nope"},
		{[]string{"version", "x"}, 2, "", `ds_agent: usage: ds_agent takes flags only, not "version"`},
		{[]string{"--dir", "s", "--legacy-max-tls", "TLSv1.3"}, 2, "", `ds_agent: usage: legacy simulator: maximum TLS version "TLSv1.3"`},
		{[]string{"--dir", "/dev/null/agent"}, 1, "", "ds_agent: "},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(t.Context(), "v1.2.3", c.args, &stdout, &stderr)
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		last := lines[len(lines)-1]
		if code != c.code || !strings.HasPrefix(stdout.String(), c.stdout) || !strings.HasPrefix(last, c.stderr) ||
			c.stdout == "" && stdout.Len() > 0 || c.stderr == "" && stderr.Len() > 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", c.args, code, stdout.String(), stderr.String(), c.code, c.stdout, c.stderr)
		}
	}
}

// An agent not activated yet says what activates it, logs JSON when asked and stops when ctx ends.
func TestRunNotActivated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr agenttest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Binary, []string{"--dir", dir, "--listen", "127.0.0.1:0", "--log-json"}, &stdout, &stderr)
	}()
	want := "ds_agent is running, not activated yet: it waits for dsa_control --dir " + dir + " -a dsm://HOST:4120/ token:TOKEN\n"
	agenttest.Eventually(t, 10*time.Second, "the startup line", func() bool { return stdout.String() == want })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if log := stderr.String(); !strings.HasPrefix(log, `{"time":`) || !strings.Contains(log, "not activated yet") {
		t.Errorf("log is not JSON lines:\n%s", log)
	}
}
