package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/testtarget"
)

// plainServer is a TCP server on a free loopback port that is not TLS: answer is written to each
// connection after its first read ("" closes at once, without reading).
func plainServer(t *testing.T, answer string) string {
	t.Helper()
	ln := testtarget.Listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if answer != "" {
					c.Read(make([]byte, 4096))
					io.WriteString(c, answer)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestScanCommand(t *testing.T) {
	legacy := testtarget.GoLegacy(t)
	sslv3 := testtarget.FakeSSLv3(t)
	closes := plainServer(t, "")
	httpOnly := plainServer(t, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	refusesAll := testtarget.GoServer(t, "refuses every ClientHello", &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return nil, errors.New("no policy") }})
	tests := []struct {
		name     string
		args     []string
		wantErr  error  // errUsage, errFindings or nil
		wantText string // substring of the error (or of stdout when no error)
		golden   string // compare stdout with testdata/golden/NAME.txt, the target address replaced
	}{
		{name: "no targets", args: []string{"scan"}, wantErr: errUsage, wantText: "name at least one target"},
		{name: "bad starttls", args: []string{"scan", "--starttls", "pop3", legacy.Addr}, wantErr: errUsage, wantText: `--starttls "pop3": use one of postgres, smtp, imap, ftp, ldap`},
		{name: "bad require-min", args: []string{"scan", "--require-min", "TLSv9", legacy.Addr}, wantErr: errUsage, wantText: "--require-min"},
		{name: "bad flag", args: []string{"scan", "--fast", legacy.Addr}, wantErr: errUsage},
		{name: "require-min violated", args: []string{"scan", "--require-min", "TLSv1.2", legacy.Addr}, wantErr: errFindings,
			wantText: legacy.Addr + " accepts TLSv1.0, older than --require-min TLSv1.2"},
		{name: "require-min met", args: []string{"scan", "--require-min", "TLSv1", legacy.Addr}, wantText: "TLSv1.0:"},
		{name: "unreachable target", args: []string{"scan", "--timeout", "1s", "--require-min", "TLSv1.2", "127.0.0.1:1"}, wantErr: errNoTLS, wantText: "connection refused"},
		{name: "plain TCP that closes", args: []string{"scan", "--timeout", "1s", "--require-min", "TLSv1.2", closes}, wantErr: errNoTLS,
			wantText: "closed every connection without a TLS answer"},
		{name: "plain HTTP", args: []string{"scan", "--timeout", "1s", "--require-min", "TLSv1.2", httpOnly}, wantErr: errNoTLS, wantText: "not TLS"},
		{name: "TLS refusing every version", args: []string{"scan", "--timeout", "1s", "--require-min", "TLSv1.2", refusesAll.Addr}, wantErr: errNoTLS,
			wantText: refusesAll.Addr + " accepts no TLS version"},
		{name: "no TLS wins over an old version", args: []string{"scan", "--timeout", "1s", "--require-min", "TLSv1.2", legacy.Addr, closes}, wantErr: errNoTLS,
			wantText: legacy.Addr + " accepts TLSv1.0, older than --require-min TLSv1.2"},
		{name: "help lists the exit statuses", args: []string{"scan", "--help"}, wantErr: flag.ErrHelp},
		{name: "sslv3 text", args: []string{"scan", sslv3.Addr}, golden: "scan-sslv3"},
		{name: "bad max-time", args: []string{"scan", "--max-time", "-1s", sslv3.Addr}, wantErr: errUsage, wantText: "--max-time must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("error: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			text := stdout.String()
			if err != nil {
				text = err.Error()
			}
			if !strings.Contains(text, tt.wantText) {
				t.Errorf("output %q does not contain %q", text, tt.wantText)
			}
			if tt.golden != "" {
				got := strings.ReplaceAll(stdout.String(), sslv3.Addr, "TARGET")
				checkGolden(t, tt.golden, got)
			}
		})
	}
}

func TestScanJSON(t *testing.T) {
	tg := testtarget.Modern(t)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"scan", "--json", tg.Addr, "127.0.0.1:1"}, &stdout, &stderr); !errors.Is(err, errNoTLS) {
		t.Fatalf("error = %v, want the unreachable target reported", err)
	}
	var res struct {
		Targets []struct {
			Target    string `json:"target"`
			Error     string `json:"error"`
			Protocols []struct {
				Version          string `json:"version"`
				CipherPreference string `json:"cipher_preference"`
				Ciphers          []struct{ Name, Kex, Grade string }
				Warnings         []string `json:"warnings"`
			} `json:"protocols"`
			LeastStrength string `json:"least_strength"`
			Groups        []struct {
				Name     string   `json:"name"`
				Versions []string `json:"versions"`
			} `json:"groups"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if len(res.Targets) != 2 || res.Targets[0].Target != tg.Addr || res.Targets[1].Error == "" {
		t.Fatalf("targets = %+v", res.Targets)
	}
	m := res.Targets[0]
	if len(m.Protocols) != 2 || m.Protocols[0].Version != "TLSv1.2" || m.Protocols[1].Version != "TLSv1.3" || m.LeastStrength != "A" || len(m.Groups) == 0 {
		t.Errorf("modern target: %+v", m)
	}
	for _, p := range m.Protocols {
		for _, c := range p.Ciphers {
			if c.Name == "" || c.Kex == "" || c.Grade != "A" {
				t.Errorf("%s cipher %+v", p.Version, c)
			}
		}
	}
}

// checkGolden compares got with testdata/golden/name.txt (go test -update rewrites it).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update after checking):\n--- got ---\n%s\n--- want ---\n%s", golden, got, want)
	}
}

// --max-time bounds the whole scan, whatever the per-probe --timeout.
func TestScanMaxTime(t *testing.T) {
	ln := testtarget.Listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c) }() // reads, never answers
		}
	}()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	run(t.Context(), []string{"scan", "--timeout", "30s", "--max-time", "500ms", ln.Addr().String()}, &stdout, &stderr)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the scan took %s despite --max-time 500ms", d)
	}
	if !strings.Contains(stderr.String(), "--max-time 500ms reached") {
		t.Errorf("stderr: %q", stderr.String())
	}
}

// Each outcome of a scan has its exit status, and --help documents them.
func TestScanExitStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{"passed", nil, 0, ""},
		{"old version", fmt.Errorf("%w:\n  a:1 accepts TLSv1.0", errFindings), 1, "tlsfleet scan: a:1 accepts TLSv1.0"},
		{"usage", fmt.Errorf("%w: --timeout must be positive", errUsage), 2, "tlsfleet: usage: --timeout must be positive"},
		{"help", flag.ErrHelp, 2, ""},
		{"no TLS", fmt.Errorf("%w:\n  a:1 accepts no TLS version", errNoTLS), 3, "tlsfleet scan: a:1 accepts no TLS version"},
		{"other", errors.New("boom"), 1, "tlsfleet: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, msg := exitStatus(tt.err); code != tt.code || msg != tt.msg {
				t.Errorf("exitStatus = %d %q, want %d %q", code, msg, tt.code, tt.msg)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	run(t.Context(), []string{"scan", "--help"}, &stdout, &stderr)
	for _, want := range []string{"Exit status:", "  0  every target", "  1  a target accepts a version older", "  3  a target accepts no TLS at all"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("scan --help lacks %q:\n%s", want, stderr.String())
		}
	}
}
