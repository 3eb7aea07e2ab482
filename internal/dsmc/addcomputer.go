package dsmc

import (
	"context"
	"fmt"
	"strings"

	"tlsfleet/internal/ops"
)

// prepareAddComputer is the Manager-initiated activation of an agent waiting on HOST:4118.
func prepareAddComputer(o *options) (work, error) {
	if !o.name.set || strings.TrimSpace(o.name.val) == "" {
		return nil, bad("addcomputer needs -name HOST:4118, the agent waiting for activation")
	}
	if !o.activate.set || strings.TrimSpace(o.activate.val) == "false" {
		return nil, bad("addcomputer adds a computer by activating it: add -activate")
	}
	req := ops.AddComputerRequest{Address: o.name.val, ManagerURL: o.value.val}
	if o.value.set && strings.TrimSpace(o.value.val) == "" {
		req.ManagerURL = "-" // given empty: refused by the check below
	}
	var err error
	if req.RelayGroup, req.PolicyID, err = tokenScope(o); err != nil {
		return nil, err
	}
	if _, err := req.Check(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		res, err := s.ops.AddComputer(ctx, req)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, res)
		}
		_, err = fmt.Fprintf(s.stdout, "Activated the agent on %s: GUID %s (it reaches the Manager at %s)\n", res.Agent, res.GUID, res.Manager)
		return err
	}, nil
}
