package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tlsfleet/internal/scan"
)

// errFindings marks a scan that ran but found what the caller asked to fail on (--require-min): exit
// status 1 with the report printed.
var errFindings = errors.New("scan findings")

// errNoTLS marks a scan in which a target accepted no TLS at all — closed, refused, silent, not TLS, or
// refusing every version: exit status 3, so that a script checking enforcement never takes a port that
// accepts nothing for a port that passed.
var errNoTLS = errors.New("no TLS")

// The exit statuses of tlsfleet scan, in its usage text and the README.
const scanExitCodes = `Exit status:
  0  every target accepts TLS, and no version older than --require-min
  1  a target accepts a version older than --require-min
  2  usage error (bad flag or target list)
  3  a target accepts no TLS at all: connection refused or closed, no answer, not a TLS server, or
     every version refused (3 wins over 1 when both apply)`

func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tlsfleet scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := scan.New()
	asJSON := fs.Bool("json", false, "print JSON")
	fs.StringVar(&s.SNI, "sni", "", "server name to send (default: the host name of each target, none for IP addresses)")
	fs.DurationVar(&s.Timeout, "timeout", s.Timeout, "time allowed for each probe (connect, STARTTLS and the server's first flight)")
	fs.IntVar(&s.Concurrency, "concurrency", s.Concurrency, "connections open at once to each target")
	maxTime := fs.Duration("max-time", 0, "stop the whole scan after this long (0: no limit; --timeout bounds each probe)")
	requireMin := fs.String("require-min", "", "exit 1, naming it, when a target accepts a version older than this (e.g. TLSv1.2)")
	fs.StringVar(&s.StartTLS, "starttls", "", "speak this protocol before TLS on every probe: "+strings.Join(scan.StartTLS, "|"))
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tlsfleet scan [--json] [--sni NAME] [--timeout D] [--max-time D] [--concurrency N] [--require-min TLSv1.2] [--starttls PROTO] HOST:PORT...")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, scanExitCodes)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // the usage is printed: no error line under it
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	targets := fs.Args()
	if len(targets) == 0 {
		return fmt.Errorf("%w: name at least one target, e.g. tlsfleet scan 127.0.0.1:4119", errUsage)
	}
	if s.StartTLS != "" && !slices.Contains(scan.StartTLS, s.StartTLS) {
		return fmt.Errorf("%w: --starttls %q: use one of %s", errUsage, s.StartTLS, strings.Join(scan.StartTLS, ", "))
	}
	if s.Timeout <= 0 || s.Concurrency < 1 {
		return fmt.Errorf("%w: --timeout must be positive and --concurrency at least 1", errUsage)
	}
	var minVersion uint16
	if *requireMin != "" {
		v, err := scan.ParseVersion(*requireMin)
		if err != nil {
			return fmt.Errorf("%w: --require-min: %v", errUsage, err)
		}
		minVersion = v
	}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		start := time.Now()
		s.Progress = func(done, total int, probes int64) {
			fmt.Fprintf(f, "\r[%-20s] %d/%d targets, %d connections, %.1fs", strings.Repeat("#", 20*done/total), done, total, probes, time.Since(start).Seconds())
			if done == total {
				fmt.Fprintln(f)
			}
		}
	}
	if *maxTime < 0 {
		return fmt.Errorf("%w: --max-time must not be negative", errUsage)
	}
	if *maxTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *maxTime)
		defer cancel()
	}
	res := s.Scan(ctx, targets)
	if ctx.Err() == context.DeadlineExceeded {
		fmt.Fprintf(stderr, "tlsfleet scan: --max-time %s reached: the results are incomplete\n", *maxTime)
	}
	var err error
	if *asJSON {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	return scanVerdict(*res, minVersion)
}

// scanVerdict fails a scan whose targets accept no TLS (errNoTLS) or a version older than minVersion
// (errFindings), naming each.
func scanVerdict(res scan.Result, minVersion uint16) error {
	var noTLS, findings []string
	for _, t := range res.Targets {
		switch {
		case t.Error != "":
			noTLS = append(noTLS, t.Error)
			continue
		case len(t.Protocols) == 0:
			noTLS = append(noTLS, fmt.Sprintf("%s accepts no TLS version: every ClientHello was refused", t.Target))
			continue
		}
		if minVersion == 0 {
			continue
		}
		for _, p := range t.Protocols {
			if v, _ := scan.ParseVersion(p.Version); v < minVersion {
				findings = append(findings, fmt.Sprintf("%s accepts %s, older than --require-min %s", t.Target, p.Version, scan.VersionName(minVersion)))
			}
		}
	}
	if len(noTLS) > 0 {
		return fmt.Errorf("%w:\n  %s", errNoTLS, strings.Join(append(noTLS, findings...), "\n  "))
	}
	if len(findings) > 0 {
		return fmt.Errorf("%w:\n  %s", errFindings, strings.Join(findings, "\n  "))
	}
	return nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
