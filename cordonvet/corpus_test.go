package cordonvet_test

import (
	"go/ast"
	"sort"
	"strings"
	"testing"
)

// TestCorpus runs cordonvet over the corpus (testdata/src/corpus), where
// every function named Bug... lets a request-scoped value escape and every
// function named Safe... is a look-alike that does not, and computes
// precision and recall: a Bug case is found when at least one finding lies
// inside it, a Safe case is a false positive when any does.
func TestCorpus(t *testing.T) {
	res := runAll(t)["corpus"]
	if res == nil {
		t.Fatal("corpus was not analysed")
	}
	fset, files := res.pkg.Fset, res.pkg.Syntax
	type span struct {
		name     string
		pos, end int // offsets in the file set
		file     string
		findings []string
	}
	var cases []*span
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !(strings.HasPrefix(fd.Name.Name, "Bug") || strings.HasPrefix(fd.Name.Name, "Safe")) {
				continue
			}
			cases = append(cases, &span{name: fd.Name.Name, pos: int(fd.Pos()), end: int(fd.End())})
		}
	}
	var stray []string
	for _, d := range res.diags {
		var in *span
		for _, c := range cases {
			if int(d.Pos) >= c.pos && int(d.Pos) < c.end {
				in = c
			}
		}
		if in == nil {
			stray = append(stray, fset.Position(d.Pos).String()+": "+d.Message)
			continue
		}
		in.findings = append(in.findings, d.Message)
	}
	var tp, fn, fp, tn int
	var missed, falsePos []string
	for _, c := range cases {
		bug := strings.HasPrefix(c.name, "Bug")
		switch {
		case bug && len(c.findings) > 0:
			tp++
		case bug:
			fn++
			missed = append(missed, c.name)
		case len(c.findings) > 0:
			fp++
			falsePos = append(falsePos, c.name+": "+strings.Join(c.findings, " | "))
		default:
			tn++
		}
	}
	sort.Strings(missed)
	bugs, safe := tp+fn, fp+tn
	precision := float64(tp) / float64(max(tp+fp, 1))
	recall := float64(tp) / float64(max(bugs, 1))
	t.Logf("corpus: %d cases (%d bugs, %d safe): TP=%d FN=%d FP=%d TN=%d precision=%.3f recall=%.3f",
		len(cases), bugs, safe, tp, fn, fp, tn, precision, recall)
	t.Logf("missed bugs: %v", missed)

	if len(cases) < 80 {
		t.Errorf("corpus has %d cases, want at least 80", len(cases))
	}
	if bugs != safe {
		t.Errorf("corpus has %d bug cases and %d safe cases, want half and half", bugs, safe)
	}
	for _, s := range stray {
		t.Errorf("finding outside any case: %s", s)
	}
	for _, s := range falsePos {
		t.Errorf("false positive on safe case %s", s)
	}
	if recall < 0.95 {
		t.Errorf("recall %.3f below the 0.95 goal; missed %v", recall, missed)
	}
	// The known misses are documented in docs/cordonvet.md; a change in
	// them must update the docs.
	wantMissed := []string{"BugTrackerSetterAny"}
	if strings.Join(missed, ",") != strings.Join(wantMissed, ",") {
		t.Errorf("missed %v, docs list %v: update docs/cordonvet.md", missed, wantMissed)
	}
}
