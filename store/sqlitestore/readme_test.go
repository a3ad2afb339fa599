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

var updateSnippet = flag.Bool("update-snippet", false, "rewrite docs/readme-snippet.go.txt from Example")

// snippetPath holds the README's "Using the session manager" code: the
// import block and the body of Example in example_test.go, so that the
// README shows code that compiles and whose output is checked.
const snippetPath = "../../docs/readme-snippet.go.txt"

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

func TestREADMESnippetIsTheExample(t *testing.T) {
	want := readmeSnippet(t)
	if *updateSnippet {
		if err := os.WriteFile(snippetPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(snippetPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, []byte(want)) {
		t.Fatalf("%s is not Example's imports and body; run\n\tgo test -run TestREADMESnippetIsTheExample -update-snippet ./store/sqlitestore\nand copy it into the README", snippetPath)
	}
}
