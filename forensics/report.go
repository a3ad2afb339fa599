package forensics

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

type jsonFinding struct {
	Rule       string   `json:"rule"`
	Severity   string   `json:"severity"`
	Sessions   []string `json:"sessions"`
	Principals []string `json:"principals"`
	Requests   []string `json:"requests"`
	First      string   `json:"first"`
	Last       string   `json:"last"`
	Count      int      `json:"count"`
	Evidence   string   `json:"evidence"`
}

type jsonIncident struct {
	ID         string   `json:"id"`
	Severity   string   `json:"severity"`
	Rules      []string `json:"rules"`
	Summary    string   `json:"summary"`
	Owners     []string `json:"owners"`
	Recipients []string `json:"recipients"`
	Sessions   []string `json:"sessions"`
	Hosts      []string `json:"hosts"`
	First      string   `json:"first"`
	Last       string   `json:"last"`
	Requests   []string `json:"requests"`
	// Findings index the report's findings array.
	Findings []int `json:"findings"`
}

type jsonSummary struct {
	Incidents      int            `json:"incidents"`
	BySeverity     map[string]int `json:"by_severity"`
	People         int            `json:"people_affected"`
	Owners         int            `json:"owners"`
	Recipients     int            `json:"recipients"`
	SessionsRevoke []string       `json:"sessions_to_revoke"`
	RevokeSeverity string         `json:"revoke_severity"`
	RevokeCommand  string         `json:"revoke_command"`
}

type jsonReport struct {
	Findings  []jsonFinding  `json:"findings"`
	Incidents []jsonIncident `json:"incidents"`
	Summary   jsonSummary    `json:"summary"`
	Stats     Stats          `json:"stats"`
}

// RevokeCommand is the command that revokes the sessions of the incidents
// at or above the report's RevokeSeverity: with the -sessions-out file when
// the report names one, else reading the list from stdin.
func (r *Report) RevokeCommand() string {
	if r.SessionsFile != "" {
		return "cordon revoke -from " + shellQuote(r.SessionsFile) + " -apply"
	}
	return "cordon revoke -from - -apply"
}

func shellQuote(s string) string {
	safe := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./=:@+,", c)) {
			safe = false
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteJSON writes the report as
// {"findings":[{"rule","severity","sessions","principals","requests","first","last","count","evidence"}],"stats":{...}}.
func (r *Report) WriteJSON(w io.Writer) error {
	out := jsonReport{Findings: make([]jsonFinding, 0, len(r.Findings)), Incidents: make([]jsonIncident, 0, len(r.Incidents)), Stats: r.Stats}
	idx := map[*Finding]int{}
	for i, f := range r.Findings {
		idx[f] = i
		out.Findings = append(out.Findings, jsonFinding{
			Rule:       f.Rule,
			Severity:   f.Severity.String(),
			Sessions:   nonNil(f.Sessions),
			Principals: nonNil(f.Principals),
			Requests:   nonNil(f.Requests),
			First:      f.First.Format(time.RFC3339Nano),
			Last:       f.Last.Format(time.RFC3339Nano),
			Count:      f.Count,
			Evidence:   f.Evidence,
		})
	}
	for _, in := range r.Incidents {
		ji := jsonIncident{ID: in.ID, Severity: in.Severity.String(), Rules: nonNil(in.Rules), Summary: in.Summary,
			Owners: nonNil(in.Owners), Recipients: nonNil(in.Recipients), Sessions: nonNil(in.Sessions), Hosts: nonNil(in.Hosts),
			First: in.First.Format(time.RFC3339Nano), Last: in.Last.Format(time.RFC3339Nano), Requests: nonNil(in.Requests), Findings: []int{}}
		for _, f := range in.Findings {
			ji.Findings = append(ji.Findings, idx[f])
		}
		out.Incidents = append(out.Incidents, ji)
	}
	sum := &out.Summary
	sum.Incidents = len(r.Incidents)
	sum.BySeverity = map[string]int{}
	for _, in := range r.Incidents {
		sum.BySeverity[in.Severity.String()]++
	}
	sum.People, sum.Owners, sum.Recipients = r.Affected(Info)
	sum.SessionsRevoke = nonNil(r.SessionsToRevoke(r.RevokeSeverity))
	sum.RevokeSeverity = r.RevokeSeverity.String()
	sum.RevokeCommand = r.RevokeCommand()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("forensics: write json: %w", err)
	}
	return nil
}

