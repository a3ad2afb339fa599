package forensics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"testing"

	"github.com/cordon-sec/cordon/forensics"
	"github.com/cordon-sec/cordon/forensics/synth"
)

// Quality is what a scan scored against a generator's truth.
type quality struct {
	missed     []synth.Incident // incidents their own rule did not find
	fpSessions []string         // sessions flagged that no incident involved
	fpFindings []*forensics.Finding
	benign     int
}

// score compares a report with the truth: an incident is found when a
// finding of its rule names one of its sessions; a finding is a false
// positive when it names no session and no request of any incident.
func score(t *testing.T, rep *forensics.Report, truth *synth.Truth) quality {
	t.Helper()
	affected := map[string]bool{}
	reqs := map[string]bool{}
	for _, in := range truth.Incidents {
		for _, s := range in.Sessions {
			affected[s] = true
		}
		for _, r := range in.Requests {
			reqs[r] = true
		}
	}
	var q quality
	q.benign = truth.Sessions - len(affected)
	for _, in := range truth.Incidents {
		found := false
		for _, f := range rep.Findings {
			if f.Rule != in.Rule {
				continue
			}
			for _, s := range f.Sessions {
				for _, is := range in.Sessions {
					found = found || s == is
				}
			}
		}
		if !found {
			q.missed = append(q.missed, in)
		}
	}
	fp := map[string]bool{}
	for _, f := range rep.Findings {
		hit := false
		for _, s := range f.Sessions {
			hit = hit || affected[s]
		}
		for _, r := range f.Requests {
			hit = hit || reqs[r]
		}
		if hit {
			continue
		}
		q.fpFindings = append(q.fpFindings, f)
		for _, s := range f.Sessions {
			if !fp[s] {
				fp[s] = true
				q.fpSessions = append(q.fpSessions, s)
			}
		}
		if len(f.Sessions) == 0 {
			q.fpSessions = append(q.fpSessions, "req:"+f.Requests[0])
		}
	}
	return q
}

// generateAndScan streams a generated log straight into the scanner.
func generateAndScan(t *testing.T, gc synth.Config, sc forensics.Config) (*forensics.Report, *synth.Truth) {
	t.Helper()
	pr, pw := io.Pipe()
	var truth *synth.Truth
	errc := make(chan error, 1)
	go func() {
		tr, err := synth.Generate(gc, pw)
		truth = tr
		pw.CloseWithError(err)
		errc <- err
	}()
	rep, err := forensics.Scan(context.Background(), sc, []forensics.Source{{Name: "gen.log", R: pr}})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return rep, truth
}

func checkQuality(t *testing.T, rep *forensics.Report, truth *synth.Truth) {
	t.Helper()
	q := score(t, rep, truth)
	perRule := map[string][2]int{}
	for _, in := range truth.Incidents {
		c := perRule[in.Rule]
		c[0]++
		perRule[in.Rule] = c
	}
	for _, in := range q.missed {
		c := perRule[in.Rule]
		c[1]++
		perRule[in.Rule] = c
		t.Errorf("missed incident %s (%s): sessions %v requests %v", in.ID, in.Note, in.Sessions, in.Requests)
	}
	for _, ri := range forensics.Rules() {
		c := perRule[ri.ID]
		t.Logf("rule %d %-20s injected %3d found %3d findings %d", ri.N, ri.ID, c[0], c[0]-c[1], rep.Stats.ByRule[ri.ID])
	}
	t.Logf("requests %d, sessions %d (benign %d), findings %d, false-positive sessions %d",
		rep.Stats.Requests, truth.Sessions, q.benign, len(rep.Findings), len(q.fpSessions))
	if len(q.fpSessions)*100000 > q.benign {
		for i, f := range q.fpFindings {
			if i == 10 {
				break
			}
			t.Logf("false positive: %s %s %v\n%s", f.Rule, f.Severity, f.Sessions, f.Evidence)
		}
		t.Errorf("%d false-positive sessions among %d benign: more than 1 per 100,000", len(q.fpSessions), q.benign)
	}
	if rep.Stats.Malformed != int64(truth.Truncated) || rep.Stats.Requests != int64(truth.Requests) {
		t.Errorf("scanned %d requests and %d malformed lines; the generator wrote %d whole lines and cut %d short: %v", rep.Stats.Requests, rep.Stats.Malformed, truth.Requests, truth.Truncated, rep.Stats.FirstBad)
	}
}

// TestTruthSmall checks recall and precision in-process (under -race in
// CI) on 100,000 requests; cmd/cordon's TestScanMillionAgainstTruth does
// the 1,000,000-request check with the real binary.
func TestTruthSmall(t *testing.T) {
	gc := synth.DefaultConfig()
	gc.Requests = 100000
	gc.Incidents = 3
	rep, truth := generateAndScan(t, gc, forensics.DefaultConfig())
	if len(truth.Incidents) != 27 {
		t.Fatalf("want 27 incidents, got %d", len(truth.Incidents))
	}
	checkQuality(t, rep, truth)
}

