package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/listener"
	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlspolicy"
)

// --max-conns and --max-conns-per-address on both commands: bad values are refused with the flag and
// the range before anything starts; a per-address limit above the total is refused naming both flags
// (which shows the values reached the Manager's and the agent's options).
func TestLimitFlags(t *testing.T) {
	tests := []struct {
		name  string
		run   func(context.Context, []string, io.Writer, io.Writer) error
		args  []string
		usage bool // errUsage (exit 2)
		want  []string
	}{
		{name: "manager: not a number", run: runManager, args: []string{"--max-conns", "many"}, usage: true,
			want: []string{`invalid value "many" for flag -max-conns`, "not a whole number: use one from 1 to 1000000"}},
		{name: "manager: zero", run: runManager, args: []string{"--max-conns-per-address", "0"}, usage: true,
			want: []string{"-max-conns-per-address", "out of range: use a whole number from 1 to 1000000"}},
		{name: "manager: negative", run: runManager, args: []string{"--max-conns", "-10"}, usage: true, want: []string{"-max-conns", "out of range"}},
		{name: "manager: per address above the total", run: runManager, args: []string{"--max-conns", "100", "--max-conns-per-address", "200"}, usage: true,
			want: []string{"--max-conns-per-address 200 exceeds the 100 connections each port may hold in all (--max-conns 100)", "at most 100"}},
		{name: "manager: per address above the default total", run: runManager, args: []string{"--max-conns-per-address", "5000"},
			want: []string{"--max-conns-per-address 5000 exceeds the 4096 connections port", "(console) may hold in all (its default)"}},
		{name: "agent: not a number", run: runAgent, args: []string{"--max-conns", "1e3"}, usage: true, want: []string{"-max-conns", "not a whole number"}},
		{name: "agent: too large", run: runAgent, args: []string{"--max-conns-per-address", "1000001"}, usage: true, want: []string{"-max-conns-per-address", "out of range"}},
		{name: "agent: per address above the total", run: runAgent, args: []string{"--max-conns", "10", "--max-conns-per-address", "20"}, usage: true,
			want: []string{"--max-conns-per-address 20 exceeds the 10 connections the agent port may hold in all (--max-conns 10)"}},
		{name: "agent: per address above a default total", run: runAgent, args: []string{"--max-conns-per-address", "300"}, usage: true,
			want: []string{"--max-conns-per-address 300 exceeds the 256 connections the agent port may hold in all (its default)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--dir", filepath.Join(t.TempDir(), "d")}, tt.args...)
			if strings.HasPrefix(tt.name, "manager") {
				args = append(args, "--listen", "127.0.0.1", "--console-port", strconv.Itoa(testtarget.FreePort(t)), "--heartbeat-port", strconv.Itoa(testtarget.FreePort(t)))
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := tt.run(ctx, args, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("started")
			}
			if errors.Is(err, errUsage) != tt.usage {
				t.Errorf("usage error %v, want %v: %v", errors.Is(err, errUsage), tt.usage, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// The agent's help states the listener package's defaults.
func TestAgentUsageStatesDefaults(t *testing.T) {
	a, r := listener.DefaultLimits(tlspolicy.RoleAgent), listener.DefaultLimits(tlspolicy.RoleRelay)
	for _, want := range []string{
		"default " + strconv.Itoa(a.Total) + " on the agent port, " + strconv.Itoa(r.Total) + " on the relay port",
		"default " + strconv.Itoa(a.PerAddress) + " on the agent port, " + strconv.Itoa(r.PerAddress) + " on the relay port",
		"1 to " + strconv.Itoa(listener.MaxLimit),
	} {
		if !strings.Contains(agentcmdUsage(t), want) {
			t.Errorf("the agent's usage lacks %q:\n%s", want, agentcmdUsage(t))
		}
	}
}

// agentcmdUsage is the usage `tlsfleet agent --help` prints.
func agentcmdUsage(t *testing.T) string {
	t.Helper()
	var out, errOut bytes.Buffer
	runAgent(t.Context(), []string{"--help"}, &out, &errOut)
	return strings.Join(strings.Fields(out.String()+errOut.String()), " ") // the usage wraps long lines
}
