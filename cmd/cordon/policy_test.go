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
	core := []string{"session", "scope", "store", "reqlog", "dbsc", "internal/setcookie", "internal/testswitch", "internal/token", "internal/reqcookie", "internal/jsonstr", "internal/ctxvalue"}
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

// TestGoDirective keeps every module of the tree, and the workspace that
// ties them together, at `go 1.26`, the toolchain the project builds with:
// a dependency that demands a newer directive must be pinned to an older
// version instead.
func TestGoDirective(t *testing.T) {
	files := modFiles(t)
	files = append(files, filepath.Join("..", "..", "go.work"))
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
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
	}
}

// modFiles returns the go.mod files of the tree (every module).
func modFiles(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..")
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() == "go.mod" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found %d go.mod files; the walk is broken", len(files))
	}
	return files
}

// TestRootModuleRequiresNothing keeps the root module (session, scope,
// store, memstore, storetest, cache, reqlog, forensics, report, flags, lab,
// chaos) free of requirements, in its tests too: an application that
// requires it gets nothing else in its module graph.
func TestRootModuleRequiresNothing(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "require" || f[0] == "replace") {
			t.Errorf("the root go.mod has %q; it must require nothing", line)
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}{{end}}", "./...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[len(f)-1] != "github.com/cordon-sec/cordon" {
			t.Errorf("a package of the root module, or its tests, depends on %s", line)
		}
		n++
	}
	if n < 10 {
		t.Fatalf("go list found %d packages; the check is broken:\n%s", n, out)
	}
}

// TestModuleVersions checks how the modules of the tree refer to each
// other: by one real version, the same everywhere, never by a replace
// directive in a go.mod (a consumer's go command ignores those, so the
// module would not resolve for them); go.work uses every module and
// points that version of each at its directory.
func TestModuleVersions(t *testing.T) {
	const prefix = "github.com/cordon-sec/cordon"
	root := filepath.Join("..", "..")
	dirs := map[string]string{} // module path -> directory relative to root
	versions := map[string][]string{}
	for _, path := range modFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		inBlock := false
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 0:
				continue
			case f[0] == "module" && len(f) == 2:
				rel, err := filepath.Rel(root, filepath.Dir(path))
				if err != nil {
					t.Fatal(err)
				}
				dirs[f[1]] = filepath.ToSlash(rel)
			case f[0] == "replace":
				t.Errorf("%s: %q: a replace directive breaks the module for its users", path, line)
			case f[0] == "require" && len(f) == 2 && f[1] == "(":
				inBlock = true
			case f[0] == ")":
				inBlock = false
			case f[0] == "require" && len(f) >= 3 && strings.HasPrefix(f[1], prefix):
				versions[f[2]] = append(versions[f[2]], path+": "+f[1])
			case inBlock && len(f) >= 2 && strings.HasPrefix(f[0], prefix):
				versions[f[1]] = append(versions[f[1]], path+": "+f[0])
			}
		}
	}
	if len(versions) != 1 {
		t.Fatalf("the modules require each other at %d versions, want one: %v", len(versions), versions)
	}
	var version string
	for v := range versions {
		version = v
	}
	if !strings.HasPrefix(version, "v") || strings.HasPrefix(version, "v0.0.0") {
		t.Fatalf("the modules require each other at %s, want a release version", version)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	work := string(b)
	for mod, dir := range dirs {
		use := "./" + dir
		if dir == "." {
			use = "."
		}
		if !strings.Contains(work, "\t"+use+"\n") {
			t.Errorf("go.work does not use %s (%s)", use, mod)
		}
		if !strings.Contains(work, "replace "+mod+" "+version+" => "+use+"\n") {
			t.Errorf("go.work does not point %s %s at %s", mod, version, use)
		}
	}
}
