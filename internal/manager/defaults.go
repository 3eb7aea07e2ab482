package manager

import (
	"time"

	"tlsfleet/internal/tlspolicy"
)

// The Manager's timing and size defaults, in one place. Options and flags override the first group.
const (
	// DefaultPollInterval is how often files and settings are checked for changes.
	DefaultPollInterval = 500 * time.Millisecond
	// DefaultFlushInterval is how often heartbeats and handshake telemetry are written to the database.
	DefaultFlushInterval = time.Second
	// DefaultHandshakeTimeout and DefaultHeaderTimeout bound slow clients.
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultHeaderTimeout    = 10 * time.Second
	// DefaultMaxConns bounds open connections per port.
	DefaultMaxConns = 4096
	// DefaultConsolePort and DefaultAgentPort are the ports of a new install.
	DefaultConsolePort = tlspolicy.PortConsole
	DefaultAgentPort   = tlspolicy.PortAgentChannel
)

const (
	// TelemetryRetention is how long handshake counts are kept.
	TelemetryRetention = 90 * 24 * time.Hour
	// pruneEvery is how often counts older than TelemetryRetention are removed.
	pruneEvery = time.Hour

	// pushWorkers bounds the pushes and polls to agents' port 4118 in flight at once; pushQueue bounds
	// the jobs waiting (a job that finds it full waits for the next sync, a second later).
	pushWorkers = 16
	pushQueue   = 8192
	// agentCallTimeout bounds one call to an agent's port 4118.
	agentCallTimeout = 5 * time.Second
	// agentIdleConn is how long a connection to an agent's port 4118 is kept idle; a computer's
	// connection pool is dropped after agentPoolIdle without a call.
	agentIdleConn = 30 * time.Second
	agentPoolIdle = 2 * time.Minute

	// Activation throttling (throttle.go): after activationMaxFailures refused tokens from one source
	// within activationWindow, it is answered 429 until the window ends; activationThrottleAddresses
	// bounds the sources tracked; activationLogEvery is how often, at most, one source is logged.
	activationMaxFailures       = 5
	activationWindow            = 5 * time.Minute
	activationThrottleAddresses = 10_000
	activationLogEvery          = time.Minute
)
