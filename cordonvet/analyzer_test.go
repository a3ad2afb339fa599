package cordonvet_test

import (
	"fmt"
	"go/ast"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/analysistest"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"

	"github.com/cordon-sec/cordon/cordonvet"
)

// frameworkPkgs are the testdata packages checked against their // want
// comments, one per framework plus the ignore directive.
var frameworkPkgs = []string{"nethttp", "ginapp", "echo4app", "echo5app", "fastapp", "sessionapp", "ignoreapp"}

// pkgResult is cordonvet's output on one testdata package.
type pkgResult struct {
	pkg   *packages.Package
	diags []analysis.Diagnostic
}

var (
	runOnce    sync.Once
	runErr     error
	runResults map[string]*pkgResult
)

// runAll analyses every testdata package once, with dependencies' types
// from export data. (analysistest.Run type-checks net/http and everything
// it imports from source, which takes about 40 times longer under -race;
// the // want comments are checked by checkWants below instead, with
// analysistest's rules.)
func runAll(t *testing.T) map[string]*pkgResult {
	t.Helper()
	runOnce.Do(func() {
		pkgs, err := loadPkgs(append(append([]string{}, frameworkPkgs...), "corpus"))
		if err != nil {
			runErr = err
			return
		}
		g, err := checker.Analyze([]*analysis.Analyzer{cordonvet.Analyzer}, pkgs, nil)
		if err != nil {
			runErr = err
			return
		}
		runResults = map[string]*pkgResult{}
		for _, act := range g.Roots {
			if act.Err != nil {
				runErr = fmt.Errorf("%s: %w", act.Package.PkgPath, act.Err)
				return
			}
			runResults[act.Package.PkgPath] = &pkgResult{pkg: act.Package, diags: act.Diagnostics}
		}
	})
	if runErr != nil {
		t.Fatal(runErr)
	}
	return runResults
}

// TestFrameworks checks every finding and every silence in the framework
// packages against their // want comments: each pattern must match one
// finding on its line, and every finding must be matched.
func TestFrameworks(t *testing.T) {
	results := runAll(t)
	for _, path := range frameworkPkgs {
		r := results[path]
		if r == nil {
			t.Errorf("%s was not analysed", path)
			continue
		}
		checkWants(t, r)
	}
}

type lineKey struct {
	file string
	line int
}

func checkWants(t *testing.T, r *pkgResult) {
	t.Helper()
	fset := r.pkg.Fset
	wants := map[lineKey][]*regexp.Regexp{}
	for _, f := range r.pkg.Syntax {
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				pats, err := parseWant(c)
				if err != nil {
					t.Errorf("%s: %v", fset.Position(c.Pos()), err)
					continue
				}
				if len(pats) > 0 {
					p := fset.Position(c.Pos())
					k := lineKey{p.Filename, p.Line}
					wants[k] = append(wants[k], pats...)
				}
			}
		}
	}
	for _, d := range r.diags {
		p := fset.Position(d.Pos)
		k := lineKey{p.Filename, p.Line}
		matched := false
		for i, re := range wants[k] {
			if re.MatchString(d.Message) {
				wants[k] = append(wants[k][:i], wants[k][i+1:]...)
				matched = true
				break
			}
		}
		if !matched {
			t.Errorf("%s: unexpected diagnostic: %s", p, d.Message)
		}
	}
	for k, res := range wants {
		for _, re := range res {
			t.Errorf("%s:%d: no diagnostic was reported matching `%s`", k.file, k.line, re)
		}
	}
}

// parseWant returns the patterns of a "// want" comment (also one that
// follows another comment's text, as in "//cordonvet:ignore // want ...").
func parseWant(c *ast.Comment) ([]*regexp.Regexp, error) {
	i := strings.Index(c.Text, "// want ")
	if i < 0 {
		return nil, nil
	}
	rest := strings.TrimSpace(c.Text[i+len("// want "):])
	var pats []*regexp.Regexp
	for rest != "" {
		var lit string
		switch rest[0] {
		case '`':
			end := strings.IndexByte(rest[1:], '`')
			if end < 0 {
				return nil, fmt.Errorf("unterminated pattern in %q", c.Text)
			}
			lit, rest = rest[1:end+1], rest[end+2:]
		case '"':
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, fmt.Errorf("bad pattern in %q: %v", c.Text, err)
			}
			lit, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		default:
			return nil, fmt.Errorf("want patterns must be quoted: %q", c.Text)
		}
		re, err := regexp.Compile(lit)
		if err != nil {
			return nil, err
		}
		pats = append(pats, re)
		rest = strings.TrimSpace(rest)
	}
	return pats, nil
}

// TestWantParser guards the // want reader itself: a checker of
// expectations that read nothing would pass everything.
func TestWantParser(t *testing.T) {
	for text, n := range map[string]int{
		"// want `a` \"b\"":              2,
		"//cordonvet:ignore // want `x`": 1,
		"// not a want":                  0,
	} {
		pats, err := parseWant(&ast.Comment{Text: text})
		if err != nil || len(pats) != n {
			t.Errorf("parseWant(%q) = %d patterns, %v; want %d", text, len(pats), err, n)
		}
	}
	results := runAll(t)
	total := 0
	for _, path := range frameworkPkgs {
		total += len(results[path].diags)
	}
	if total < 40 {
		t.Errorf("framework packages produced %d findings; the // want suites expect at least 40", total)
	}
}

// TestAnalysistest runs the standard harness, analysistest.Run, on
// fastmini, whose only import is the fasthttp stand-in (analysistest
// type-checks every dependency from source), so the // want conventions
// checkWants reads stay analysistest's own.
func TestAnalysistest(t *testing.T) {
	analysistest.Run(t, analysistest.TestData(), cordonvet.Analyzer, "fastmini")
}

// TestFlags runs the analyzer on scopedflag with and without -scoped and
// -strict-withoutcancel: each flag must add exactly its finding.
func TestFlags(t *testing.T) {
	pkgs, err := loadPkgs([]string{"scopedflag"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(flag, value string) []string {
		t.Helper()
		if flag != "" {
			if err := cordonvet.Analyzer.Flags.Set(flag, value); err != nil {
				t.Fatal(err)
			}
			defer cordonvet.Analyzer.Flags.Set(flag, cordonvet.Analyzer.Flags.Lookup(flag).DefValue)
		}
		g, err := checker.Analyze([]*analysis.Analyzer{cordonvet.Analyzer}, pkgs, nil)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, act := range g.Roots {
			for _, d := range act.Diagnostics {
				msgs = append(msgs, d.Message)
			}
		}
		return msgs
	}
	if got := run("", ""); len(got) != 0 {
		t.Errorf("without flags: %q, want nothing", got)
	}
	got := run("scoped", "example.com/authn.User")
	if len(got) != 1 || !strings.Contains(got[0], "*authn.User") {
		t.Errorf("-scoped=example.com/authn.User: %q, want one finding on the user", got)
	}
	got = run("strict-withoutcancel", "true")
	if len(got) != 1 || !strings.Contains(got[0], "WithoutCancel") {
		t.Errorf("-strict-withoutcancel: %q, want one finding on the detached context", got)
	}
}
