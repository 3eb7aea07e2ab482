package dsmc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"tlsfleet/internal/auth"
	"tlsfleet/internal/fleet"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/settings"
	"tlsfleet/internal/store"
)

// The fleet actions: activation tokens, computers, relays and relay groups, bundles and send policy.
// They work on the database alone, so they work with the Manager stopped; a running Manager sees every
// change through the store's fleet counter and pushes the policies released here.

// --- checks shared by the fleet actions ---

const (
	maxLabel      = 64  // relay group names and policy IDs
	maxBundleName = 128 // bundle names are often file names
)

// checkLabel checks a name the user chooses (a relay group, a policy ID, a bundle name): printable text
// of 1 to max characters.
func checkLabel(flag, what, v string, max int) error {
	rule := fmt.Sprintf("printable characters, up to %d", max)
	switch {
	case v == "":
		return bad("%s needs %s (%s)", flag, what, rule)
	case !utf8.ValidString(v):
		return bad("%s %q is not UTF-8 text; use %s", flag, v, rule)
	case utf8.RuneCountInString(v) > max:
		return bad("%s %q is %d characters long; use %s", flag, v, utf8.RuneCountInString(v), rule)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return bad("%s %q: %s is not allowed in %s; use %s", flag, v, strconv.QuoteRune(r), what, rule)
		}
	}
	return nil
}

// needComputer checks that -name names a computer (whether it exists is for the database to say).
func needComputer(action string, o *options) (string, error) {
	name := strings.TrimSpace(o.name.val)
	if name == "" {
		return "", bad("-action %s needs -name C, the computer's host name or GUID (dsm_c -action listcomputers lists them)", action)
	}
	return name, nil
}

// maxListed bounds the computers an error message or a report lists.
const maxListed = 20

// computerNames lists computers for a message: host name and GUID, at most maxListed.
func computerNames(cs []store.Computer) string {
	var names []string
	for i, c := range cs {
		if i == maxListed {
			names = append(names, fmt.Sprintf("and %d more", len(cs)-maxListed))
			break
		}
		names = append(names, fmt.Sprintf("%s (%s)", cell(c.Hostname), c.GUID))
	}
	return strings.Join(names, ", ")
}

// findComputer finds a computer by GUID or host name; a name no computer has, or that several have, is
// bad input.
func findComputer(ctx context.Context, db *store.DB, name string) (store.Computer, error) {
	cs, err := db.Computers(ctx)
	if err != nil {
		return store.Computer{}, err
	}
	var exact, folded []store.Computer
	for _, c := range cs {
		switch {
		case c.GUID == name:
			return c, nil
		case c.Hostname == name:
			exact = append(exact, c)
		case strings.EqualFold(c.Hostname, name) || strings.EqualFold(c.GUID, name):
			folded = append(folded, c)
		}
	}
	found := exact
	if len(found) == 0 {
		found = folded // host names are case-insensitive
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return store.Computer{}, bad("-name %q: %d computers have that host name: %s; give the GUID", name, len(found), computerNames(found))
	case len(cs) == 0:
		return store.Computer{}, bad("-name %q: no computer is activated yet (dsm_c -action createactivationtoken makes a token to activate one)", name)
	}
	return store.Computer{}, bad("-name %q: no computer has that host name or GUID; the computers are: %s (dsm_c -action listcomputers lists them)",
		name, computerNames(cs))
}

