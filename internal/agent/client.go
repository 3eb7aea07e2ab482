package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"time"

	"tlsfleet/internal/tlspolicy"
)

// ParseLegacyMax reads --legacy-max-tls: TLSv1 or TLSv1.1 (any spelling tlspolicy.ParseVersion knows);
// "" means no legacy simulation.
func ParseLegacyMax(s string, allowTLS12 bool) (tlspolicy.Version, error) {
	if s == "" {
		return 0, nil
	}
	v, err := tlspolicy.ParseVersion(s)
	want := "TLSv1 or TLSv1.1"
	if allowTLS12 {
		want = "TLSv1, TLSv1.1 or TLSv1.2"
	}
	if err != nil || v < tlspolicy.TLSv1 || v > tlspolicy.TLSv1_1 && !(allowTLS12 && v == tlspolicy.TLSv1_2) {
		return 0, fmt.Errorf("%w: legacy simulator: maximum TLS version %q: use %s", ErrUsage, s, want)
	}
	return v, nil
}

// legacySuites are what an agent or API client from the TLS 1.0 era offers: CBC suites with ECDHE or
// RSA key exchange, and 3DES.
var legacySuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
	// For a TLS 1.2 maximum (legacy-client --max-tls TLSv1.2).
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
}

// LegacyClientConfig is the legacy simulator's client: at most max (TLSv1 or TLSv1.1), down to TLS 1.0.
// Go's client speaks TLS 1.0 and 1.1 only when MinVersion says so explicitly.
func LegacyClientConfig(max tlspolicy.Version) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   uint16(max),
		CipherSuites: append([]uint16(nil), legacySuites...),
	}
}

// clientConfig is the agent's TLS client: TLS 1.2 and 1.3, or the legacy range.
func clientConfig(legacyMax tlspolicy.Version) *tls.Config {
	if legacyMax != 0 {
		return LegacyClientConfig(legacyMax)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// clientVersions lists the versions the agent's client speaks, as heartbeats report them.
func clientVersions(legacyMax tlspolicy.Version) []string {
	lo, hi := tlspolicy.TLSv1_2, tlspolicy.TLSv1_3
	if legacyMax != 0 {
		lo, hi = tlspolicy.TLSv1, legacyMax
	}
	var out []string
	for v := lo; v <= hi; v++ {
		out = append(out, v.String())
	}
	return out
}

// alertNames are the alerts a refused handshake ends with, in words.
var alertNames = map[uint8]string{
	40: "handshake failure", 42: "bad certificate", 46: "certificate unknown", 47: "illegal parameter",
	48: "unknown ca", 70: "protocol version", 71: "insufficient security", 80: "internal error",
	116: "certificate required", 120: "no application protocol",
}

// remoteAlert returns the alert a peer sent to end a handshake, if that is what err is.
func remoteAlert(err error) (uint8, bool) {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(oe.Err)
	if v.Kind() != reflect.Uint8 {
		return 0, false
	}
	return uint8(v.Uint()), true
}

// versionRefused reports whether a handshake failed because the server wants another protocol version:
// it sent protocol_version (or, as some stacks do, handshake_failure/insufficient_security), or picked
// a version this client does not speak.
func versionRefused(err error) (alert string, ok bool) {
	if a, isAlert := remoteAlert(err); isAlert {
		switch a {
		case 70, 71, 40:
			return "alert " + alertNames[a], true
		}
		return "", false
	}
	if err != nil && strings.Contains(err.Error(), "server selected unsupported protocol version") {
		return "server selected an unsupported version", true
	}
	return "", false
}

// ExplainRefusal turns a failed legacy handshake into one line in plain words, or "" when err is not a
// refused version. who is "the Manager", "the relay HOST:PORT", "the server"; lowest is the oldest
// version the server accepts (0: unknown).
func ExplainRefusal(who string, legacyMax tlspolicy.Version, err error, lowest tlspolicy.Version) string {
	alert, ok := versionRefused(err)
	if !ok {
		return ""
	}
	// Without a probe, all that is known is that nothing up to legacyMax was accepted; the server's
	// minimum may be far above it (a relay at TLSv1.2 refusing a TLS 1.0 client).
	accepts := fmt.Sprintf("it accepts no version up to %s", legacyMax)
	if lowest != 0 {
		accepts = fmt.Sprintf("it accepts only %s and newer", lowest)
	}
	return fmt.Sprintf("legacy simulator: %s refused %s (%s): %s", who, legacyMax.Prose(), alert, accepts)
}

// ProbeLowestVersion finds the oldest version above `above` that addr completes a handshake with (or at
// least does not refuse for its version). It is the legacy simulator's diagnosis, run once after a
// refusal; it sends no certificate and checks none.
func ProbeLowestVersion(ctx context.Context, addr, serverName string, above tlspolicy.Version) tlspolicy.Version {
	for v := above + 1; v <= tlspolicy.TLSv1_3; v++ {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
			MinVersion: uint16(v), MaxVersion: uint16(v), InsecureSkipVerify: true, ServerName: serverName,
		}}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := d.DialContext(cctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			return v
		}
		if _, refused := versionRefused(err); !refused {
			var oe *net.OpError
			if errors.As(err, &oe) && oe.Op == "dial" {
				return 0 // not reachable: no answer to give
			}
			return v // the version was not the problem
		}
	}
	return 0
}
