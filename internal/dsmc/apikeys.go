package dsmc

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"tlsfleet/internal/ops"
)

// expiresText says when a key expires, in a sentence.
func expiresText(at string) string {
	if at == "" {
		return "never expires"
	}
	return "expires " + shortTime(at)
}

// --- listapikeys ---

func prepareListAPIKeys(o *options) (work, error) {
	return func(ctx context.Context, s *session) error {
		keys, err := s.ops.ListAPIKeys(ctx)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, keys)
		}
		if len(keys) == 0 {
			_, err := fmt.Fprintln(s.stdout, "No API keys. Create one with dsm_c -action createapikey -name N.")
			return err
		}
		tw := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPREFIX\tSCOPE\tCREATED\tEXPIRES\tLAST USED\tSTATUS")
		for _, k := range keys {
			status := k.Status
			if k.RevokedAt != "" {
				status += " " + shortTime(k.RevokedAt)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(k.Name), cell(k.Prefix), cell(k.Scope), cell(shortTime(k.CreatedAt)),
				orNever(k.ExpiresAt), cell(shortTime(k.LastUsedAt)), status)
		}
		return tw.Flush()
	}, nil
}

func orNever(at string) string {
	if at == "" {
		return "never"
	}
	return shortTime(at)
}

// --- revokeapikey ---

func prepareRevokeAPIKey(o *options) (work, error) {
	name := strings.TrimSpace(o.name.val)
	if name == "" {
		return nil, bad("-action revokeapikey needs -name N, the key's name (dsm_c -action listapikeys lists them)")
	}
	if err := ops.CheckKeyName(name); err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		res, err := s.ops.RevokeAPIKey(ctx, name)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, res)
		}
		if !res.Changed {
			_, err = fmt.Fprintf(s.stdout, "API key %q (prefix %s) was revoked already, at %s (unchanged).\n", res.Name, res.Prefix, shortTime(res.RevokedAt))
			return err
		}
		_, err = fmt.Fprintf(s.stdout, "API key %q (prefix %s) revoked: every Manager node refuses it from its next request on.\n", res.Name, res.Prefix)
		return err
	}, nil
}
