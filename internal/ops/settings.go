package ops

import (
	"context"
	"fmt"
	"strings"

	"tlsfleet/internal/settings"
)

// AllowedText says which values a setting takes.
func AllowedText(st settings.Setting) string {
	if st.Kind == settings.Int {
		return fmt.Sprintf("%d-%d %s", st.Min, st.Max, st.Unit)
	}
	return strings.Join(st.Allowed, ", ")
}

// lookupSetting finds a setting by name; an unknown name is a NotFound error on field.
func lookupSetting(field, name string) (settings.Setting, error) {
	st, ok := settings.Lookup(strings.TrimSpace(name))
	if !ok {
		return st, notFound(field, "{field}: %v", settings.UnknownNameError(strings.TrimSpace(name)))
	}
	return st, nil
}

// CheckSetting validates a change without the database: the setting exists and the value is allowed. It
// returns the value as it would be stored (canonical spelling).
func CheckSetting(name, value string) (settings.Setting, string, error) {
	st, err := lookupSetting("name", name)
	if err != nil {
		return st, "", err
	}
	if strings.TrimSpace(value) == "" {
		return st, "", invalid("value", "{field} is empty: %s needs a value; allowed: %s", st.Name, AllowedText(st))
	}
	v, err := settings.Validate(st.Name, value)
	if err != nil {
		return st, "", invalid("value", "{field}: %v", err)
	}
	return st, v, nil
}

// SettingChange is what ChangeSetting did.
type SettingChange struct {
	Name    string `json:"name"`
	Old     string `json:"old"`
	New     string `json:"new"`
	Changed bool   `json:"changed"`
	// Applies says where the setting takes effect (settings.Setting.Applies).
	Applies string `json:"applies,omitempty"`
	// ManagerPorts says what the change does to the Manager's own ports (nil when it is not part of
	// their TLS policy).
	ManagerPorts []PortImpact `json:"manager_ports,omitempty"`
	*ReleaseReport
}

// ChangeSetting validates and stores a setting (with an event naming the actor), then releases the
// policies the change alters when automaticallySendPolicy is true. Setting a value that is already in
// force changes nothing; in particular the default of a setting never stored stays unstored.
func (o *Ops) ChangeSetting(ctx context.Context, actor, name, value string) (SettingChange, error) {
	st, v, err := CheckSetting(name, value)
	if err != nil {
		return SettingChange{}, err
	}
	res := SettingChange{Name: st.Name, New: v, Applies: st.Applies}
	if err := o.writable(); err != nil {
		return res, err
	}
	current, err := o.store.Settings(ctx)
	if err != nil {
		return res, err
	}
	if _, stored := current[st.Name]; !stored && v == st.Default {
		res.Old = st.Default
		return res, nil
	}
	if res.ManagerPorts, err = o.portImpact(ctx, st.Name, v, current); err != nil {
		return SettingChange{}, err
	}
	before, err := o.sentPolicies(ctx)
	if err != nil {
		return res, err
	}
	old, changed, err := o.store.SetSetting(ctx, st.Name, v, actor)
	if err != nil {
		return res, err
	}
	if old == "" {
		old = st.Default
	}
	res.Old, res.Changed = old, changed
	if !changed {
		return res, nil
	}
	o.hooks.SettingsChanged(ctx)
	// A setting that is part of the policies (relay minimum, ciphers, heartbeat, direction) changes
	// them: they go out now when automaticallySendPolicy is true.
	if res.ReleaseReport, err = o.releaseSince(ctx, before); err != nil {
		return res, fmt.Errorf("%s changed to %s, but releasing the policies failed: %w; send them with dsm_c -action sendpolicy", st.Name, v, err)
	}
	return res, nil
}

// SettingView is one setting as the front-ends show it. Allowed lists the values of enum and bool
// settings; an int setting has Min, Max and Unit instead.
type SettingView struct {
	Name        string        `json:"name"`
	Value       string        `json:"value"`
	Default     string        `json:"default"`
	Type        settings.Kind `json:"type"`
	Allowed     []string      `json:"allowed,omitempty"`
	Min         *int          `json:"min,omitempty"`
	Max         *int          `json:"max,omitempty"`
	Unit        string        `json:"unit,omitempty"`
	Description string        `json:"description"`
	IsDefault   bool          `json:"is_default"` // the value equals the default
	Stored      bool          `json:"stored"`     // a value is stored (false: the default applies)
}

// ViewSettings shows one setting (name) or all (name "").
func (o *Ops) ViewSettings(ctx context.Context, name string) ([]SettingView, error) {
	list := settings.Registry
	if name != "" {
		st, err := lookupSetting("name", name)
		if err != nil {
			return nil, err
		}
		list = []settings.Setting{st}
	}
	current, err := o.store.Settings(ctx)
	if err != nil {
		return nil, err
	}
	views := make([]SettingView, 0, len(list))
	for _, st := range list {
		v, stored := current[st.Name]
		if !stored {
			v = st.Default
		}
		sv := SettingView{Name: st.Name, Value: v, Default: st.Default, Type: st.Kind, Allowed: st.Allowed,
			Unit: st.Unit, Description: st.Description, IsDefault: v == st.Default, Stored: stored}
		if st.Kind == settings.Int {
			sv.Min, sv.Max = &st.Min, &st.Max
		}
		views = append(views, sv)
	}
	return views, nil
}
