package install

import (
	"fmt"
	"os"
)

// Identity pins the install folder and the database file a running Manager opened. A folder removed or
// renamed under the Manager leaves it writing to files nobody will find again; Check notices.
type Identity struct {
	paths []string
	infos []os.FileInfo
}

// Pin records the identity (device and inode) of the folder and of its database file.
func (f *Folder) Pin() (*Identity, error) {
	id := &Identity{paths: []string{f.Dir}}
	if f.DBPath != "" { // PostgreSQL's files are the server's
		id.paths = append(id.paths, f.DBPath)
	}
	for _, p := range id.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		id.infos = append(id.infos, fi)
	}
	return id, nil
}

// Check reports why the folder or the database is no longer the one the Manager opened: gone, or
// replaced by another file at the same path. nil means both are still in place.
func (id *Identity) Check() error {
	for i, p := range id.paths {
		what := "install folder"
		if i > 0 {
			what = "database"
		}
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			return fmt.Errorf("the %s %s was removed or renamed while the Manager runs (%v): changes are refused, since they would be lost; move it back, or stop the Manager and restore it from a backup", what, p, err)
		case !os.SameFile(fi, id.infos[i]):
			return fmt.Errorf("the %s %s was replaced while the Manager runs (it is not the one the Manager opened): changes are refused, since they would go to the old one; move the original back, or restart the Manager", what, p)
		}
	}
	return nil
}
