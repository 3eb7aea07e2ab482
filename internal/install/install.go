// Package install knows the Manager's install folder: which files it holds, what the first start writes
// there, and where the database is. The Manager and dsm_c both find everything through it.
package install

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"tlsfleet/internal/listener"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/tlspolicy"
)

// File names in the install folder.
const (
	ConfigFile       = tlspolicy.ConfigFile       // configuration.properties
	JavaSecurityFile = tlspolicy.JavaSecurityFile // java.security
	DefaultDBFile    = "tlsfleet.db"
	PasswordFile     = "admin-initial-password.txt"
)

// Keys of configuration.properties the Manager reads besides protocols= and ciphers=.
const (
	KeyConsolePort   = "port"
	KeyHeartbeatPort = "managerPort"
	KeyDatabaseType  = "database.type"
	KeyDatabaseName  = "database.name"
	// KeyMaxConnections and KeyMaxConnectionsPerAddress bound the connections each of the Manager's ports
	// holds open, in all and from one client address (listener.Limits); unset, each port keeps its own
	// default (listener.DefaultLimits). The flags --max-conns and --max-conns-per-address override them.
	KeyMaxConnections           = "maxConnections"
	KeyMaxConnectionsPerAddress = "maxConnectionsPerAddress"
	// KeyPublicName is the name (or address) agents are told to reach the agent channel at, when the
	// Manager listens on every address (the activation command's dsm://NAME:PORT/); unset, the host name.
	KeyPublicName = "manager.publicName"
	// KeyNodeName names this Manager among the nodes sharing one database (dsm_c -action
	// listmanagernodes); unset, the host name and the agent port, e.g. manager1:4120.
	KeyNodeName = "manager.nodeName"
)

// Folder is an install folder.
type Folder struct {
	Dir           string
	ConsolePort   int
	HeartbeatPort int
	// DBPath is the SQLite file; "" on PostgreSQL.
	DBPath     string
	Database   Database
	PublicName string // manager.publicName, "" when unset
	NodeName   string // manager.nodeName, else HOST:AGENTPORT
}

// Path returns the path of a file in the folder.
func (f *Folder) Path(name string) string { return filepath.Join(f.Dir, name) }

func defaultConfig(consolePort, heartbeatPort int) string {
	console, agents := listener.DefaultLimits(tlspolicy.RoleConsole), listener.DefaultLimits(tlspolicy.RoleAgentChannel)
	return fmt.Sprintf(`# configuration.properties — this tlsfleet Manager's local settings.
# Ports of the console/REST API and of the agent channel:
%s=%d
%s=%d
# The database: an SQLite file in this folder. For PostgreSQL (README, "PostgreSQL"), e.g.:
#   database.type=postgres
#   database.host=db.example.com
#   database.name=tlsfleet
#   database.user=tlsfleet
#   database.passwordFile=db-password
#   database.sslmode=verify-full
#   database.sslrootcert=db-ca.pem
%s=sqlite
%s=%s
# The name activation commands tell agents to reach this Manager at when it listens on every address
# (default: the host name), e.g.:
#   manager.publicName=manager.example.com
# This node's name among the Manager nodes sharing one database (default: the host name and the agent
# port), e.g.:
#   manager.nodeName=manager1
# The page's "GUI port only" procedure adds, for port %d alone:
#   protocols=TLSv1.2,TLSv1.3
#   ciphers=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
# Connections each port holds open at once, in all and from one client address (many agents may share
# one NAT address), read at start; --max-conns and --max-conns-per-address override them. Unset, port %d
# holds %d (%d from one address) and port %d holds %d (%d from one address). Each value is 1 to %d; set
# both ports' limits with, for example:
#   %s=%d
#   %s=%d
`, KeyConsolePort, consolePort, KeyHeartbeatPort, heartbeatPort, KeyDatabaseType, KeyDatabaseName, DefaultDBFile, consolePort,
		consolePort, console.Total, console.PerAddress, heartbeatPort, agents.Total, agents.PerAddress, listener.MaxLimit,
		KeyMaxConnections, agents.Total, KeyMaxConnectionsPerAddress, agents.PerAddress)
}

// ConnLimits reads the connection limits configuration.properties sets (an Override's Value is 0 when
// its key is absent). A value that is not a whole number from 1 to listener.MaxLimit is an error naming
// the file, line and key.
func ConnLimits(cp *tlspolicy.ConfigProperties) (total, perAddress listener.Override, err error) {
	read := func(key string) (listener.Override, error) {
		pr, ok := cp.Props.Get(key)
		if !ok {
			return listener.Override{Name: key}, nil
		}
		at := fmt.Sprintf("%s:%d", pr.File, pr.Line)
		n, err := listener.ParseLimit(key, pr.Value)
		if err != nil {
			return listener.Override{}, fmt.Errorf("%s: %w", at, err)
		}
		return listener.Override{Value: n, Name: key, At: at}, nil
	}
	if total, err = read(KeyMaxConnections); err != nil {
		return total, perAddress, err
	}
	perAddress, err = read(KeyMaxConnectionsPerAddress)
	return total, perAddress, err
}

