package dsmc

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"tlsfleet/internal/ops"
)

// --- rotatecert ---

// prepareRotateCert reads -rsa or -ecdsa (neither keeps the key type) and replaces the Manager's
// certificate.
func prepareRotateCert(o *options) (work, error) {
	var req ops.CertRequest
	for _, f := range []struct {
		name, key string
		v         *boolFlag
	}{{"-rsa", "rsa", &o.rsa}, {"-ecdsa", "ecdsa", &o.ecdsa}} {
		if !f.v.set {
			continue
		}
		on, err := strconv.ParseBool(strings.TrimSpace(f.v.val))
		if err != nil {
			return nil, bad("%s=%s: write %s alone (or %s=true|false)", f.name, f.v.val, f.name, f.name)
		}
		if !on {
			continue
		}
		if req.Key != "" {
			return nil, bad("-action rotatecert takes -rsa or -ecdsa, not both")
		}
		req.Key = f.key
	}
	return func(ctx context.Context, s *session) error {
		res, err := s.ops.RotateManagerCert(ctx, req)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, res)
		}
		_, err = fmt.Fprintf(s.stdout, `New Manager certificate %s (%s, was %s), valid until %s, for %s.
SHA-256 %s
A running Manager uses it for new connections within 2 s, without a restart; agents pin the fleet CA
and keep working.
`, res.Path, res.Key, res.PreviousKey, res.NotAfter, strings.Join(append(append([]string{}, res.DNSNames...), res.IPAddresses...), ", "), res.Fingerprint)
		return err
	}, nil
}
