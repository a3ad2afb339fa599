package cordonvet_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/analysis/checker"
	"golang.org/x/tools/go/packages"

	"github.com/cordon-sec/cordon/cordonvet"
)

// TestRealCode runs cordonvet over the non-test code of the public modules
// listed in testdata/realcode/modules.txt, fetched through the module proxy
// at their pinned versions, and checks every finding against the verdicts
// in testdata/realcode/judged.txt: it fails on a finding that is not
// judged there, and on a judged line no longer reported (a real escape
// must stay found; a stale verdict must go). It needs the module proxy, so
// it runs only with CORDONVET_REALCODE=1 (realcode.sh sets it).
func TestRealCode(t *testing.T) {
	if os.Getenv("CORDONVET_REALCODE") != "1" {
		t.Skip("set CORDONVET_REALCODE=1 (or run ./realcode.sh) to fetch the modules and run")
	}
	mods, err := readModules("testdata/realcode/modules.txt")
	if err != nil {
		t.Fatal(err)
	}
	judged, err := readJudged("testdata/realcode/judged.txt")
	if err != nil {
		t.Fatal(err)
	}
	var all []finding
	var totalLines int
	for _, m := range mods {
		findings, lines, err := analyseModule(t, m)
		if err != nil {
			t.Errorf("%s: %v", m, err)
			continue
		}
		totalLines += lines
		t.Logf("%s: %d non-test lines, %d findings", m, lines, len(findings))
		all = append(all, findings...)
	}
	problems, bugs, notBugs := judge(all, judged)
	for _, p := range problems {
		t.Error(p)
	}
	per50k := float64(notBugs) * 50000 / float64(max(totalLines, 1))
	t.Logf("real code: %d modules, %d non-test lines, %d findings: %d real escapes, %d not bugs (%.2f per 50,000 lines)",
		len(mods), totalLines, bugs+notBugs, bugs, notBugs, per50k)
	if per50k > 1 {
		t.Errorf("%.2f findings that are not bugs per 50,000 lines; the goal is at most 1", per50k)
	}
}

// judge compares findings with the verdicts: every finding must be judged,
// and every verdict must still match a finding.
func judge(findings []finding, judged map[string]verdict) (problems []string, bugs, notBugs int) {
	seen := map[string]bool{}
	for _, f := range findings {
		seen[f.key] = true
		v, ok := judged[f.key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("unjudged finding: %s: %s\n\tadd a line to testdata/realcode/judged.txt: %s <bug|ok> <reason>", f.key, f.msg, f.key))
		case v.bug:
			bugs++
		default:
			notBugs++
		}
	}
	var keys []string
	for k := range judged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := judged[k]; !seen[k] {
			if v.bug {
				problems = append(problems, fmt.Sprintf("real escape no longer found: %s (%s)", k, v.reason))
			} else {
				problems = append(problems, fmt.Sprintf("judged finding no longer reported, remove it from judged.txt: %s", k))
			}
		}
	}
	return problems, bugs, notBugs
}

// TestJudge shows the real-code check failing: on a finding nobody judged,
// on a real escape that is no longer found, and on a stale verdict.
func TestJudge(t *testing.T) {
	judged := map[string]verdict{
		"m@v a.go:1": {bug: true, reason: "keeps the request"},
		"m@v b.go:2": {bug: false, reason: "framework pool"},
	}
	if p, bugs, ok := judge([]finding{{key: "m@v a.go:1"}, {key: "m@v b.go:2"}}, judged); len(p) != 0 || bugs != 1 || ok != 1 {
		t.Errorf("all judged: %v, %d bugs, %d not bugs", p, bugs, ok)
	}
	p, _, _ := judge([]finding{{key: "m@v a.go:1"}, {key: "m@v b.go:2"}, {key: "m@v c.go:3", msg: "new"}}, judged)
	if len(p) != 1 || !strings.Contains(p[0], "unjudged finding: m@v c.go:3") {
		t.Errorf("a new finding: %v", p)
	}
	p, _, _ = judge([]finding{{key: "m@v b.go:2"}}, judged)
	if len(p) != 1 || !strings.Contains(p[0], "real escape no longer found") {
		t.Errorf("a lost escape: %v", p)
	}
	p, _, _ = judge([]finding{{key: "m@v a.go:1"}}, judged)
	if len(p) != 1 || !strings.Contains(p[0], "remove it") {
		t.Errorf("a stale verdict: %v", p)
	}
	if _, err := readJudged("testdata/realcode/judged.txt"); err != nil {
		t.Error(err)
	}
	if mods, err := readModules("testdata/realcode/modules.txt"); err != nil || len(mods) < 10 {
		t.Errorf("modules.txt: %d modules, %v; want at least 10", len(mods), err)
	}
}

