package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"tlsfleet/internal/agent"
	"tlsfleet/internal/tlspolicy"
)

const legacyClientUsage = `tlsfleet legacy-client --max-tls V [--insecure | --cacert FILE] [-H 'Name: value']... URL

The legacy API client simulator: one GET with a TLS client that speaks at most V (TLSv1, TLSv1.1 or
TLSv1.2) — like the Java 6/7 and old .NET clients that the "Use TLS 1.2" page leaves behind — printing
the status and body, or why the handshake failed, in plain words.

  --max-tls V     the newest TLS version to offer (required)
  --cacert FILE   trust this CA (for tlsfleet: dsm_c -action exportdsmcert -value FILE)
  --insecure      do not check the server's certificate
  -H 'N: v'       a request header (repeatable), e.g. -H 'api-secret-key: ...'
  --timeout D     give up after D (default 10s)
`

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

// runLegacyClient is `tlsfleet legacy-client`.
func runLegacyClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tlsfleet legacy-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, legacyClientUsage) }
	maxTLS := fs.String("max-tls", "", "the newest TLS version to offer")
	insecure := fs.Bool("insecure", false, "do not check the server's certificate")
	caFile := fs.String("cacert", "", "trust this CA certificate (PEM)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	var headers headerList
	fs.Var(&headers, "H", "request header 'Name: value' (repeatable)")
	// Flags may come after the URL too.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: legacy simulator: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	usageErr := func(format string, a ...any) error {
		fmt.Fprint(stderr, legacyClientUsage)
		return fmt.Errorf("%w: legacy simulator: "+format, append([]any{errUsage}, a...)...)
	}
	if len(rest) != 1 {
		return usageErr("give one URL, e.g. tlsfleet legacy-client --max-tls TLSv1 --cacert ca.pem https://manager:4119/api/settings")
	}
	if *maxTLS == "" {
		return usageErr("--max-tls is required: TLSv1, TLSv1.1 or TLSv1.2")
	}
	maxV, err := agent.ParseLegacyMax(*maxTLS, true)
	if err != nil {
		return usageErr("--max-tls %q: use TLSv1, TLSv1.1 or TLSv1.2", *maxTLS)
	}
	u, err := url.Parse(rest[0])
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return usageErr("%q is not an https:// URL", rest[0])
	}
	if *insecure && *caFile != "" {
		return usageErr("--insecure and --cacert contradict each other")
	}
	cfg := agent.LegacyClientConfig(maxV)
	switch {
	case *insecure:
		cfg.InsecureSkipVerify = true
	case *caFile != "":
		b, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("legacy simulator: --cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("legacy simulator: --cacert %s holds no PEM certificate", *caFile)
		}
		cfg.RootCAs = pool
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("legacy simulator: %w", err)
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return usageErr("-H %q: write -H 'Name: value'", h)
		}
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return explainLegacyFailure(ctx, u, maxV, err)
	}
	defer resp.Body.Close()
	suite := tls.CipherSuiteName(resp.TLS.CipherSuite)
	fmt.Fprintf(stdout, "legacy simulator: %s %s over %s, %s\n", resp.Proto, resp.Status, tlspolicy.Version(resp.TLS.Version), suite)
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		return fmt.Errorf("legacy simulator: reading the body: %w", err)
	}
	return nil
}

// explainLegacyFailure says in plain words why the request failed.
func explainLegacyFailure(ctx context.Context, u *url.URL, maxV tlspolicy.Version, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	host := u.Hostname()
	hostport := net.JoinHostPort(host, port)
	if line := agent.ExplainRefusal("the server", maxV, err, agent.ProbeLowestVersion(ctx, hostport, host, maxV)); line != "" {
		return errors.New(line)
	}
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("legacy simulator: the TLS handshake with %s worked, but its certificate is not from a CA this client trusts: give --cacert FILE (for tlsfleet: dsm_c -action exportdsmcert -value FILE) or --insecure", hostport)
	case errors.As(err, &hostErr):
		return fmt.Errorf("legacy simulator: %s's certificate does not name %q: %v", hostport, host, hostErr)
	}
	return fmt.Errorf("legacy simulator: GET %s failed: %w", u, err)
}