// findGroup checks that a relay group exists; an unknown one is bad input that lists the groups.
func findGroup(ctx context.Context, db *store.DB, flag, group string) error {
	groups, err := db.RelayGroups(ctx)
	if err != nil {
		return err
	}
	hint := ""
	for _, g := range groups {
		if g == group {
			return nil
		}
		if strings.EqualFold(g, group) {
			hint = fmt.Sprintf(" (did you mean %q?)", g)
		}
	}
	return bad("%s %q is not a relay group%s; the groups are: %s (dsm_c -action createrelaygroup -name G creates one)",
		flag, group, hint, quoteList(groups))
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
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

// --- releasing ---

// policyEntry is a computer and the fingerprint of a policy.
type policyEntry struct {
	GUID        string `json:"guid"`
	Hostname    string `json:"hostname"`
	Fingerprint string `json:"fingerprint"`
	Serial      int64  `json:"serial,omitempty"`

	name  string // how -name names it: the host name, or the GUID when several share the host name
	relay bool
}

func newEntry(c store.Computer, fp string, hostCount map[string]int) policyEntry {
	name := c.Hostname
	if hostCount[strings.ToLower(c.Hostname)] > 1 || name == "" {
		name = c.GUID
	}
	return policyEntry{GUID: c.GUID, Hostname: c.Hostname, Fingerprint: fp, name: name, relay: c.Relay}
}

func countHosts(cs []store.Computer) map[string]int {
	n := map[string]int{}
	for _, c := range cs {
		n[strings.ToLower(c.Hostname)]++
	}
	return n
}

// releaseReport is what a change did to the policies (part of the JSON of the changing actions).
type releaseReport struct {
	AutoSend bool `json:"automatically_send_policy"`
	// Released are the computers whose released policy changed (a running Manager pushes it).
	Released []policyEntry `json:"released"`
	// Unsent are the computers whose policy changed but was not released (automaticallySendPolicy is
	// false): sendpolicy sends it.
	Unsent []policyEntry `json:"unsent"`

	active int // computers not deactivated
}

// sentPolicies returns the fingerprint of every computer's released policy, to compare after a change.
func sentPolicies(ctx context.Context, db *store.DB) (map[string]string, error) {
	cs, err := db.Computers(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(cs))
	for _, c := range cs {
		out[c.GUID] = c.PolicySent
	}
	return out, nil
}

// releaseSince runs the automatic release after a change and reports every computer whose released
// policy differs from before (released here or, meanwhile, by a running Manager) and every computer
// whose policy changed but stays unsent.
func releaseSince(ctx context.Context, db *store.DB, before map[string]string) (*releaseReport, error) {
	snap, err := fleet.Load(ctx, db)
	if err != nil {
		return nil, err
	}
	released, err := fleet.AutoRelease(ctx, db, snap)
	if err != nil {
		return nil, err
	}
	after, err := fleet.Load(ctx, db)
	if err != nil {
		return nil, err
	}
	r := &releaseReport{AutoSend: after.Settings.Get(settings.AutoSendPolicy) == "true", Released: []policyEntry{}, Unsent: []policyEntry{}}
	hosts := countHosts(after.Computers)
	for _, c := range after.Computers {
		if c.Deactivated {
			continue
		}
		r.active++
		if old, ok := before[c.GUID]; !ok || old != c.PolicySent {
			e := newEntry(c, c.PolicySent, hosts)
			e.Serial = released[c.GUID].Serial
			r.Released = append(r.Released, e)
		} else if p := after.PolicyFor(c); p.Fingerprint() != c.PolicySent {
			r.Unsent = append(r.Unsent, newEntry(c, p.Fingerprint(), hosts))
		}
	}
	return r, nil
}

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

// printEntries lists computers with a policy fingerprint, at most maxListed.
func printEntries(w io.Writer, list []policyEntry, what string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for i, e := range list {
		if i == maxListed {
			fmt.Fprintf(tw, "  … and %d more (dsm_c -action listcomputers lists them)\n", len(list)-maxListed)
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

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// printReport tells what a change released, and what it left unsent. A fleet without computers hears
// nothing.
func printReport(s *session, r *releaseReport) error {
	if r == nil || r.active == 0 && len(r.Released) == 0 {
		return nil
	}
	w := s.stdout
	if len(r.Released) > 0 {
		fmt.Fprintf(w, "Released a new policy to %s (a running Manager pushes it now; a computer that is offline gets it at its next heartbeat):\n",
			plural(len(r.Released), "computer", "computers"))
		if err := printEntries(w, r.Released, "policy"); err != nil {
			return err
		}
	}
	if len(r.Unsent) > 0 {
		if !r.AutoSend {
			fmt.Fprintf(w, "%s is false: ", settings.AutoSendPolicy)
		}
		fmt.Fprintf(w, "%s a changed policy that was not sent:\n", plural(len(r.Unsent), "computer has", "computers have"))
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
func sendHint(list []policyEntry) string {
	if len(list) == 1 {
		return "-name " + list[0].name
	}
	for _, e := range list {
		if !e.relay {
			return "-name C for each computer (-allrelays sends the relays' at once)"
		}
	}
	return "-allrelays"
}

// --- createactivationtoken ---

const (
	defaultTokenLife = 24 * time.Hour
	minTokenLife     = time.Minute
	maxTokenLife     = 365 * 24 * time.Hour
	maxTokenUses     = 100000
)

// parseExpiry reads -expires: a Go duration (72h, 90m) or whole days (3d).
func parseExpiry(v string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(v, "d"); ok {
		var days int
		days, err = strconv.Atoi(n)
		d = time.Duration(days) * 24 * time.Hour
		if days > 100000 {
			err = errors.New("too many days")
		}
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d < minTokenLife || d > maxTokenLife {
		return 0, bad("-expires %q: use a Go duration like 24h or 90m, or whole days like 3d, from 1m to 365d (default 24h)", v)
	}
	return d, nil
}

// tokenResult is createactivationtoken's JSON output.
type tokenResult struct {
	Token       string `json:"token"`
	ExpiresAt   string `json:"expires_at"`
	Uses        int    `json:"uses"`
	PolicyID    string `json:"policy_id,omitempty"`
	RelayGroup  string `json:"relay_group,omitempty"`
	Fingerprint string `json:"fingerprint"`
	Command     string `json:"command"`
}

// issueToken stores a new activation token for the scope and returns it (shown once) with the fleet CA's
// fingerprint that pins it and its expiry. The group must exist; the CA is read first, since a token is no
// use without the fingerprint.
func issueToken(ctx context.Context, s *session, group, policyID string, life time.Duration, uses int) (plain, fingerprint string, expires time.Time, err error) {
	if group != "" {
		if err := findGroup(ctx, s.db, "-relaygroup", group); err != nil {
			return "", "", time.Time{}, err
		}
	}
	ca, err := readCACert(s)
	if err != nil {
		return "", "", time.Time{}, err
	}
	plain, hash, err := auth.NewActivationToken()
	if err != nil {
		return "", "", time.Time{}, err
	}
	expires = time.Now().Add(life).UTC().Truncate(time.Second)
	if err := s.db.InsertActivationToken(ctx, hash, store.ActivationToken{ExpiresAt: expires.Format(time.RFC3339Nano),
		UsesLeft: uses, PolicyID: policyID, RelayGroup: group}); err != nil {
		return "", "", time.Time{}, err
	}
	return plain, pki.Fingerprint(ca), expires, nil
}

// tokenScope reads and checks the -relaygroup and -policyid a token carries to the computers it activates.
func tokenScope(o *options) (group, policyID string, err error) {
	group, policyID = strings.TrimSpace(o.relayGroup.val), strings.TrimSpace(o.policyID.val)
	if o.relayGroup.set {
		if err := checkLabel("-relaygroup", "a relay group name", group, maxLabel); err != nil {
			return "", "", err
		}
	}
	if o.policyID.set {
		if err := checkLabel("-policyid", "a policy ID", policyID, maxLabel); err != nil {
			return "", "", err
		}
	}
	return group, policyID, nil
}

func prepareCreateActivationToken(o *options) (work, error) {
	life := defaultTokenLife
	if o.expires.set {
		d, err := parseExpiry(strings.TrimSpace(o.expires.val))
		if err != nil {
			return nil, err
		}
		life = d
	}
	uses := 1
	if o.uses.set {
		v := strings.TrimSpace(o.uses.val)
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxTokenUses {
			return nil, bad("-uses %q: use a whole number of activations from 1 to %d (default 1)", v, maxTokenUses)
		}
		uses = n
	}
	group, policyID, err := tokenScope(o)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		plain, fp, expires, err := issueToken(ctx, s, group, policyID, life, uses)
		if err != nil {
			return err
		}
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "HOST"
		}
		res := tokenResult{Token: plain, ExpiresAt: expires.Format(time.RFC3339Nano), Uses: uses, PolicyID: policyID, RelayGroup: group,
			Fingerprint: fp, Command: fmt.Sprintf("dsa_control -a dsm://%s:%d/ token:%s -fingerprint %s", host, s.folder.HeartbeatPort, plain, fp)}
		if s.json {
			return writeJSON(s, res)
		}
		fmt.Fprintf(s.stdout, "Activation token created, valid until %s for %s:\n\n  %s\n\n",
			expires.Format(time.RFC3339), plural(uses, "activation", "activations"), plain)
		if group != "" || policyID != "" {
			fmt.Fprintf(s.stdout, "Computers it activates get relay group %q and policy ID %q (unless dsa_control names others).\n",
				cmpOr(group, store.DefaultRelayGroup), policyID)
		}
		_, err = fmt.Fprintf(s.stdout, `Store it now: it cannot be shown again (the Manager keeps only its hash).
Fleet CA SHA-256 fingerprint: %s

Activate an agent with:

  %s
`, fp, res.Command)
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

// computerView is listcomputers' JSON object: the stored computer with its status.
type computerView struct {
	store.Computer
	Status  string `json:"status"`         // online, offline, never seen, deactivated
	Pending bool   `json:"policy_pending"` // the released policy is not acknowledged yet
}

// computerStatus says whether a computer checked in within three heartbeat periods.
func computerStatus(c store.Computer, period time.Duration, now time.Time) string {
	if c.Deactivated {
		return "deactivated"
	}
	t, err := time.Parse(time.RFC3339Nano, c.LastSeen)
	switch {
	case c.LastSeen == "" || err != nil:
		return "never seen"
	case now.Sub(t) <= 3*period:
		return "online"
	}
	return "offline"
}

// heartbeatPeriod is settings.configuration.defaultHeartbeatPeriod.
func heartbeatPeriod(vals settings.Values) time.Duration {
	m, err := strconv.Atoi(vals.Get(settings.HeartbeatPeriod))
	if err != nil || m < 1 {
		st, _ := settings.Lookup(settings.HeartbeatPeriod)
		m, _ = strconv.Atoi(st.Default)
	}
	return time.Duration(m) * time.Minute
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func prepareListComputers(o *options) (work, error) {
	return func(ctx context.Context, s *session) error {
		vals, err := s.db.Settings(ctx)
		if err != nil {
			return err
		}
		cs, err := s.db.Computers(ctx)
		if err != nil {
			return err
		}
		period, now := heartbeatPeriod(vals), time.Now()
		views := make([]computerView, 0, len(cs))
		for _, c := range cs {
			views = append(views, computerView{Computer: c, Status: computerStatus(c, period, now), Pending: c.PolicySent != c.PolicyAcked})
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
		_, err = fmt.Fprintf(s.stdout, "\nOnline: checked in within 3 heartbeat periods (%s = %d minutes).\n", settings.HeartbeatPeriod, int(period.Minutes()))
		return err
	}, nil
}

// --- deactivate, reactivate, setrelay, assignrelaygroup ---

// computerChange is the JSON output of the actions that change one computer; each sets its own field.
type computerChange struct {
	GUID        string `json:"guid"`
	Hostname    string `json:"hostname"`
	Deactivated *bool  `json:"deactivated,omitempty"`
	Relay       *bool  `json:"relay,omitempty"`
	RelayGroup  string `json:"relay_group,omitempty"`
	Changed     bool   `json:"changed"`
	*releaseReport
}

// changeComputer is the shared work of the actions that change one computer: find it; plan fills in
// the result, sets Changed and says what to print; apply makes the change; then the release.
func changeComputer(name string, plan func(c store.Computer, res *computerChange) (done, unchanged string),
	apply func(ctx context.Context, db *store.DB, c store.Computer) error) work {
	return func(ctx context.Context, s *session) error {
		c, err := findComputer(ctx, s.db, name)
		if err != nil {
			return err
		}
		res := computerChange{GUID: c.GUID, Hostname: c.Hostname}
		done, unchanged := plan(c, &res)
		msg := unchanged
		if res.Changed {
			msg = done
			before, err := sentPolicies(ctx, s.db)
			if err != nil {
				return err
			}
			if err := apply(ctx, s.db, c); err != nil {
				return err
			}
			if res.releaseReport, err = releaseSince(ctx, s.db, before); err != nil {
				return fmt.Errorf("%s: %s, but releasing the policies failed: %w; run dsm_c -action sendpolicy", who(c), done, err)
			}
		}
		if s.json {
			return writeJSON(s, res)
		}
		if _, err := fmt.Fprintf(s.stdout, "%s: %s\n", who(c), msg); err != nil {
			return err
		}
		return printReport(s, res.releaseReport)
	}
}

// who names a computer in output.
func who(c store.Computer) string { return fmt.Sprintf("%s (%s)", cell(c.Hostname), c.GUID) }

func prepareSetDeactivated(off bool) func(o *options) (work, error) {
	action := map[bool]string{true: "deactivate", false: "reactivate"}[off]
	return func(o *options) (work, error) {
		name, err := needComputer(action, o)
		if err != nil {
			return nil, err
		}
		return changeComputer(name, func(c store.Computer, res *computerChange) (string, string) {
			res.Deactivated, res.Changed = &off, c.Deactivated != off
			if off {
				return "deactivated: the Manager refuses its heartbeats and sends it no policy (dsm_c -action reactivate undoes it)",
					"already deactivated (unchanged)"
			}
			return "reactivated: the Manager accepts it again", "not deactivated (unchanged)"
		}, func(ctx context.Context, db *store.DB, c store.Computer) error {
			return db.SetDeactivated(ctx, c.GUID, off)
		}), nil
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
	return changeComputer(name, func(c store.Computer, res *computerChange) (string, string) {
		res.Relay, res.Changed = &on, c.Relay != on
		if on {
			return fmt.Sprintf("relay role on (relay group %q)", c.RelayGroup), "already a relay (unchanged)"
		}
		return "relay role off", "not a relay (unchanged)"
	}, func(ctx context.Context, db *store.DB, c store.Computer) error {
		return db.SetRelay(ctx, c.GUID, on)
	}), nil
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
	inner := changeComputer(name, func(c store.Computer, res *computerChange) (string, string) {
		res.RelayGroup, res.Changed = group, c.RelayGroup != group
		return fmt.Sprintf("relay group %q -> %q", c.RelayGroup, group), fmt.Sprintf("already in relay group %q (unchanged)", group)
	}, func(ctx context.Context, db *store.DB, c store.Computer) error {
		return db.AssignRelayGroup(ctx, c.GUID, group)
	})
	return func(ctx context.Context, s *session) error {
		if err := findGroup(ctx, s.db, "-value", group); err != nil {
			return err
		}
		return inner(ctx, s)
	}, nil
}

// --- createrelaygroup, listrelaygroups ---

func prepareCreateRelayGroup(o *options) (work, error) {
	group := strings.TrimSpace(o.name.val)
	if err := checkLabel("-name", "a relay group name", group, maxLabel); err != nil {
		if group == "" {
			return nil, bad("-action createrelaygroup needs -name G, the new group's name (printable characters, up to %d)", maxLabel)
		}
		return nil, err
	}
	return func(ctx context.Context, s *session) error {
		groups, err := s.db.RelayGroups(ctx)
		if err != nil {
			return err
		}
		exists := func() error {
			return bad("-name %q: a relay group of that name exists already; the groups are: %s", group, quoteList(groups))
		}
		for _, g := range groups {
			if strings.EqualFold(g, group) {
				if g != group {
					return bad("-name %q: relay group %q exists already, and names that differ only in case would be confused; the groups are: %s",
						group, g, quoteList(groups))
				}
				return exists()
			}
		}
		created, err := s.db.CreateRelayGroup(ctx, group)
		if err != nil {
			return err
		}
		if !created { // created by someone else meanwhile
			if groups, err = s.db.RelayGroups(ctx); err != nil {
				return err
			}
			return exists()
		}
		if s.json {
			return writeJSON(s, map[string]any{"name": group, "created": true})
		}
		_, err = fmt.Fprintf(s.stdout, "Relay group %q created. Put computers in it with: dsm_c -action assignrelaygroup -name C -value %q\n", group, group)
		return err
	}, nil
}

// groupView is one listrelaygroups JSON object.
type groupView struct {
	Name      string   `json:"name"`
	Relays    []string `json:"relays"`    // host names of its relays (not deactivated)
	Computers int      `json:"computers"` // computers in it (not deactivated), relays included
}

func prepareListRelayGroups(o *options) (work, error) {
	return func(ctx context.Context, s *session) error {
		groups, err := s.db.RelayGroups(ctx)
		if err != nil {
			return err
		}
		cs, err := s.db.Computers(ctx)
		if err != nil {
			return err
		}
		views := make([]groupView, 0, len(groups))
		byName := map[string]*groupView{}
		for _, g := range groups {
			views = append(views, groupView{Name: g, Relays: []string{}})
		}
		for i := range views {
			byName[views[i].Name] = &views[i]
		}
		for _, c := range cs {
			v := byName[c.RelayGroup]
			if v == nil || c.Deactivated {
				continue
			}
			v.Computers++
			if c.Relay {
				v.Relays = append(v.Relays, c.Hostname)
			}
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

// sendResult is sendpolicy's JSON output.
type sendResult struct {
	Released []policyEntry `json:"released"` // got a new policy
	Current  []policyEntry `json:"current"`  // already had the current one
}

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
	return func(ctx context.Context, s *session) error {
		var t fleet.Target
		var what string
		switch {
		case name != "":
			c, err := findComputer(ctx, s.db, name)
			if err != nil {
				return err
			}
			if c.Deactivated {
				return bad("-name %q: %s is deactivated and gets no policy; reactivate it first (dsm_c -action reactivate -name %s)", name, who(c), c.GUID)
			}
			t.GUIDs, what = []string{c.GUID}, who(c)
		case group != "":
			if err := findGroup(ctx, s.db, "-relaygroup", group); err != nil {
				return err
			}
			t.RelayGroup, what = group, fmt.Sprintf("relay group %q", group)
		default:
			t.AllRelays, what = true, "the fleet"
		}
		snap, err := fleet.Load(ctx, s.db)
		if err != nil {
			return err
		}
		released, err := fleet.Release(ctx, s.db, snap, t)
		if err != nil {
			return err
		}
		res := sendResult{Released: []policyEntry{}, Current: []policyEntry{}}
		hosts := countHosts(snap.Computers)
		for _, c := range snap.Computers {
			if c.Deactivated || !t.Selects(c) {
				continue
			}
			if p, ok := released[c.GUID]; ok {
				e := newEntry(c, p.Fingerprint(), hosts)
				e.Serial = p.Serial
				res.Released = append(res.Released, e)
			} else {
				res.Current = append(res.Current, newEntry(c, c.PolicySent, hosts))
			}
		}
		if s.json {
			return writeJSON(s, res)
		}
		w := s.stdout
		if len(res.Released)+len(res.Current) == 0 {
			_, err := fmt.Fprintf(w, "No relays in %s: no policy to send (dsm_c -action setrelay -name C -value true makes a relay).\n", what)
			return err
		}
		for _, e := range res.Released {
			fmt.Fprintf(w, "%s (%s): released policy %s (serial %d)\n", cell(e.Hostname), e.GUID, e.Fingerprint, e.Serial)
		}
		for _, e := range res.Current {
			fmt.Fprintf(w, "%s (%s): already current (policy %s)\n", cell(e.Hostname), e.GUID, e.Fingerprint)
		}
		if len(res.Released) > 0 {
			_, err = fmt.Fprintln(w, "A running Manager pushes the released policies now; a computer that is offline gets its policy at its next heartbeat.")
		}
		return err
	}, nil
}

// --- publishbundle ---

const maxBundleSize = 256 << 20

// bundleResult is publishbundle's JSON output.
type bundleResult struct {
	Name    string `json:"name"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	Path    string `json:"path"`
	Changed bool   `json:"changed"`
	*releaseReport
}

func preparePublishBundle(o *options) (work, error) {
	name := strings.TrimSpace(o.name.val)
	if name == "" {
		return nil, bad("-action publishbundle needs -name NAME, the bundle's name (printable characters, up to %d), and -value FILE", maxBundleName)
	}
	if err := checkLabel("-name", "a bundle name", name, maxBundleName); err != nil {
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
	case fi.Size() > maxBundleSize:
		return nil, bad("-value %q is %d bytes; a bundle has at most 256 MiB (%d bytes)", path, fi.Size(), maxBundleSize)
	}
	return func(ctx context.Context, s *session) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(f, maxBundleSize+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if len(data) == 0 || len(data) > maxBundleSize {
			return bad("-value %q changed while being read and now has %d bytes; a bundle has 1 byte to 256 MiB", path, len(data))
		}
		sum := sha256.Sum256(data)
		b := store.Bundle{SHA256: hex.EncodeToString(sum[:]), Name: name, Size: int64(len(data))}
		dir := filepath.Join(s.folder.Dir, "bundles")
		res := bundleResult{Name: b.Name, SHA256: b.SHA256, Size: b.Size, Path: filepath.Join(dir, b.SHA256)}
		published, err := s.db.Bundles(ctx)
		if err != nil {
			return err
		}
		res.Changed = true
		for _, p := range published {
			if p.SHA256 == b.SHA256 && p.Name == b.Name {
				res.Changed = false
			}
		}
		// The bytes first: a bundle the policies name must be there for the relays to fetch.
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		if err := pki.WriteFile(res.Path, data, 0o644); err != nil {
			return fmt.Errorf("write the bundle: %w", err)
		}
		if err := os.Chmod(res.Path, 0o644); err != nil {
			return err
		}
		if res.Changed {
			before, err := sentPolicies(ctx, s.db)
			if err != nil {
				return err
			}
			if err := s.db.AddBundle(ctx, b); err != nil {
				return err
			}
			if res.releaseReport, err = releaseSince(ctx, s.db, before); err != nil {
				return fmt.Errorf("bundle %q published, but releasing the policies failed: %w; run dsm_c -action sendpolicy", name, err)
			}
		}
		if s.json {
			return writeJSON(s, res)
		}
		state := "published"
		if !res.Changed {
			state = "already published (unchanged)"
		}
		if _, err := fmt.Fprintf(s.stdout, "Bundle %q %s:\n  sha256 %s\n  size   %d bytes\n  file   %s\n", name, state, b.SHA256, b.Size, res.Path); err != nil {
			return err
		}
		return printReport(s, res.releaseReport)
	}, nil
}
