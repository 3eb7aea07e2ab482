package ops

import (
	"context"
	"fmt"
	"strings"
)

// findGroup checks that a relay group exists; an unknown one is a NotFound error that lists the groups.
func (o *Ops) findGroup(ctx context.Context, field, group string) error {
	groups, err := o.store.RelayGroups(ctx)
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
	return notFound(field, "{field} %q is not a relay group%s; the groups are: %s (dsm_c -action createrelaygroup -name G creates one)",
		group, hint, quoteList(groups))
}

// CheckGroupName validates a new relay group's name without the database.
func CheckGroupName(name string) error {
	return checkLabel("name", "a relay group name", strings.TrimSpace(name), MaxLabel)
}

// GroupCreated is what CreateRelayGroup did.
type GroupCreated struct {
	Name    string `json:"name"`
	Created bool   `json:"created"`
}

// CreateRelayGroup adds a relay group. A name that exists, also in another case, is a Conflict.
func (o *Ops) CreateRelayGroup(ctx context.Context, name string) (GroupCreated, error) {
	group := strings.TrimSpace(name)
	if err := CheckGroupName(group); err != nil {
		return GroupCreated{}, err
	}
	if err := o.writable(); err != nil {
		return GroupCreated{}, err
	}
	groups, err := o.store.RelayGroups(ctx)
	if err != nil {
		return GroupCreated{}, err
	}
	exists := func() error {
		return conflict("name", "{field} %q: a relay group of that name exists already; the groups are: %s", group, quoteList(groups))
	}
	for _, g := range groups {
		if strings.EqualFold(g, group) {
			if g != group {
				return GroupCreated{}, conflict("name", "{field} %q: relay group %q exists already, and names that differ only in case would be confused; the groups are: %s",
					group, g, quoteList(groups))
			}
			return GroupCreated{}, exists()
		}
	}
	created, err := o.store.CreateRelayGroup(ctx, group)
	if err != nil {
		return GroupCreated{}, err
	}
	if !created { // created by someone else meanwhile
		if groups, err = o.store.RelayGroups(ctx); err != nil {
			return GroupCreated{}, err
		}
		return GroupCreated{}, exists()
	}
	return GroupCreated{Name: group, Created: true}, nil
}

// GroupView is a relay group with its members.
type GroupView struct {
	Name      string   `json:"name"`
	Relays    []string `json:"relays"`    // host names of its relays (not deactivated)
	Computers int      `json:"computers"` // computers in it (not deactivated), relays included
}

// ListRelayGroups lists the relay groups with their relays and computer counts.
func (o *Ops) ListRelayGroups(ctx context.Context) ([]GroupView, error) {
	groups, err := o.store.RelayGroups(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := o.store.Computers(ctx)
	if err != nil {
		return nil, err
	}
	views := make([]GroupView, 0, len(groups))
	for _, g := range groups {
		views = append(views, GroupView{Name: g, Relays: []string{}})
	}
	byName := make(map[string]*GroupView, len(views))
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
	return views, nil
}
