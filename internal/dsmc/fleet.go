package dsmc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"tlsfleet/internal/ops"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

// The fleet actions: activation tokens, computers, relays and relay groups, bundles and send policy.
// They work on the database alone, so they work with the Manager stopped; a running Manager sees every
// change through the store's fleet counter and pushes the policies released here.

// needComputer checks that -name names a computer (whether it exists is for the operation to say).
func needComputer(action string, o *options) (string, error) {
	name := strings.TrimSpace(o.name.val)
	if name == "" {
		return "", bad("-action %s needs -name C, the computer's host name or GUID (dsm_c -action listcomputers lists them)", action)
	}
	return name, nil
}

// parseBoolValue reads -value true|false.
func parseBoolValue(action, v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "":
		return false, bad("-action %s needs -value true|false", action)
	}
	return false, bad("-value %q: allowed: true, false", v)
}

// --- what a change released ---

// shortFP is how tables show a policy fingerprint.
func shortFP(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	if fp == "" {
		return "-"
	}
	return fp
}

// printEntries lists computers with a policy fingerprint, at most ops.MaxListed.
func printEntries(w io.Writer, list []ops.PolicyEntry, what string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, e := range list {
		if i == ops.MaxListed {
			fmt.Fprintf(tw, "  … and %d more (dsm_c -action listcomputers lists them)\n", len(list)-ops.MaxListed)
			break
		}
		serial := ""
		if e.Serial != 0 {
			serial = fmt.Sprintf(" (serial %d)", e.Serial)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s %s%s\n", cell(e.Hostname), e.GUID, what, shortFP(e.Fingerprint), serial)
	}
	return tw.Flush()
}

// printReport tells what a change released, and what it left unsent. A fleet without computers hears
// nothing.
func printReport(s *session, r *ops.ReleaseReport) error {
	if r == nil || r.Active == 0 && len(r.Released) == 0 {
		return nil
	}
	w := s.stdout
	if len(r.Released) > 0 {
		fmt.Fprintf(w, "Released a new policy to %s (a running Manager pushes it now; a computer that is offline gets it at its next heartbeat):\n",
			ops.Plural(len(r.Released), "computer", "computers"))
		if err := printEntries(w, r.Released, "policy"); err != nil {
			return err
		}
	}
	if len(r.Unsent) > 0 {
		if !r.AutoSend {
			fmt.Fprintf(w, "%s is false: ", settings.AutoSendPolicy)
		}
		fmt.Fprintf(w, "%s a changed policy that was not sent:\n", ops.Plural(len(r.Unsent), "computer has", "computers have"))
		if err := printEntries(w, r.Unsent, "new policy"); err != nil {
			return err
		}
		fmt.Fprintf(w, "Send it with: dsm_c -action sendpolicy %s\n", sendHint(r.Unsent))
	}
	if len(r.Released) == 0 && len(r.Unsent) == 0 {
		fmt.Fprintln(w, "No computer's policy changed.")
	}
	return nil
}

// sendHint is the sendpolicy target that sends unsent policies.
func sendHint(list []ops.PolicyEntry) string {
	if len(list) == 1 {
		return "-name " + list[0].Name
	}
	for _, e := range list {
		if !e.Relay {
			return "-name C for each computer (-allrelays sends the relays' at once)"
		}
	}
	return "-allrelays"
}

// --- createactivationtoken ---

// tokenScope reads the -relaygroup and -policyid a token carries to the computers it activates; a flag
// given empty is an error (left out, it means none).
func tokenScope(o *options) (group, policyID string, err error) {
	group, policyID = strings.TrimSpace(o.relayGroup.val), strings.TrimSpace(o.policyID.val)
	if o.relayGroup.set && group == "" {
		return "", "", bad("-relaygroup needs a relay group name (printable characters, up to %d)", ops.MaxLabel)
	}
	if o.policyID.set && policyID == "" {
		return "", "", bad("-policyid needs a policy ID (printable characters, up to %d)", ops.MaxLabel)
	}
	return group, policyID, nil
}

func prepareCreateActivationToken(o *options) (work, error) {
	req := ops.TokenRequest{Expires: strings.TrimSpace(o.expires.val)}
	if o.expires.set && req.Expires == "" {
		req.Expires = " " // given empty: refused by the check below
	}
	if o.uses.set {
		v := strings.TrimSpace(o.uses.val)
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > ops.MaxTokenUses {
			return nil, bad("-uses %q: use a whole number of activations from 1 to %d (default 1)", v, ops.MaxTokenUses)
		}
		req.Uses = n
	}
	var err error
	if req.RelayGroup, req.PolicyID, err = tokenScope(o); err != nil {
		return nil, err
	}
	if _, err := req.Check(); err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		tok, err := s.ops.CreateActivationToken(ctx, req)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, tok)
		}
		expires, _ := time.Parse(time.RFC3339Nano, tok.ExpiresAt)
		fmt.Fprintf(s.stdout, "Activation token created, valid until %s for %s:\n\n  %s\n\n",
			expires.Format(time.RFC3339), ops.Plural(tok.Uses, "activation", "activations"), tok.Token)
		if tok.RelayGroup != "" || tok.PolicyID != "" {
			fmt.Fprintf(s.stdout, "Computers it activates get relay group %q and policy ID %q (unless dsa_control names others).\n",
				cmpOr(tok.RelayGroup, store.DefaultRelayGroup), tok.PolicyID)
		}
		_, err = fmt.Fprintf(s.stdout, `Store it now: it cannot be shown again (the Manager keeps only its hash).
Fleet CA SHA-256 fingerprint: %s

Activate an agent with:

  %s
`, tok.Fingerprint, tok.Command)
		return err
	}, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// --- listcomputers ---

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func prepareListComputers(o *options) (work, error) {
	return func(ctx context.Context, s *session) error {
		views, err := s.ops.ListComputers(ctx)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, views)
		}
		if len(views) == 0 {
			_, err := fmt.Fprintln(s.stdout, "No computers are activated yet; dsm_c -action createactivationtoken makes a token to activate one.")
			return err
		}
		tw := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GUID\tHOSTNAME\tRELAY\tGROUP\tLAST SEEN\tSTATUS\tTLS\tVERSION\tPOLICY SENT\tPOLICY ACKED\tPENDING")
		for _, v := range views {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(v.GUID), cell(v.Hostname), yesNo(v.Relay), cell(v.RelayGroup),
				cell(shortTime(v.LastSeen)), v.Status, cell(v.NegotiatedTLS), cell(v.AgentVersion), shortFP(v.PolicySent), shortFP(v.PolicyAcked),
				yesNo(v.Pending))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		_, err = fmt.Fprintf(s.stdout, "\nOnline: checked in within %d heartbeat periods (the interval of each computer's policy: %s).\n",
			ops.MissedHeartbeats, intervals(views))
		return err
	}, nil
}

