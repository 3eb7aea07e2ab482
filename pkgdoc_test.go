// Package tlsfleet_test holds repository-wide checks.
package tlsfleet_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageComments fails when a package has no "// Package x ..." (or, for commands, "// Command x")
// comment in any of its files.
func TestPackageComments(t *testing.T) {
	dirs := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata" || d.Name() == "tools" || d.Name() == "var" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("found no packages")
	}
	for dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		docs := map[string]bool{} // package name -> has a package comment
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, n), nil, parser.ParseComments|parser.PackageClauseOnly)
			if err != nil {
				t.Fatal(err)
			}
			name := f.Name.Name
			want := "Package " + name + " "
			if name == "main" {
				want = "Command " + filepath.Base(dir) + " "
			}
			docs[name] = docs[name] || f.Doc != nil && strings.HasPrefix(f.Doc.Text(), want)
		}
		for name, ok := range docs {
			if !ok {
				t.Errorf("%s: no file of package %s starts with a package comment (\"// Package %s ...\")", dir, name, name)
			}
		}
	}
}
