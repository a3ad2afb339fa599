package main_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const buggy = `package app

import "net/http"

var last *http.Request

func Handle(w http.ResponseWriter, r *http.Request) {
	last = r
	go func() { _ = r.URL }()
}
`

const clean = `package app

import "net/http"

var lastPath string

func Handle(w http.ResponseWriter, r *http.Request) {
	lastPath = r.URL.Path
	p := r.URL.Path
	go func() { _ = p }()
}
`

// module writes a one-package module with the given source and returns its
// directory.
func module(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/app\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func run(t *testing.T, dir string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	return "", -1
}

// TestCommand builds cordonvet and runs it both ways the docs give: as a
// standalone checker and as go vet's -vettool.
func TestCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cordonvet")
	if out, code := run(t, ".", "go", "build", "-o", bin, "."); code != 0 {
		t.Fatalf("build: %s", out)
	}
	bad, good := module(t, buggy), module(t, clean)

	out, code := run(t, bad, bin, "./...")
	if code == 0 || !strings.Contains(out, "stored in package variable last") || !strings.Contains(out, "captured by a goroutine") {
		t.Errorf("cordonvet ./... on a buggy module: exit %d, output:\n%s", code, out)
	}
	out, code = run(t, bad, "go", "vet", "-vettool="+bin, "./...")
	if code == 0 || !strings.Contains(out, "stored in package variable last") {
		t.Errorf("go vet -vettool on a buggy module: exit %d, output:\n%s", code, out)
	}
	if out, code := run(t, good, bin, "./..."); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("cordonvet ./... on a clean module: exit %d, output:\n%s", code, out)
	}
	if out, code := run(t, good, "go", "vet", "-vettool="+bin, "./..."); code != 0 {
		t.Errorf("go vet -vettool on a clean module: exit %d, output:\n%s", code, out)
	}
}