// Init prepares dir for a Manager: InitFiles, then the fleet CA (created when missing).
func Init(dir string, consolePort, heartbeatPort int) (created bool, err error) {
	if created, err = InitFiles(dir, consolePort, heartbeatPort); err != nil {
		return created, err
	}
	_, err = pki.LoadOrCreateCA(dir)
	return created, err
}

// InitFiles writes configuration.properties and java.security into dir on first start (either is kept
// when present); it does not touch the fleet CA, which the Manager creates only after CheckFleet. It
// reports whether configuration.properties was new, which marks a first start.
func InitFiles(dir string, consolePort, heartbeatPort int) (created bool, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, err
	}
	cfg := filepath.Join(dir, ConfigFile)
	if _, err := os.Stat(cfg); errors.Is(err, fs.ErrNotExist) {
		if err := pki.WriteFile(cfg, []byte(defaultConfig(consolePort, heartbeatPort)), 0o640); err != nil {
			return false, err
		}
		created = true
	} else if err != nil {
		return false, err
	}
	js := filepath.Join(dir, JavaSecurityFile)
	if _, err := os.Stat(js); errors.Is(err, fs.ErrNotExist) {
		if err := pki.WriteFile(js, []byte(tlspolicy.DefaultJavaSecurityContent), 0o640); err != nil {
			return false, err
		}
	}
	return created, nil
}

// Open reads an install folder's configuration.properties.
func Open(dir string) (*Folder, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cp, err := tlspolicy.LoadConfigProperties(filepath.Join(abs, ConfigFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a Manager install folder (no %s); start the Manager there once with `tlsfleet manager --dir %s`", dir, ConfigFile, dir)
		}
		return nil, err
	}
	f := &Folder{Dir: abs, ConsolePort: tlspolicy.PortConsole, HeartbeatPort: tlspolicy.PortAgentChannel}
	port := func(key string, dst *int) error {
		pr, ok := cp.Props.Get(key)
		if !ok {
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(pr.Value))
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s:%d: %s=%s is not a port number (1-65535)", pr.File, pr.Line, key, pr.Value)
		}
		*dst = n
		return nil
	}
	if err := port(KeyConsolePort, &f.ConsolePort); err != nil {
		return nil, err
	}
	if err := port(KeyHeartbeatPort, &f.HeartbeatPort); err != nil {
		return nil, err
	}
	if pr, ok := cp.Props.Get(KeyPublicName); ok {
		name := strings.TrimSpace(pr.Value)
		if !validHostName(name) {
			return nil, fmt.Errorf("%s:%d: %s=%s is not a host name or an IP address; write the name agents reach this Manager at, e.g. %s=manager.example.com, or remove the line to use the host name",
				pr.File, pr.Line, KeyPublicName, pr.Value, KeyPublicName)
		}
		f.PublicName = name
	}
	if err := f.readNodeName(cp.Props); err != nil {
		return nil, err
	}
	if f.Database, err = readDatabase(cp, abs); err != nil {
		return nil, err
	}
	f.DBPath = f.Database.Path
	return f, nil
}

// Find resolves the install folder for dsm_c: the flag if given, else $TLSFLEET_DIR, else the folder of
// the running binary when it holds configuration.properties.
func Find(flagDir string) (string, error) {
	if flagDir != "" {
		return flagDir, nil
	}
	if d := os.Getenv("TLSFLEET_DIR"); d != "" {
		return d, nil
	}
	if exe, err := os.Executable(); err == nil {
		d := filepath.Dir(exe)
		if _, err := os.Stat(filepath.Join(d, ConfigFile)); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no install folder: pass --dir DIR, set TLSFLEET_DIR, or run dsm_c from the Manager's install folder")
}

// validHostName accepts an IP address or a DNS name of letters, digits, hyphens and dots.
// readNodeName sets NodeName from manager.nodeName, else from the host name and the agent port.
func (f *Folder) readNodeName(props *tlspolicy.Properties) error {
	pr, ok := props.Get(KeyNodeName)
	if !ok {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		f.NodeName = net.JoinHostPort(host, strconv.Itoa(f.HeartbeatPort))
		return nil
	}
	name := strings.TrimSpace(pr.Value)
	if !validNodeName(name) {
		return fmt.Errorf("%s:%d: %s=%s is not a node name: use 1 to 128 letters, digits and . _ : -, e.g. %s=manager1, or remove the line to use the host name and the agent port",
			pr.File, pr.Line, KeyNodeName, pr.Value, KeyNodeName)
	}
	f.NodeName = name
	return nil
}

func validNodeName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)) {
			return false
		}
	}
	return true
}

func validHostName(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-") || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
