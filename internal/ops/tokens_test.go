package ops

import (
	"os"
	"path/filepath"
	"testing"

	"tlsfleet/internal/install"
)

// The activation command names an address the Manager really listens on: its agent channel's single
// address as the running Manager recorded it; when it listens on every address (or is not running),
// manager.publicName, else the host name.
func TestManagerURL(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		lock       string // manager.lock's content; "" none
		publicName string
		want       string
	}{
		{name: "loopback only", lock: "pid=1\nconsole=127.0.0.1:24119\nagent_channel=127.0.0.1:24120\n", want: "dsm://127.0.0.1:24120/"},
		{name: "loopback only, with a public name", lock: "pid=1\nagent_channel=127.0.0.1:24120\n", publicName: "mgr.example.com", want: "dsm://127.0.0.1:24120/"},
		{name: "IPv6 loopback", lock: "pid=1\nagent_channel=[::1]:4120\n", want: "dsm://[::1]:4120/"},
		{name: "every address, public name", lock: "pid=1\nagent_channel=0.0.0.0:4120\n", publicName: "mgr.example.com", want: "dsm://mgr.example.com:4120/"},
		{name: "every IPv6 address, no public name", lock: "pid=1\nagent_channel=[::]:14120\n", want: "dsm://" + host + ":14120/"},
		{name: "not running, public name", publicName: "10.0.0.5", want: "dsm://10.0.0.5:4120/"},
		{name: "not running", want: "dsm://" + host + ":4120/"},
		{name: "stopped cleanly (empty lock file)", lock: "\n", want: "dsm://" + host + ":4120/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.lock != "" {
				if err := os.WriteFile(filepath.Join(dir, install.LockFile), []byte(tt.lock), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			o := New(nil, &install.Folder{Dir: dir, HeartbeatPort: 4120, PublicName: tt.publicName}, nil)
			if got := o.ManagerURL(); got != tt.want {
				t.Errorf("ManagerURL() = %q, want %q", got, tt.want)
			}
		})
	}
}
