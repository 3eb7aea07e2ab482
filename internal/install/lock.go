package install

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockFile holds the running Manager's process ID and the addresses its ports listen on; the Manager
// holds an flock on it while it runs, so that one install folder has one Manager. The kernel drops the
// flock when the process dies, so a file left by a crash blocks nobody.
const LockFile = "manager.lock"

// Keys of the lock file.
const (
	lockPID          = "pid"
	lockConsole      = "console"
	lockAgentChannel = "agent_channel"
)

// Lock is a held lock on an install folder.
type Lock struct {
	f *os.File
}

// ErrLocked is wrapped by LockFolder's error when another Manager holds the folder.
var ErrLocked = errors.New("install folder in use")

// LockFolder takes dir's lock for this process (the folder must exist). When another Manager holds it,
// the error names that Manager's PID.
func LockFolder(dir string) (*Lock, error) {
	path := (&Folder{Dir: dir}).Path(LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the install folder: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock the install folder (%s): %w", path, err)
		}
		pid := "unknown"
		if st, err := ReadRunning(dir); err == nil && st.PID != 0 {
			pid = strconv.Itoa(st.PID)
		}
		return nil, fmt.Errorf("%w: %s is used by another Manager (PID %s, which holds %s); stop that Manager first, or give this one its own install folder with --dir",
			ErrLocked, dir, pid, path)
	}
	l := &Lock{f: f}
	if err := l.write(Running{PID: os.Getpid()}); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// Running is what the lock file says about the Manager that holds it.
type Running struct {
	PID int
	// ConsoleAddr and AgentAddr are the addresses the ports listen on ("" until they do).
	ConsoleAddr, AgentAddr string
}

// SetAddrs records the addresses the Manager's ports listen on, for dsm_c (activation commands that name
// an address the Manager really listens on).
func (l *Lock) SetAddrs(console, agents string) error {
	return l.write(Running{PID: os.Getpid(), ConsoleAddr: console, AgentAddr: agents})
}

func (l *Lock) write(r Running) error {
	s := fmt.Sprintf("# the tlsfleet Manager running on this install folder (it holds an flock on this file)\n%s=%d\n", lockPID, r.PID)
	if r.ConsoleAddr != "" {
		s += fmt.Sprintf("%s=%s\n%s=%s\n", lockConsole, r.ConsoleAddr, lockAgentChannel, r.AgentAddr)
	}
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("write %s: %w", l.f.Name(), err)
	}
	if _, err := l.f.WriteAt([]byte(s), 0); err != nil {
		return fmt.Errorf("write %s: %w", l.f.Name(), err)
	}
	return nil
}

// Release empties the lock file and drops the lock. The file stays: removing it would let a Manager
// that opened it just before lock a file nobody else can see.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// ReadRunning reads the lock file of dir: the Manager that runs there, or ran there last if it died
// without releasing it. A missing or empty file is the zero Running.
func ReadRunning(dir string) (Running, error) {
	data, err := os.ReadFile((&Folder{Dir: dir}).Path(LockFile))
	if errors.Is(err, os.ErrNotExist) {
		return Running{}, nil
	}
	if err != nil {
		return Running{}, err
	}
	var r Running
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		switch k {
		case lockPID:
			r.PID, _ = strconv.Atoi(v)
		case lockConsole:
			r.ConsoleAddr = v
		case lockAgentChannel:
			r.AgentAddr = v
		}
	}
	return r, nil
}
