package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"tlsfleet/internal/agent/agentcmd"
)

// runAgent is `tlsfleet agent`, an alias of ds_agent: both run internal/agent/agentcmd until ctx ends.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := agentcmd.Run(ctx, "tlsfleet agent", args, stdout, stderr)
	if errors.Is(err, agentcmd.ErrUsage) {
		return fmt.Errorf("%w: %s", errUsage, strings.TrimPrefix(err.Error(), agentcmd.ErrUsage.Error()+": "))
	}
	return err
}
