package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/agent"
	"tlsfleet/internal/agent/agenttest"
)

func TestRunAgent(t *testing.T) {
	m := agenttest.NewManager(t, agenttest.Options{})
	m.AddToken("tok", 1)
	dir := filepath.Join(t.TempDir(), "agent")
	if _, err := agent.Activate(t.Context(), agent.ActivateOptions{Dir: dir, URL: m.URL(), Token: "tok", Fingerprint: m.Fingerprint()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr agenttest.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runAgent(ctx, []string{"--dir", dir, "--listen", "127.0.0.1:0", "--legacy-max-tls", "TLSv1"}, &stdout, &stderr)
	}()
	agenttest.Eventually(t, 10*time.Second, "the refusal line", func() bool {
		return strings.Contains(stderr.String(), "legacy simulator: the Manager refused TLS 1.0 (alert protocol version): it accepts only TLSv1.2 and newer")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out := stdout.String(); !strings.Contains(out, "tlsfleet agent (legacy simulator, at most TLSv1) is running") || !strings.Contains(out, m.Addr) {
		t.Errorf("stdout:\n%s", out)
	}

	for _, args := range [][]string{nil, {"--dir", dir, "extra"}, {"--dir", dir, "--legacy-max-tls", "TLSv1.3"}, {"--nope"}} {
		if err := runAgent(t.Context(), args, io.Discard, io.Discard); !errors.Is(err, errUsage) || strings.HasPrefix(err.Error(), "usage: usage:") {
			t.Errorf("%q: %v", args, err)
		}
	}
	// The alias's usage names itself and points to ds_agent.
	var usage bytes.Buffer
	if err := runAgent(t.Context(), []string{"--help"}, io.Discard, &usage); !errors.Is(err, flag.ErrHelp) ||
		!strings.HasPrefix(usage.String(), "tlsfleet agent --dir STATE [flags]") || !strings.Contains(usage.String(), "tlsfleet agent is an alias of ds_agent") {
		t.Errorf("--help: %v\n%s", err, usage.String())
	}
}

func legacyServer(t *testing.T, minVersion uint16) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "key="+r.Header.Get("api-secret-key")+"\n")
	}))
	srv.TLS = &tls.Config{MinVersion: minVersion}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestLegacyClient(t *testing.T) {
	modern := legacyServer(t, tls.VersionTLS12)
	err := runLegacyClient(t.Context(), []string{"--max-tls", "TLSv1", "--insecure", modern.URL + "/api"}, io.Discard, io.Discard)
	if err == nil || err.Error() != "legacy simulator: the server refused TLS 1.0 (alert protocol version): it accepts only TLSv1.2 and newer" {
		t.Errorf("modern server: %v", err)
	}
	err = runLegacyClient(t.Context(), []string{"--max-tls", "TLSv1.1", modern.URL}, io.Discard, io.Discard) // system roots
	if err == nil || !strings.Contains(err.Error(), "refused TLS 1.1") {
		t.Errorf("modern server, TLSv1.1: %v", err)
	}

	old := legacyServer(t, tls.VersionTLS10)
	var out bytes.Buffer
	err = runLegacyClient(t.Context(), []string{"--max-tls", "TLSv1", "--insecure", old.URL, "-H", "api-secret-key: s3cret"}, &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "legacy simulator: HTTP/1.1 200 OK over TLSv1, TLS_ECDHE_") || !strings.Contains(out.String(), "key=s3cret") {
		t.Errorf("old server: %v\n%s", err, out.String())
	}
	// --cacert: the server's own certificate as the trust anchor; without it, the plain-words failure.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old.Certificate().Raw}), 0o644)
	out.Reset()
	if err := runLegacyClient(t.Context(), []string{"--max-tls", "TLSv1.1", "--cacert", ca, old.URL}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "over TLSv1.1") {
		t.Errorf("--cacert: %v %s", err, out.String())
	}
	if err := runLegacyClient(t.Context(), []string{"--max-tls", "TLSv1", old.URL}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--cacert FILE") {
		t.Errorf("untrusted: %v", err)
	}

	for _, args := range [][]string{
		{"--max-tls", "TLSv1"}, {old.URL}, {"--max-tls", "TLSv1.3", old.URL}, {"--max-tls", "TLSv1", "http://x/"},
		{"--max-tls", "TLSv1", "--insecure", "--cacert", ca, old.URL}, {"--max-tls", "TLSv1", "-H", "nocolon", old.URL},
	} {
		var stderr bytes.Buffer
		err := runLegacyClient(t.Context(), args, io.Discard, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "legacy simulator") || !strings.Contains(stderr.String(), "simulator") {
			t.Errorf("%q: %v", args, err)
		}
	}
}