// intervals describes the heartbeat intervals of the listed computers: "60 s", or "10-60 s".
func intervals(views []ops.ComputerView) string {
	lo, hi := 0, 0
	for _, v := range views {
		if lo == 0 || v.HeartbeatSeconds < lo {
			lo = v.HeartbeatSeconds
		}
		hi = max(hi, v.HeartbeatSeconds)
	}
	if lo == hi {
		return fmt.Sprintf("%d s", lo)
	}
	return fmt.Sprintf("%d-%d s", lo, hi)
}

// --- deactivate, reactivate, setrelay, assignrelaygroup ---

// renderChange prints what an operation on one computer did.
func renderChange(s *session, res ops.ComputerChange) error {
	if s.json {
		return writeJSON(s, res)
	}
	if _, err := fmt.Fprintf(s.stdout, "%s (%s): %s\n", cell(res.Hostname), res.GUID, res.Summary); err != nil {
		return err
	}
	return printReport(s, res.ReleaseReport)
}

func prepareSetDeactivated(off bool) func(o *options) (work, error) {
	action := map[bool]string{true: "deactivate", false: "reactivate"}[off]
	return func(o *options) (work, error) {
		name, err := needComputer(action, o)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, s *session) error {
			res, err := s.ops.SetDeactivated(ctx, name, off)
			if err != nil {
				return err
			}
			return renderChange(s, res)
		}, nil
	}
}

