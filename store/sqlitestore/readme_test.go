package sqlitestore_test

import (
	"bytes"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

var updateSnippet = flag.Bool("update-snippet", false, "rewrite the README's example from Example")

// readmePath is the README, whose "Using the session manager" section
// shows the import block and the body of Example in example_test.go as its
// first Go code block, so that the README shows code that compiles and
// whose output is checked.
const readmePath = "../../README.md"

// readmeSnippet returns the import block and the dedented body of Example.
func readmeSnippet(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "example_test.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var imports, body string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			if d.Tok == token.IMPORT {
				imports = string(src[fset.Position(d.Pos()).Offset:fset.Position(d.End()).Offset])
			}
		case *ast.FuncDecl:
			if d.Name.Name == "Example" {
				inner := src[fset.Position(d.Body.Lbrace).Offset+1 : fset.Position(d.Body.Rbrace).Offset]
				var b strings.Builder
				for line := range strings.SplitSeq(strings.Trim(string(inner), "\n"), "\n") {
					b.WriteString(strings.TrimPrefix(line, "\t"))
					b.WriteByte('\n')
				}
				body = b.String()
			}
		}
	}
	if imports == "" || body == "" {
		t.Fatal("example_test.go has no import block or no func Example")
	}
	return imports + "\n\n" + body
}

// readmeBlock returns the README and the offsets of the first Go code
// block's content after the "Using the session manager" heading.
func readmeBlock(t *testing.T) (readme []byte, from, to int) {
	t.Helper()
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	sec := bytes.Index(readme, []byte("\n## Using the session manager\n"))
	open := []byte("```go\n")
	if sec < 0 || bytes.Index(readme[sec:], open) < 0 {
		t.Fatal("README.md has no Go block under \"## Using the session manager\"")
	}
	from = sec + bytes.Index(readme[sec:], open) + len(open)
	n := bytes.Index(readme[from:], []byte("```\n"))
	if n < 0 {
		t.Fatal("README.md: the Go block is not closed")
	}
	return readme, from, from + n
}

func TestREADMESnippetIsTheExample(t *testing.T) {
	want := readmeSnippet(t)
	readme, from, to := readmeBlock(t)
	if *updateSnippet {
		out := append(append(append([]byte{}, readme[:from]...), want...), readme[to:]...)
		if err := os.WriteFile(readmePath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		readme, from, to = readmeBlock(t)
	}
	if got := readme[from:to]; !bytes.Equal(got, []byte(want)) {
		t.Fatalf("README.md's example is not Example's imports and body; run\n\tgo test -run TestREADMESnippetIsTheExample ./store/sqlitestore -args -update-snippet")
	}
}