type finding struct{ key, msg string }

type verdict struct {
	bug    bool
	reason string
}

func readModules(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var mods []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s: want \"module version\", got %q", path, line)
		}
		mods = append(mods, f[0]+"@"+f[1])
	}
	return mods, nil
}

func readJudged(path string) (map[string]verdict, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]verdict{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.SplitN(line, " ", 4)
		if len(fs) < 4 || (fs[2] != "bug" && fs[2] != "ok") || strings.TrimSpace(fs[3]) == "" {
			return nil, fmt.Errorf("%s: want \"module@version path:line bug|ok reason\", got %q", path, line)
		}
		out[fs[0]+" "+fs[1]] = verdict{bug: fs[2] == "bug", reason: fs[3]}
	}
	return out, sc.Err()
}

// analyseModule fetches mod (module@version) through the module proxy
// into a scratch module and runs cordonvet over its packages.
func analyseModule(t *testing.T, mod string) ([]finding, int, error) {
	path, _, _ := strings.Cut(mod, "@")
	out, err := exec.Command("go", "mod", "download", "-json", mod).Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go mod download: %v", err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return nil, 0, fmt.Errorf("go mod download: %s %v", info.Error, err)
	}
	scratch := t.TempDir()
	if err := os.WriteFile(filepath.Join(scratch, "go.mod"), []byte("module cordonvet.test/scratch\n\ngo 1.26\n"), 0o644); err != nil {
		return nil, 0, err
	}
	env := append(environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GO111MODULE=on")
	get := exec.Command("go", "get", path+"/...@"+strings.TrimPrefix(mod, path+"@"))
	get.Dir, get.Env = scratch, env
	if b, err := get.CombinedOutput(); err != nil {
		return nil, 0, fmt.Errorf("go get: %v\n%s", err, b)
	}
	cfg := &packages.Config{Mode: packages.LoadSyntax | packages.NeedModule, Dir: scratch, Env: env}
	pkgs, err := packages.Load(cfg, path+"/...")
	if err != nil {
		return nil, 0, err
	}
	var roots []*packages.Package
	lines := 0
	for _, p := range pkgs {
		if p.Module == nil || p.Module.Path != path {
			continue // a nested module's packages
		}
		if len(p.Errors) > 0 {
			return nil, 0, fmt.Errorf("%s does not load: %v", p.PkgPath, p.Errors[0])
		}
		roots = append(roots, p)
		for _, f := range p.GoFiles {
			if strings.HasPrefix(f, info.Dir+string(filepath.Separator)) {
				b, err := os.ReadFile(f)
				if err != nil {
					return nil, 0, err
				}
				lines += bytes.Count(b, []byte("\n"))
			}
		}
	}
	g, err := checker.Analyze([]*analysis.Analyzer{cordonvet.Analyzer}, roots, nil)
	if err != nil {
		return nil, 0, err
	}
	var fs []finding
	for act := range g.All() {
		if !act.IsRoot {
			continue
		}
		if act.Err != nil {
			return nil, 0, act.Err
		}
		for _, d := range act.Diagnostics {
			p := act.Package.Fset.Position(d.Pos)
			rel, err := filepath.Rel(info.Dir, p.Filename)
			if err != nil {
				rel = p.Filename
			}
			fs = append(fs, finding{key: fmt.Sprintf("%s %s:%d", mod, filepath.ToSlash(rel), p.Line), msg: d.Message})
		}
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].key < fs[j].key })
	return fs, lines, nil
}
