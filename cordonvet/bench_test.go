package cordonvet_test

import (
	"go/ast"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"

	"github.com/cordon-sec/cordon/cordonvet"
)

// walker is the baseline: an analyzer that only walks every file's syntax
// tree once, the least any AST-based check does.
var walker = &analysis.Analyzer{
	Name: "walker",
	Doc:  "walks every syntax tree once (benchmark baseline)",
	Run: func(pass *analysis.Pass) (any, error) {
		n := 0
		for _, f := range pass.Files {
			ast.Inspect(f, func(ast.Node) bool { n++; return true })
		}
		_ = n
		return nil, nil
	},
}

// loadTestdata loads the testdata packages (the corpus and every framework
// package) once, with types.
func loadTestdata(b *testing.B) []*packages.Package {
	b.Helper()
	dir, err := filepath.Abs("testdata")
	if err != nil {
		b.Fatal(err)
	}
	cfg := &packages.Config{
		Mode:  packages.LoadSyntax,
		Dir:   filepath.Join(dir, "src"),
		Env:   append(environ(), "GOPATH="+dir, "GO111MODULE=off", "GOWORK=off", "GOFLAGS="),
		Tests: false,
	}
	pkgs, err := packages.Load(cfg, append(append([]string{}, frameworkPkgs...), "corpus")...)
	if err != nil {
		b.Fatal(err)
	}
	if packages.PrintErrors(pkgs) > 0 {
		b.Fatal("testdata does not load")
	}
	return pkgs
}

func benchAnalyzer(b *testing.B, a *analysis.Analyzer) {
	pkgs := loadTestdata(b)
	b.ReportAllocs()
	for b.Loop() {
		g, err := checker.Analyze([]*analysis.Analyzer{a}, pkgs, &checker.Options{Sequential: true})
		if err != nil {
			b.Fatal(err)
		}
		for act := range g.All() {
			if act.Err != nil {
				b.Fatal(act.Err)
			}
		}
	}
}

// BenchmarkCordonvet runs cordonvet over the 8 testdata packages (about
// 1,000 lines) already loaded with types.
func BenchmarkCordonvet(b *testing.B) { benchAnalyzer(b, cordonvet.Analyzer) }

// BenchmarkWalkBaseline runs the walk-only baseline over the same packages.
func BenchmarkWalkBaseline(b *testing.B) { benchAnalyzer(b, walker) }

// environ is the process environment without the variables the loader
// above sets itself.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch {
		case strings.HasPrefix(kv, "GOPATH="), strings.HasPrefix(kv, "GO111MODULE="),
			strings.HasPrefix(kv, "GOWORK="), strings.HasPrefix(kv, "GOFLAGS="):
			continue
		}
		env = append(env, kv)
	}
	return env
}
