// Command installtest writes a Go module proxy directory holding every
// module of the cordon tree at one version, laid out as GOPROXY=file://DIR
// expects (<module>/@v/list, <version>.info, .mod and .zip), so that a
// program outside the tree can `go get` and `go install` cordon exactly as
// it would from a released version. run.sh uses it for the install test,
// tidy.sh to tidy the modules' go.mod files.
//
//	go run ./internal/installtest -root . -version v0.2.0 -o /tmp/proxy
//
// The zips hold the files of the working tree that git tracks or would
// track (untracked files that .gitignore names are left out); outside a git
// checkout, every file. Files of a nested module stay out of its parent's
// zip, as the go command requires.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

func main() {
	root := flag.String("root", ".", "the `directory` of the cordon tree")
	version := flag.String("version", "", "the module `version` to write, e.g. v0.2.0")
	out := flag.String("o", "", "the proxy `directory` to write")
	flag.Parse()
	if *version == "" || *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: installtest -root DIR -version vX.Y.Z -o PROXYDIR")
		os.Exit(2)
	}
	mods, err := write(*root, *version, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "installtest:", err)
		os.Exit(1)
	}
	for _, m := range mods {
		fmt.Println(m)
	}
}

// write puts every module under root into the proxy directory out at
// version and returns their paths.
func write(root, version, out string) ([]string, error) {
	if !semver.IsValid(version) || semver.Canonical(version) != version || semver.Build(version) != "" {
		return nil, fmt.Errorf("%q is not a canonical module version such as v0.2.0", version)
	}
	files, err := listFiles(root)
	if err != nil {
		return nil, err
	}
	// Every go.mod outside testdata and dot or underscore directories is a
	// module; files belong to the innermost one.
	mods := map[string]string{} // directory (slash, "" for root) -> module path
	for _, f := range files {
		dir, base := path.Split(f)
		if base != "go.mod" || skipped(dir) {
			continue
		}
		dir = strings.TrimSuffix(dir, "/")
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		mp := modfile.ModulePath(data)
		if mp == "" {
			return nil, fmt.Errorf("%s: no module line", f)
		}
		mods[dir] = mp
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("no go.mod under %s", root)
	}
	var paths []string
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return nil, err
	}
	for dir, mp := range mods {
		var zfiles []zip.File
		for _, f := range files {
			rel, ok := within(f, dir)
			if !ok {
				continue
			}
			zfiles = append(zfiles, treeFile{rel: rel, abs: filepath.Join(root, filepath.FromSlash(f))})
		}
		if err := module.Check(mp, version); err != nil {
			return nil, err
		}
		esc, err := module.EscapePath(mp)
		if err != nil {
			return nil, err
		}
		vdir := filepath.Join(out, filepath.FromSlash(esc), "@v")
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := zip.Create(&buf, module.Version{Path: mp, Version: version}, zfiles); err != nil {
			return nil, fmt.Errorf("%s: %w", mp, err)
		}
		gomod, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(dir), "go.mod"))
		if err != nil {
			return nil, err
		}
		for name, data := range map[string][]byte{
			version + ".zip":  buf.Bytes(),
			version + ".mod":  gomod,
			version + ".info": info,
			"list":            []byte(version + "\n"),
		} {
			if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
				return nil, err
			}
		}
		paths = append(paths, mp)
	}
	sort.Strings(paths)
	return paths, nil
}

// skipped reports whether a directory (slash-separated, with a trailing
// slash or empty) is one the go command ignores when it matches packages.
func skipped(dir string) bool {
	for _, elem := range strings.Split(strings.TrimSuffix(dir, "/"), "/") {
		if elem == "testdata" || strings.HasPrefix(elem, ".") || strings.HasPrefix(elem, "_") {
			return true
		}
	}
	return false
}

// within returns f relative to dir when f lies inside it.
func within(f, dir string) (string, bool) {
	if dir == "" {
		return f, true
	}
	if rest, ok := strings.CutPrefix(f, dir+"/"); ok {
		return rest, true
	}
	return "", false
}

// listFiles returns the slash-separated paths, relative to root, of the
// tree's regular files: from git when root is a checkout, else by walking.
func listFiles(root string) ([]string, error) {
	cmd := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Stderr = io.Discard
	if out, err := cmd.Output(); err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f == "" {
				continue
			}
			// A file deleted from the tree but still in the index is gone.
			if st, err := os.Lstat(filepath.Join(root, filepath.FromSlash(f))); err != nil || !st.Mode().IsRegular() {
				continue
			}
			files = append(files, f)
		}
		return files, nil
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("no files")
	}
	return files, nil
}

// treeFile is one file of the tree as zip.Create reads it.
type treeFile struct{ rel, abs string }

func (f treeFile) Path() string                 { return f.rel }
func (f treeFile) Lstat() (os.FileInfo, error)  { return os.Lstat(f.abs) }
func (f treeFile) Open() (io.ReadCloser, error) { return os.Open(f.abs) }
