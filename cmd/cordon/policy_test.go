package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCoreImportsOnlyStdlib keeps the core packages free of third-party
// code: an application that uses cordon's sessions pulls in nothing else.
func TestCoreImportsOnlyStdlib(t *testing.T) {
	core := []string{"session", "scope", "store", "reqlog"}
	args := []string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}
	for _, p := range core {
		args = append(args, "github.com/cordon-sec/cordon/"+p)
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if !strings.HasPrefix(dep, "github.com/cordon-sec/cordon/") {
			t.Errorf("a core package depends on %s", dep)
			continue
		}
		rest := strings.TrimPrefix(dep, "github.com/cordon-sec/cordon/")
		ok := false
		for _, c := range core {
			if rest == c {
				ok = true
			}
		}
		if !ok {
			t.Errorf("a core package depends on non-core %s", dep)
		}
	}
}

// TestEveryPackageHasDoc checks that every package in the tree (every
// module) has a package doc comment.
func TestEveryPackageHasDoc(t *testing.T) {
	root := filepath.Join("..", "..")
	dirs := map[string]bool{}
	documented := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dir := filepath.Dir(path)
		dirs[dir] = true
		if f.Doc != nil && strings.HasPrefix(strings.TrimSpace(f.Doc.Text()), "Package "+f.Name.Name) ||
			f.Doc != nil && f.Name.Name == "main" && strings.HasPrefix(strings.TrimSpace(f.Doc.Text()), "Command ") {
			documented[dir] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for d := range dirs {
		if !documented[d] {
			t.Errorf("package in %s has no doc comment starting \"Package <name>\" (or \"Command\" for main)", d)
		}
	}
}

// TestGoDirective keeps every module of the tree at `go 1.26`, the
// toolchain the project builds with: a dependency that demands a newer
// directive must be pinned to an older version instead.
func TestGoDirective(t *testing.T) {
	root := filepath.Join("..", "..")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() != "go.mod" {
			return nil
		}
		n++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "go ") {
				found = true
				if strings.TrimSpace(line) != "go 1.26" {
					t.Errorf("%s: %q, want \"go 1.26\"", path, line)
				}
			}
		}
		if !found {
			t.Errorf("%s has no go directive", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("found %d go.mod files; the walk is broken", n)
	}
}