// WriteText writes a human summary: what was read, counts by rule and
// severity, and the top findings with their evidence lines.
func (r *Report) WriteText(w io.Writer, top int) error {
	bw := bufio.NewWriter(w)
	s := r.Stats
	fmt.Fprintf(bw, "cordon scan: %d requests in %d lines (%s) from %d input(s) in %.1fs", s.Requests, s.Lines, humanBytes(s.Bytes), s.Files, s.Seconds)
	if s.Seconds > 0 {
		fmt.Fprintf(bw, ", %.0f MB/s", float64(s.Bytes)/1e6/s.Seconds)
	}
	fmt.Fprintln(bw)
	if s.First != "" {
		fmt.Fprintf(bw, "time range: %s .. %s; %d sessions seen\n", s.First, s.Last, s.Sessions)
	}
	if s.Malformed > 0 {
		fmt.Fprintf(bw, "malformed lines: %d (skipped)\n", s.Malformed)
		for _, m := range s.FirstBad {
			fmt.Fprintf(bw, "  %s:%d: %s\n", m.File, m.Line, m.Reason)
		}
	}
	if s.Late > 0 {
		fmt.Fprintf(bw, "late lines (further out of order than the skew): %d\n", s.Late)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(bw, "read error: %s\n", e)
	}
	writeNoise(bw, s)
	if len(r.Findings) == 0 {
		fmt.Fprintln(bw, "\nno incidents, no findings.")
		return bw.Flush()
	}
	people, owners, recips := r.Affected(Info)
	revoke := r.SessionsToRevoke(r.RevokeSeverity)
	fmt.Fprintf(bw, "\n%d incident(s);", len(r.Incidents))
	for sev := Critical; sev >= Info; sev-- {
		n := 0
		for _, in := range r.Incidents {
			if in.Severity == sev {
				n++
			}
		}
		if n > 0 {
			fmt.Fprintf(bw, " %s %d", sev, n)
		}
	}
	fmt.Fprintf(bw, "\npeople affected: %d (%d whose sessions went to someone else, %d shown or given another's session)\n", people, owners, recips)
	fmt.Fprintf(bw, "sessions to revoke (incidents at %s or above): %d\n", r.RevokeSeverity, len(revoke))
	if len(revoke) > 0 {
		if r.SessionsFile != "" {
			fmt.Fprintf(bw, "  revoke them: %s\n", r.RevokeCommand())
		} else {
			fmt.Fprintf(bw, "  revoke them: cordon scan -sessions-out revoke.txt ... then cordon revoke -from revoke.txt -apply\n")
		}
	}
	n := len(r.Incidents)
	if top > 0 && n > top {
		n = top
	}
	if n < len(r.Incidents) {
		fmt.Fprintf(bw, "\nthe first %d incidents:\n", n)
	}
	for _, in := range r.Incidents[:n] {
		fmt.Fprintf(bw, "\n%s [%s] %s, %s .. %s\n", in.ID, in.Severity, strings.Join(in.Rules, ", "), in.First.Format(time.RFC3339), in.Last.Format(time.RFC3339))
		fmt.Fprintf(bw, "   %s\n", in.Summary)
		if len(in.Owners) > 0 {
			fmt.Fprintf(bw, "   owner:      %s\n", strings.Join(in.Owners, " "))
		}
		if len(in.Recipients) > 0 {
			fmt.Fprintf(bw, "   recipient:  %s\n", strings.Join(in.Recipients, " "))
		}
		if len(in.Sessions) > 0 {
			fmt.Fprintf(bw, "   sessions:   %s\n", strings.Join(in.Sessions, " "))
		}
		for _, f := range in.Findings {
			fmt.Fprintf(bw, "   %s (%s), %d request(s):\n", f.Rule, f.Severity, f.Count)
			for _, l := range strings.Split(f.Evidence, "\n") {
				fmt.Fprintf(bw, "     %s\n", l)
			}
		}
	}
	fmt.Fprintf(bw, "\n%d findings; by severity:", len(r.Findings))
	for sev := Critical; sev >= Info; sev-- {
		if n := s.BySeverity[sev.String()]; n > 0 {
			fmt.Fprintf(bw, " %s %d", sev, n)
		}
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "by rule:")
	for _, ri := range Rules() {
		if n := s.ByRule[ri.ID]; n > 0 {
			fmt.Fprintf(bw, "  %d %-20s %6d\n", ri.N, ri.ID, n)
		}
	}
	return bw.Flush()
}

// writeNoise writes the counts of what was not listed: hits below
// -min-severity per rule with an example, and benign look-alikes.
func writeNoise(bw *bufio.Writer, s Stats) {
	if len(s.Noise) == 0 && len(s.Benign) == 0 {
		return
	}
	fmt.Fprintln(bw, "counted, not listed:")
	for _, n := range s.noiseList() {
		{
			fmt.Fprintf(bw, "  %s (%s, below -min-severity): %d", n.Rule, n.Severity, n.Count)
			if len(n.Examples) > 0 {
				fmt.Fprintf(bw, ", e.g. %s", strings.SplitN(n.Examples[0], "\n", 2)[0])
			}
			fmt.Fprintln(bw)
		}
	}
	if n := s.Benign[BenignOwnCache]; n > 0 {
		fmt.Fprintf(bw, "  shared-cache hits served to the principal they were produced for (not a leak): %d\n", n)
	}
}

// WriteSessions writes the fingerprints of the sessions to revoke (findings
// at or above min), one per line.
func (r *Report) WriteSessions(w io.Writer, min Severity) error {
	bw := bufio.NewWriter(w)
	for _, s := range r.SessionsToRevoke(min) {
		fmt.Fprintln(bw, s)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("forensics: write sessions: %w", err)
	}
	return nil
}

// WriteRules lists the rules with ids, severities, flags and known false
// positives.
func WriteRules(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, ri := range Rules() {
		fmt.Fprintf(bw, "%d. %s (%s)\n", ri.N, ri.ID, ri.Severity)
		fmt.Fprintf(bw, "   fires when: %s\n", ri.Summary)
		fmt.Fprintf(bw, "   false positives: %s\n", ri.FalsePositives)
		if ri.Flags != "" {
			fmt.Fprintf(bw, "   thresholds: %s\n", ri.Flags)
		}
		fmt.Fprintln(bw)
	}
	return bw.Flush()
}

func humanBytes(n int64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// principalsOf lists the distinct principals of spans and uses, sorted.
func principalsOf(t SessionTimeline) []string {
	set := map[string]bool{}
	for _, s := range t.Spans {
		if s.Principals != "" {
			set[s.Principals] = true
		}
	}
	for _, u := range t.Uses {
		if u.Principal != "" {
			set[u.Principal] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// noiseList returns the noise counts in rule order, higher severities first.
func (s Stats) noiseList() []*NoiseCount {
	var out []*NoiseCount
	for _, ri := range Rules() {
		for sev := Critical; sev >= Info; sev-- {
			if n := s.Noise[ri.ID+"/"+sev.String()]; n != nil {
				out = append(out, n)
			}
		}
	}
	return out
}
