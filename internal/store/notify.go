package store

import "context"

// Notifier tells a Manager that another process or node may have changed the database, so that it reads
// the change counters (settings, fleet, CRL) at once instead of at its next poll. Polling stays the
// ground truth: a notification only brings the next read forward, and a lost one costs at most one
// poll interval.
//
// On SQLite there is no notification between processes: Poll, the default, sends none and the Manager
// polls the counters every PollInterval (500 ms), which keeps a change made by dsm_c or another node
// within the 2 s the Manager promises. A PostgreSQL store can implement Notifier with LISTEN/NOTIFY:
// each transaction that bumps change_counter also runs NOTIFY tlsfleet_changes (delivered at commit,
// to every node's LISTEN connection), so that nodes apply a change within milliseconds of its commit,
// and the poll interval could grow to seconds without losing the bound.
type Notifier interface {
	// Changes returns a channel that receives when the database may have changed; a nil channel (no
	// notifications) is allowed. It stays valid until ctx ends.
	Changes(ctx context.Context) <-chan struct{}
}

// Poll is the Notifier of a database without notifications: it sends none.
type Poll struct{}

// Changes returns nil: the Manager polls.
func (Poll) Changes(context.Context) <-chan struct{} { return nil }
