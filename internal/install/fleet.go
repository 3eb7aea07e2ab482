package install

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"tlsfleet/internal/pki"
)

// FleetMarkerFile marks an install folder whose fleet has agents: it holds the fingerprint of the fleet
// CA they pin. With it, a Manager that finds the CA or the database gone knows that making new ones
// would orphan every agent, and refuses to start (CheckFleet).
const FleetMarkerFile = "fleet-ca.sha256"

// NewFleetFlag is the flag that lets a Manager start a new fleet over a folder that had agents.
const NewFleetFlag = "--new-fleet"

// FleetState is what an install folder says about its fleet before the Manager starts.
type FleetState struct {
	Dir, DBPath string
	// CAFingerprint is ca.pem's fingerprint; "" when ca.pem is missing.
	CAFingerprint string
	// DBPresent says whether the database file exists; Computers is how many computers it holds.
	DBPresent bool
	Computers int
	// Marker is the fleet CA fingerprint FleetMarkerFile records; "" when there is none.
	Marker string
}

// ReadFleetState reads ca.pem and FleetMarkerFile (the caller fills in the database's part).
func (f *Folder) ReadFleetState() (FleetState, error) {
	st := FleetState{Dir: f.Dir, DBPath: f.DBPath}
	if c, err := pki.ReadCertFile(f.Path(pki.CAFile)); err == nil {
		st.CAFingerprint = pki.Fingerprint(c)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("fleet CA: %w", err)
	}
	if f.Database.Type == DatabasePostgres {
		st.DBPath, st.DBPresent = f.Database.String(), true // a server's: its computers are counted once open
	} else if _, err := os.Stat(f.DBPath); err == nil {
		st.DBPresent = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return st, err
	}
	data, err := os.ReadFile(f.Path(FleetMarkerFile))
	switch {
	case err == nil:
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				st.Marker = line
				break
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return st, err
	}
	return st, nil
}

// Check refuses a start that would make a new fleet CA or a new database over a folder that had
// agents: they pin the CA, and the database knows them. newFleet (--new-fleet) allows it.
func (st FleetState) Check(newFleet bool) error {
	if newFleet {
		return nil
	}
	marker := (&Folder{Dir: st.Dir}).Path(FleetMarkerFile)
	fix := fmt.Sprintf("restore it from a backup of %s, or start with %s to begin a new fleet (every agent must then be activated again)", st.Dir, NewFleetFlag)
	switch {
	case st.CAFingerprint == "" && st.Computers > 0:
		return fmt.Errorf("the fleet CA (%s, %s) is missing from %s, but the database %s holds %d activated computers that pin it: a new CA would orphan every agent; %s",
			pki.CAFile, pki.CAKeyFile, st.Dir, st.DBPath, st.Computers, fix)
	case st.CAFingerprint == "" && st.Marker != "":
		return fmt.Errorf("the fleet CA (%s, %s) is missing from %s, which had agents (%s records their CA, SHA-256 %s): a new CA would orphan every agent; %s",
			pki.CAFile, pki.CAKeyFile, st.Dir, marker, st.Marker, fix)
	case !st.DBPresent && st.Marker != "":
		return fmt.Errorf("the database %s is missing, but %s had agents (%s records their CA, SHA-256 %s): a new database would not know them; %s",
			st.DBPath, st.Dir, marker, st.Marker, fix)
	case st.Marker != "" && st.CAFingerprint != st.Marker:
		return fmt.Errorf("%s in %s is not the fleet CA its agents pin (%s records SHA-256 %s, %s is %s): put the original %s and %s back, or start with %s to begin a new fleet (every agent must then be activated again)",
			pki.CAFile, st.Dir, marker, st.Marker, pki.CAFile, st.CAFingerprint, pki.CAFile, pki.CAKeyFile, NewFleetFlag)
	}
	return nil
}

// MarkFleet records the fleet CA's fingerprint in FleetMarkerFile (the folder now has agents).
func (f *Folder) MarkFleet(caFingerprint string) error {
	return pki.WriteFile(f.Path(FleetMarkerFile), []byte("# The fleet CA this folder's agents pin; the Manager refuses to start without it (see "+NewFleetFlag+").\n"+caFingerprint+"\n"), 0o644)
}
