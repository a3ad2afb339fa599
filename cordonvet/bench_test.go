package cordonvet_test

import (
	"fmt"
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

// loadPkgs loads testdata packages with syntax and types; dependencies
// come from export data.
func loadPkgs(patterns []string) ([]*packages.Package, error) {
	dir, err := filepath.Abs("testdata")
	if err != nil {
		return nil, err
	}
	cfg := &packages.Config{
		Mode: packages.LoadSyntax,
		Dir:  filepath.Join(dir, "src"),
		Env:  append(environ(), "GOPATH="+dir, "GO111MODULE=off", "GOWORK=off", "GOFLAGS="),
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil, err
	}
	var errs []string
	packages.Visit(pkgs, nil, func(p *packages.Package) {
		for _, e := range p.Errors {
			errs = append(errs, e.Error())
		}
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("testdata does not load: %s", strings.Join(errs, "; "))
	}
	return pkgs, nil
}

func benchAnalyzer(b *testing.B, a *analysis.Analyzer) {
	pkgs, err := loadPkgs(append(append([]string{}, frameworkPkgs...), "corpus"))
	if err != nil {
		b.Fatal(err)
	}
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