func prepareSetRelay(o *options) (work, error) {
	name, err := needComputer("setrelay", o)
	if err != nil {
		return nil, err
	}
	on, err := parseBoolValue("setrelay", o.value.val)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		res, err := s.ops.SetRelay(ctx, name, on)
		if err != nil {
			return err
		}
		return renderChange(s, res)
	}, nil
}

func prepareAssignRelayGroup(o *options) (work, error) {
	name, err := needComputer("assignrelaygroup", o)
	if err != nil {
		return nil, err
	}
	group := strings.TrimSpace(o.value.val)
	if group == "" {
		return nil, bad("-action assignrelaygroup needs -value G, a relay group (dsm_c -action listrelaygroups lists them)")
	}
	return func(ctx context.Context, s *session) error {
		res, err := s.ops.AssignRelayGroup(ctx, name, group)
		if err != nil {
			return err
		}
		return renderChange(s, res)
	}, nil
}

// --- createrelaygroup, listrelaygroups ---

func prepareCreateRelayGroup(o *options) (work, error) {
	group := strings.TrimSpace(o.name.val)
	if group == "" {
		return nil, bad("-action createrelaygroup needs -name G, the new group's name (printable characters, up to %d)", ops.MaxLabel)
	}
	if err := ops.CheckGroupName(group); err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		res, err := s.ops.CreateRelayGroup(ctx, group)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, res)
		}
		_, err = fmt.Fprintf(s.stdout, "Relay group %q created. Put computers in it with: dsm_c -action assignrelaygroup -name C -value %q\n", res.Name, res.Name)
		return err
	}, nil
}

func prepareListRelayGroups(o *options) (work, error) {
	return func(ctx context.Context, s *session) error {
		views, err := s.ops.ListRelayGroups(ctx)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, views)
		}
		tw := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tCOMPUTERS\tRELAYS")
		for _, v := range views {
			relays := make([]string, len(v.Relays))
			for i, r := range v.Relays {
				relays[i] = cell(r)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\n", cell(v.Name), v.Computers, cell(strings.Join(relays, ", ")))
		}
		return tw.Flush()
	}, nil
}

// --- sendpolicy ---

func prepareSendPolicy(o *options) (work, error) {
	const targets = "-name C (a computer), -relaygroup G (the relays of group G) or -allrelays (every relay)"
	all := false
	if o.allRelays.set {
		v, err := strconv.ParseBool(strings.TrimSpace(o.allRelays.val))
		if err != nil {
			return nil, bad("-allrelays=%s: write -allrelays alone (or -allrelays=true|false)", o.allRelays.val)
		}
		all = v
	}
	name, group := strings.TrimSpace(o.name.val), strings.TrimSpace(o.relayGroup.val)
	var given []string
	if o.name.set {
		given = append(given, "-name")
	}
	if o.relayGroup.set {
		given = append(given, "-relaygroup")
	}
	if all {
		given = append(given, "-allrelays")
	}
	switch {
	case len(given) == 0:
		return nil, bad("-action sendpolicy needs one of %s", targets)
	case len(given) > 1:
		return nil, bad("-action sendpolicy takes one of %s; got %s", targets, strings.Join(given, " and "))
	case o.name.set && name == "":
		return nil, bad("-action sendpolicy -name needs a computer's host name or GUID (dsm_c -action listcomputers lists them)")
	case o.relayGroup.set && group == "":
		return nil, bad("-action sendpolicy -relaygroup needs a relay group (dsm_c -action listrelaygroups lists them)")
	}
	t := ops.SendTarget{RelayGroup: group, AllRelays: all}
	if name != "" {
		t.Computers = []string{name}
	}
	return func(ctx context.Context, s *session) error {
		res, err := s.ops.SendPolicy(ctx, t)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, res)
		}
		return printSent(s.stdout, res)
	}, nil
}

