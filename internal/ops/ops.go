// Package ops is the Manager's operations layer: every action an operator can take (change a setting,
// issue an activation token, create an API key, deactivate a computer, make a relay, send policy,
// publish a bundle, report TLS clients, ...) is one function here, over small store interfaces this
// package owns. dsm_c, the REST API and the console only parse their input and render what these
// functions return, so the same action gives the same result and the same stored state whichever way it
// comes in.
package ops

import (
	"context"
	"sync"
	"time"

	"tlsfleet/internal/fleet"
	"tlsfleet/internal/install"
	"tlsfleet/internal/store"
)

// SettingsStore keeps the fleet-wide settings and their change events.
type SettingsStore interface {
	Settings(ctx context.Context) (map[string]string, error)
	SetSetting(ctx context.Context, name, value, actor string) (old string, changed bool, err error)
}

// KeyStore keeps API keys by the hash of their secret.
type KeyStore interface {
	AddAPIKey(ctx context.Context, k store.APIKey, secretHash string) error
	APIKeyNameTaken(ctx context.Context, name string) (bool, error)
	APIKeyByPrefix(ctx context.Context, prefix string) (k store.APIKey, hash string, err error)
	APIKeys(ctx context.Context) ([]store.APIKey, error)
	RevokeAPIKey(ctx context.Context, name, at string) (bool, error)
	TouchAPIKey(ctx context.Context, prefix, at string) error
}

// TokenStore keeps activation tokens by their hash.
type TokenStore interface {
	InsertActivationToken(ctx context.Context, tokenHash string, t store.ActivationToken) error
}

// ComputerStore keeps the inventory of activated computers.
type ComputerStore interface {
	Computers(ctx context.Context) ([]store.Computer, error)
	SetDeactivated(ctx context.Context, guid string, off bool) error
	SetRelay(ctx context.Context, guid string, on bool) error
	AssignRelayGroup(ctx context.Context, guid, group string) error
}

// GroupStore keeps the relay groups.
type GroupStore interface {
	CreateRelayGroup(ctx context.Context, name string) (bool, error)
	RelayGroups(ctx context.Context) ([]string, error)
}

// BundleStore keeps the published update bundles (their bytes live in the install folder).
type BundleStore interface {
	AddBundle(ctx context.Context, b store.Bundle) error
	Bundles(ctx context.Context) ([]store.Bundle, error)
}

// TelemetryStore reads the recorded handshake counts.
type TelemetryStore interface {
	Observations(ctx context.Context, since string, port int) ([]store.Observation, error)
}

// NodeStore reads the Manager nodes registered in the database.
type NodeStore interface {
	ManagerNodes(ctx context.Context) ([]store.ManagerNode, error)
}

// Store is everything the operations need.
type Store interface {
	NodeStore
	SettingsStore
	KeyStore
	TokenStore
	ComputerStore
	GroupStore
	BundleStore
	TelemetryStore
	fleet.Releaser
}

// Hooks let a running Manager take part in an operation; dsm_c, which works on the database alone, has
// none (a running Manager then notices the change by polling the database within two seconds).
type Hooks interface {
	// Flush writes what the Manager holds in memory (heartbeats, handshake counts) before a report reads
	// the database.
	Flush(ctx context.Context)
	// SettingsChanged applies changed settings to the Manager's listeners now.
	SettingsChanged(ctx context.Context)
	// FleetChanged pushes released policies now.
	FleetChanged(ctx context.Context)
	// CertsChanged signs the fleet's revocation list anew and pushes it to the relays now (whatever
	// automaticallySendPolicy says: revocation is not a policy choice).
	CertsChanged(ctx context.Context)
	// ManagerCertChanged puts the Manager certificate in the install folder in force now; an error says
	// why the running Manager did not (the caller then puts the previous certificate back).
	ManagerCertChanged(ctx context.Context) error
	// Writable says why the Manager must not take changes now (its install folder or database was
	// removed or replaced under it), or nil. Every operation that changes something asks it first.
	Writable() error
}

type noHooks struct{}

func (noHooks) Flush(context.Context)                    {}
func (noHooks) SettingsChanged(context.Context)          {}
func (noHooks) FleetChanged(context.Context)             {}
func (noHooks) CertsChanged(context.Context)             {}
func (noHooks) ManagerCertChanged(context.Context) error { return nil }
func (noHooks) Writable() error                          { return nil }

// writable refuses a change the Manager could not keep.
func (o *Ops) writable() error {
	if err := o.hooks.Writable(); err != nil {
		return &UnavailableError{Why: err.Error()}
	}
	return nil
}

// Ops runs the operations on one Manager install.
type Ops struct {
	store  Store
	folder *install.Folder
	hooks  Hooks
	now    func() time.Time
	// rotateMu serialises certificate rotations of this process.
	rotateMu sync.Mutex
}

// New returns the operations over a store and the install folder (the fleet CA certificate, the bundles,
// the ports). hooks may be nil.
func New(st Store, folder *install.Folder, hooks Hooks) *Ops {
	if hooks == nil {
		hooks = noHooks{}
	}
	return &Ops{store: st, folder: folder, hooks: hooks, now: time.Now}
}

// Folder is the install folder the operations work on.
func (o *Ops) Folder() *install.Folder { return o.folder }
