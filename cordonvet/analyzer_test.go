package cordonvet_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/go/analysis/analysistest"

	"github.com/cordon-sec/cordon/cordonvet"
)

// frameworkPkgs are the testdata packages checked against their // want
// comments, one per framework plus the ignore directive.
var frameworkPkgs = []string{"nethttp", "ginapp", "echo4app", "echo5app", "fastapp", "sessionapp", "ignoreapp"}

// collector records analysistest's complaints so that one load of the
// testdata (loading net/http from source is the slow part) serves both the
// // want checks and the corpus measurement.
type collector struct {
	mu   sync.Mutex
	msgs []string
}

func (c *collector) Errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, fmt.Sprintf(format, args...))
}

var (
	runOnce    sync.Once
	runErrs    *collector
	runResults []*analysistest.Result
)

// runAll analyses every testdata package once.
func runAll() ([]string, []*analysistest.Result) {
	runOnce.Do(func() {
		runErrs = &collector{}
		pkgs := append(append([]string{}, frameworkPkgs...), "corpus")
		runResults = analysistest.Run(runErrs, analysistest.TestData(), cordonvet.Analyzer, pkgs...)
	})
	return runErrs.msgs, runResults
}

// TestFrameworks checks every finding and every silence in the framework
// packages against their // want comments.
func TestFrameworks(t *testing.T) {
	msgs, results := runAll()
	if len(results) != len(frameworkPkgs)+1 {
		t.Fatalf("analysed %d packages, want %d", len(results), len(frameworkPkgs)+1)
	}
	for _, m := range msgs {
		// The corpus has no // want comments: its cases are judged by name
		// in TestCorpus.
		if strings.HasPrefix(m, "corpus/") {
			continue
		}
		t.Error(m)
	}
	for _, r := range results {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Pass.Pkg.Path(), r.Err)
		}
	}
}