func printSent(w io.Writer, res ops.SendResult) error {
	if len(res.Released)+len(res.Current) == 0 {
		_, err := fmt.Fprintf(w, "No relays in %s: no policy to send (dsm_c -action setrelay -name C -value true makes a relay).\n", res.What)
		return err
	}
	for _, e := range res.Released {
		fmt.Fprintf(w, "%s (%s): released policy %s (serial %d)\n", cell(e.Hostname), e.GUID, e.Fingerprint, e.Serial)
	}
	for _, e := range res.Current {
		fmt.Fprintf(w, "%s (%s): already current (policy %s)\n", cell(e.Hostname), e.GUID, e.Fingerprint)
	}
	if len(res.Released) > 0 {
		_, err := fmt.Fprintln(w, "A running Manager pushes the released policies now; a computer that is offline gets its policy at its next heartbeat.")
		return err
	}
	return nil
}

// --- publishbundle ---

func preparePublishBundle(o *options) (work, error) {
	name := strings.TrimSpace(o.name.val)
	if name == "" {
		return nil, bad("-action publishbundle needs -name NAME, the bundle's name (printable characters, up to %d), and -value FILE", ops.MaxBundleName)
	}
	if err := ops.CheckBundleName(name); err != nil {
		return nil, err
	}
	path := strings.TrimSpace(o.value.val)
	if path == "" {
		return nil, bad("-action publishbundle needs -value FILE, the path of the bundle file to publish (at most 256 MiB)")
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, bad("-value %q: no such file; give the path of the bundle file to publish (at most 256 MiB)", path)
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, bad("-value %q is not a regular file; give the path of the bundle file to publish (at most 256 MiB)", path)
	case fi.Size() == 0:
		return nil, bad("-value %q is empty; a bundle has 1 byte to 256 MiB", path)
	case fi.Size() > ops.MaxBundleSize:
		return nil, bad("-value %q is %d bytes; a bundle has at most 256 MiB (%d bytes)", path, fi.Size(), ops.MaxBundleSize)
	}
	return func(ctx context.Context, s *session) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(f, ops.MaxBundleSize+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if len(data) == 0 || len(data) > ops.MaxBundleSize {
			return bad("-value %q changed while being read and now has %d bytes; a bundle has 1 byte to 256 MiB", path, len(data))
		}
		res, err := s.ops.PublishBundle(ctx, name, data)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, res)
		}
		state := "published"
		if !res.Changed {
			state = "already published (unchanged)"
		}
		if _, err := fmt.Fprintf(s.stdout, "Bundle %q %s:\n  sha256 %s\n  size   %d bytes\n  file   %s\n", name, state, res.SHA256, res.Size, res.Path); err != nil {
			return err
		}
		return printReport(s, res.ReleaseReport)
	}, nil
}

// --- listmanagernodes ---

func prepareListManagerNodes(o *options) (work, error) {
	return func(ctx context.Context, s *session) error {
		nodes, err := s.ops.ListManagerNodes(ctx)
		if err != nil {
			return err
		}
		if s.json {
			return writeJSON(s, nodes)
		}
		tw := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tSTATUS\tCONSOLE\tAGENT CHANNEL\tVERSION\tSTARTED\tLAST SEEN")
		for _, n := range nodes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(n.Name), n.Status, cell(n.ConsoleAddr), cell(n.AgentAddr),
				cell(n.Version), n.StartedAt, n.LastSeen)
		}
		return tw.Flush()
	}, nil
}