// TestTruthWithoutASN checks the same on a log whose writer has no ASN
// lookup (carrier NAT is then recognized by prefix).
func TestTruthWithoutASN(t *testing.T) {
	gc := synth.DefaultConfig()
	gc.Requests = 50000
	gc.Incidents = 2
	gc.Seed = 5
	gc.NoASN = true
	rep, truth := generateAndScan(t, gc, forensics.DefaultConfig())
	checkQuality(t, rep, truth)
}

// TestTruthDBSC checks rule 10 on a log where 30% of sessions are
// device-bound: every injected copy of a device-bound session found and
// reported as one incident, no finding on the benign lapses (the key's
// own browser unbound before its refresh), which are counted as noise.
func TestTruthDBSC(t *testing.T) {
	gc := synth.DefaultConfig()
	gc.Requests = 100000
	gc.Incidents = 4
	gc.Seed = 2026
	gc.DBSCShare = 0.3
	rep, truth := generateAndScan(t, gc, forensics.DefaultConfig())
	if len(truth.Incidents) != 40 {
		t.Fatalf("want 40 incidents, got %d", len(truth.Incidents))
	}
	checkQuality(t, rep, truth)

	injected := map[string]string{} // session -> incident
	for _, in := range truth.Incidents {
		for _, s := range in.Sessions {
			injected[s] = in.ID
		}
	}
	copies := 0
	for _, in := range truth.Incidents {
		if in.Rule != forensics.RuleDBSCCopy {
			continue
		}
		copies++
		var named []*forensics.Incident
		for _, ri := range rep.Incidents {
			if slices.Contains(ri.Sessions, in.Sessions[0]) {
				named = append(named, ri)
			}
		}
		if len(named) != 1 {
			t.Errorf("%s: %d incidents name its session, want 1", in.ID, len(named))
			continue
		}
		ri := named[0]
		for _, s := range ri.Sessions {
			if o, ok := injected[s]; ok && o != in.ID {
				t.Errorf("%s reported together with %s", in.ID, o)
			}
		}
		if ri.Severity < forensics.High || !slices.Contains(ri.Rules, forensics.RuleDBSCCopy) || !slices.Equal(ri.Owners, in.Principals[:1]) {
			t.Errorf("%s: incident %s %v owners %v", in.ID, ri.Severity, ri.Rules, ri.Owners)
		}
		if len(in.Principals) > 1 && !slices.Contains(ri.Recipients, in.Principals[1]) {
			t.Errorf("%s: recipients %v, want %s", in.ID, ri.Recipients, in.Principals[1])
		}
	}
	if copies != 4 {
		t.Fatalf("%d dbsc-copy incidents injected, want 4", copies)
	}
	lapses := truth.Noise["dbsc-lapse"]
	n := rep.Stats.Noise[forensics.RuleDBSCCopy+"/low"]
	// As many as written, give or take a line delivered twice or cut short.
	if lapses < 20 || n == nil || n.Count < int64(lapses)*49/50 || n.Count > int64(lapses)*51/50+1 {
		t.Errorf("generator wrote %d lapses; scan counted %+v", lapses, n)
	}

	// The lapses are listed at -min-severity low, and then every one of
	// them names a benign session: the false-positive check above would
	// see them if the rule did not tell the key's own browser apart.
	low := forensics.DefaultConfig()
	low.MinSeverity = forensics.Low
	rep, _ = generateAndScan(t, gc, low)
	benign := 0
	for _, f := range rep.Findings {
		if f.Rule == forensics.RuleDBSCCopy && f.Severity == forensics.Low {
			if _, ok := injected[f.Sessions[0]]; !ok {
				benign++
			}
		}
	}
	if benign < 10 {
		t.Errorf("%d low dbsc-copy findings on benign sessions at -min-severity low, want the lapses", benign)
	}
}

// TestScanSameWhateverTheWorkers: the number of parsing goroutines is a
// matter of speed only. Chunks are parsed in any order by any worker, so a
// merge that depended on which finished first would show here.
func TestScanSameWhateverTheWorkers(t *testing.T) {
	gc := synth.DefaultConfig()
	gc.Requests = 60000
	gc.Seed = 5
	var buf bytes.Buffer
	if _, err := synth.Generate(gc, &buf); err != nil {
		t.Fatal(err)
	}
	var want string
	for _, w := range []int{1, 2, 3, 8} {
		cfg := forensics.DefaultConfig()
		cfg.Workers = w
		cfg.ChunkSize = 64 << 10 // many chunks, so workers really interleave
		rep, err := forensics.Scan(context.Background(), cfg, []forensics.Source{{Name: "a", R: bytes.NewReader(buf.Bytes())}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Incidents) == 0 {
			t.Fatalf("workers=%d: no incidents in a log with injected ones", w)
		}
		rep.Stats.Seconds = 0
		got, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			want = string(got)
		} else if string(got) != want {
			t.Fatalf("workers=%d: the report differs from workers=1's", w)
		}
	}
}
