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

type jsonReport struct {
	Findings []jsonFinding `json:"findings"`
	Stats    Stats         `json:"stats"`
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
	out := jsonReport{Findings: make([]jsonFinding, 0, len(r.Findings)), Stats: r.Stats}
	for _, f := range r.Findings {
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
	if len(r.Findings) == 0 {
		fmt.Fprintln(bw, "\nno findings.")
		return bw.Flush()
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
	n := len(r.Findings)
	if top > 0 && n > top {
		n = top
	}
	fmt.Fprintf(bw, "\ntop %d findings:\n", n)
	for i, f := range r.Findings[:n] {
		fmt.Fprintf(bw, "\n%d. [%s] %s, %d request(s), %s .. %s\n", i+1, f.Severity, f.Rule, f.Count, f.First.Format(time.RFC3339), f.Last.Format(time.RFC3339))
		if len(f.Sessions) > 0 {
			fmt.Fprintf(bw, "   sessions:   %s\n", strings.Join(f.Sessions, " "))
		}
		if len(f.Principals) > 0 {
			fmt.Fprintf(bw, "   principals: %s\n", strings.Join(f.Principals, " "))
		}
		for _, l := range strings.Split(f.Evidence, "\n") {
			fmt.Fprintf(bw, "   %s\n", l)
		}
	}
	return bw.Flush()
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
