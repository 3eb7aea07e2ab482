package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// manager.publicName takes a host name or an IP address; anything else is an error naming the file,
// the line and the fix.
func TestPublicName(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    string
		wantErr string
	}{
		{name: "host name", value: "manager.example.com", want: "manager.example.com"},
		{name: "IPv4", value: "10.0.0.5", want: "10.0.0.5"},
		{name: "IPv6", value: "fd00::5", want: "fd00::5"},
		{name: "URL", value: "dsm://manager:4120/", wantErr: "is not a host name or an IP address"},
		{name: "with a port", value: "manager:4120", wantErr: "manager.publicName=manager:4120"},
		{name: "space", value: "my manager", wantErr: "remove the line to use the host name"},
		{name: "empty", value: "", wantErr: "is not a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			folder, err := openWith(t, KeyPublicName+"="+tt.value)
			if !wantOpenErr(t, err, tt.wantErr) {
				return
			}
			if err != nil || folder.PublicName != tt.want {
				t.Fatalf("PublicName %q, %v; want %q", folder.PublicName, err, tt.want)
			}
		})
	}
}

// Check refuses every start that would make a new CA or database over a folder that had agents, and
// --new-fleet allows it.
func TestFleetStateCheck(t *testing.T) {
	const fp, other = "AA:BB", "CC:DD"
	tests := []struct {
		name    string
		st      FleetState
		wantErr string // "" allowed
	}{
		{name: "first start", st: FleetState{}},
		{name: "a fleet without agents", st: FleetState{CAFingerprint: fp, DBPresent: true}},
		{name: "a fleet with agents", st: FleetState{CAFingerprint: fp, DBPresent: true, Computers: 3, Marker: fp}},
		{name: "agents from before the marker", st: FleetState{CAFingerprint: fp, DBPresent: true, Computers: 3}},
		{name: "CA gone, computers in the database", st: FleetState{DBPresent: true, Computers: 3}, wantErr: "holds 3 activated computers"},
		{name: "CA gone, marker", st: FleetState{DBPresent: true, Marker: fp}, wantErr: "records their CA, SHA-256 AA:BB"},
		{name: "database gone, marker", st: FleetState{CAFingerprint: fp, DBPath: "/m/tlsfleet.db", Marker: fp}, wantErr: "the database /m/tlsfleet.db is missing"},
		{name: "everything but the marker gone", st: FleetState{Marker: fp}, wantErr: "fleet CA"},
		{name: "CA replaced", st: FleetState{CAFingerprint: other, DBPresent: true, Marker: fp}, wantErr: "is not the fleet CA its agents pin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.st.Check(false)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), NewFleetFlag)):
				t.Fatalf("error %v, want %q and %s", err, tt.wantErr, NewFleetFlag)
			}
			if err := tt.st.Check(true); err != nil {
				t.Errorf("--new-fleet refused: %v", err)
			}
		})
	}
}

// manager.nodeName names the node; unset, it is the host name and the agent port; a bad value is an
// error naming the file, the line and the fix.
func TestNodeName(t *testing.T) {
	host, _ := os.Hostname()
	tests := []struct {
		name    string
		line    string // "" writes no line
		want    string
		wantErr string
	}{
		{name: "default", want: host + ":4120"},
		{name: "set", line: KeyNodeName + "=manager-1.dc2", want: "manager-1.dc2"},
		{name: "with a port", line: KeyNodeName + "=m1:4120", want: "m1:4120"},
		{name: "space", line: KeyNodeName + "=my node", wantErr: "manager.nodeName=my node is not a node name"},
		{name: "empty", line: KeyNodeName + "=", wantErr: "remove the line to use the host name and the agent port"},
		{name: "too long", line: KeyNodeName + "=" + strings.Repeat("n", 129), wantErr: "1 to 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			if tt.line != "" {
				lines = append(lines, tt.line)
			}
			folder, err := openWith(t, lines...)
			if !wantOpenErr(t, err, tt.wantErr) {
				return
			}
			if err != nil || folder.NodeName != tt.want {
				t.Fatalf("NodeName %q, %v; want %q", folder.NodeName, err, tt.want)
			}
		})
	}
}

// openWith opens a new install folder whose configuration.properties ends with lines.
func openWith(t *testing.T, lines ...string) (*Folder, error) {
	t.Helper()
	dir := t.TempDir()
	if _, err := InitFiles(dir, 4119, 4120); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ConfigFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		f.WriteString(l + "\n")
	}
	f.Close()
	return Open(dir)
}

// wantOpenErr checks Open's error against want (an error naming the file and line with want in it, or
// none when want is ""); it reports whether the test goes on to check the folder.
func wantOpenErr(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		return true
	}
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ConfigFile+":") {
		t.Fatalf("error %v, want %q with the file and line", err, want)
	}
	return false
}
