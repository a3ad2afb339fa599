package forensics

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Incident is one leak: every finding that concerns the same session or
// sessions, the same process window or the same pair of principals,
// grouped, with one severity and an account in plain words.
type Incident struct {
	ID       string   // "I1", "I2", … by severity, then time
	Severity Severity // the highest of its findings
	Rules    []string // the rules that saw it, in rule order
	// Summary is one paragraph: whose session went to whom, where, when,
	// and how the recipient went on using it.
	Summary string
	// Owners are the principals whose sessions leaked; Recipients those
	// shown or given them (empty when the log cannot tell, e.g. a copy
	// used by an anonymous client).
	Owners     []string
	Recipients []string
	// Sessions are the fingerprints to revoke.
	Sessions []string
	Hosts    []string
	// First and Last are the first and last request of the incident: the
	// requests that fired its rules and the recipient's later uses.
	First, Last time.Time
	Requests    []string
	Findings    []*Finding
}

// People returns the distinct principals an incident concerns.
func (in *Incident) People() []string {
	var out []string
	for _, p := range append(append([]string(nil), in.Owners...), in.Recipients...) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// groupIncidents puts findings that concern one leak into one incident:
// findings that share a session or a request, process-handoff findings of
// one process within window requests (by seq), and findings about the
// same owner and recipient within an hour.
func groupIncidents(fs []*Finding, window int64) []*Incident {
	parent := make([]int, len(fs))
	for i := range parent {
		parent[i] = i
	}
	var findRoot func(int) int
	findRoot = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := findRoot(a), findRoot(b)
		if ra != rb {
			parent[max(ra, rb)] = min(ra, rb)
		}
	}
	bySession := map[string]int{}
	byReq := map[string]int{}
	type proc struct {
		host string
		pid  int64
	}
	byProc := map[proc][]int{}
	type pair struct{ a, b string }
	byPair := map[pair][]int{}
	for i, f := range fs {
		for _, s := range f.Sessions {
			if j, ok := bySession[s]; ok {
				union(i, j)
			} else {
				bySession[s] = i
			}
		}
		for _, q := range f.Requests {
			if j, ok := byReq[q]; ok {
				union(i, j)
			} else {
				byReq[q] = i
			}
		}
		if f.Rule == RuleProcessHandoff && f.host != "" {
			k := proc{f.host, f.pid}
			for _, j := range byProc[k] {
				if d := fs[j].seq - f.seq; d <= window && d >= -window {
					union(i, j)
				}
			}
			byProc[k] = append(byProc[k], i)
		}
		if f.owner != "" && f.recipient != "" && f.owner != f.recipient {
			k := pair{f.owner, f.recipient}
			for _, j := range byPair[k] {
				if d := f.First.Sub(fs[j].First); d < time.Hour && d > -time.Hour {
					union(i, j)
				}
			}
			byPair[k] = append(byPair[k], i)
		}
	}
	groups := map[int][]*Finding{}
	var roots []int
	for i, f := range fs {
		r := findRoot(i)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], f)
	}
	var out []*Incident
	for _, r := range roots {
		out = append(out, newIncident(groups[r]))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Severity != out[j].Severity {
			return out[i].Severity > out[j].Severity
		}
		return out[i].First.Before(out[j].First)
	})
	for i, in := range out {
		in.ID = fmt.Sprintf("I%d", i+1)
	}
	return out
}

func addUniq(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func newIncident(fs []*Finding) *Incident {
	in := &Incident{Findings: fs}
	ruleN := map[string]int{}
	for _, ri := range Rules() {
		ruleN[ri.ID] = ri.N
	}
	// The finding that tells the story: the most severe, then the earliest.
	lead := fs[0]
	for _, f := range fs {
		if f.Severity > in.Severity {
			in.Severity = f.Severity
		}
		if f.Severity > lead.Severity || f.Severity == lead.Severity && f.First.Before(lead.First) {
			lead = f
		}
		in.Rules = addUniq(in.Rules, f.Rule)
		for _, s := range f.Sessions {
			in.Sessions = addUniq(in.Sessions, s)
		}
		for _, q := range f.Requests {
			in.Requests = addUniq(in.Requests, q)
		}
		in.Hosts = addUniq(in.Hosts, f.host)
		if in.First.IsZero() || f.First.Before(in.First) {
			in.First = f.First
		}
		if f.Last.After(in.Last) {
			in.Last = f.Last
		}
	}
	for _, f := range fs {
		in.Owners = addUniq(in.Owners, f.owner)
	}
	for _, f := range fs {
		if !slices.Contains(in.Owners, f.recipient) {
			in.Recipients = addUniq(in.Recipients, f.recipient)
		}
	}
	if len(in.Owners) == 0 {
		for _, f := range fs {
			for _, p := range f.Principals {
				in.Owners = addUniq(in.Owners, p)
			}
		}
	}
	sort.Slice(in.Rules, func(i, j int) bool { return ruleN[in.Rules[i]] < ruleN[in.Rules[j]] })
	sort.Strings(in.Sessions)
	sort.Strings(in.Hosts)

	// What the recipient's client did with the session afterwards.
	var b strings.Builder
	story := lead.story
	if story == "" {
		story = strings.SplitN(lead.Evidence, "\n", 2)[0]
	}
	b.WriteString(story)
	b.WriteString(".")
	if lead.client != "" && lead.Rule != RuleGuardEvent {
		n, last := 0, time.Time{}
		seen := map[*timeline]bool{}
		for _, f := range fs {
			for _, t := range f.timelines {
				if seen[t] {
					continue
				}
				seen[t] = true
				for _, u := range t.uses {
					if u.Client == lead.client && u.TS.After(lead.First) {
						n++
						if u.TS.After(last) {
							last = u.TS
						}
					}
				}
			}
		}
		who := "That client"
		if lead.recipient != "" {
			who = lead.recipient + "'s client"
		}
		if n > 0 {
			fmt.Fprintf(&b, " %s used it %d more time(s), until %s.", who, n, last.Format("15:04:05"))
			if last.After(in.Last) {
				in.Last = last
			}
		}
	}
	if len(in.Rules) > 1 {
		fmt.Fprintf(&b, " Seen by %d rules: %s.", len(in.Rules), strings.Join(in.Rules, ", "))
	}
	if len(in.Sessions) > 1 {
		fmt.Fprintf(&b, " %d sessions are involved.", len(in.Sessions))
	}
	in.Summary = b.String()
	return in
}

// Affected counts the people of the incidents at or above min: owners
// (whose sessions leaked) and recipients (shown or given another's
// session), each person once.
func (r *Report) Affected(min Severity) (people, owners, recipients int) {
	all, own, rec := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, in := range r.Incidents {
		if in.Severity < min {
			continue
		}
		for _, p := range in.Owners {
			own[p], all[p] = true, true
		}
		for _, p := range in.Recipients {
			rec[p], all[p] = true, true
		}
	}
	return len(all), len(own), len(rec)
}

// IncidentsAtOrAbove counts the incidents of severity min or higher.
func (r *Report) IncidentsAtOrAbove(min Severity) int {
	n := 0
	for _, in := range r.Incidents {
		if in.Severity >= min {
			n++
		}
	}
	return n
}
