package forensics

import (
	"fmt"
	"html/template"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// The HTML report is one page with no external resources: inline CSS and,
// per finding, an inline SVG timeline of the session's uses: one row per
// (network, client), bars for use before the finding, dots for each
// request from then on, red for the requests that fired the rule.

type svgRow struct {
	Y     int
	Label string
}

type svgBar struct {
	X, Y, W int
	Title   string
}

type svgDot struct {
	X, Y  int
	Color string
	Title string
	Hit   bool
}

type svgTick struct {
	X      int
	Label  string
	Anchor string
}

type svgChart struct {
	Session string
	Width   int
	Height  int
	Rows    []svgRow
	Bars    []svgBar
	Dots    []svgDot
	Ticks   []svgTick
	Legend  []svgLegend
	Dropped int
}

type svgLegend struct {
	Color, Principal string
	X                int
}

type htmlFinding struct {
	N          int
	Rule       string
	Severity   string
	Sessions   []string
	Principals []string
	Requests   []string
	First      string
	Last       string
	Count      int
	Evidence   string
	Charts     []svgChart
}

type htmlIncident struct {
	ID         string
	Severity   string
	Rules      string
	Summary    string
	Owners     string
	Recipients string
	Sessions   []string
	Hosts      string
	First      string
	Last       string
	Findings   []htmlFinding
}

type htmlNoise struct {
	Rule, Severity string
	Count          int64
	Examples       []string
}

type htmlPage struct {
	Stats          Stats
	Incidents      []htmlIncident
	BySeverity     []htmlSevCount
	People         int
	Owners         int
	Recipients     int
	Revoke         []string
	RevokeSeverity string
	RevokeCommand  string
	SessionsFile   string
	Timeline       incidentChart
	Noise          []htmlNoise
	BenignCache    int64
	Findings       int
	Rules          []RuleInfo
	Bytes          string
}

type htmlSevCount struct {
	Severity string
	N        int
}

var palette = []string{"#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#e377c2", "#7f7f7f"}

const (
	chartLeft  = 260
	chartRight = 20
	chartWidth = 900
	rowHeight  = 22
)

func buildChart(t SessionTimeline, hits map[string]bool) svgChart {
	c := svgChart{Session: t.Session, Width: chartWidth, Dropped: t.Dropped}
	var lo, hi time.Time
	span := func(a, b time.Time) {
		if lo.IsZero() || a.Before(lo) {
			lo = a
		}
		if hi.IsZero() || b.After(hi) {
			hi = b
		}
	}
	for _, s := range t.Spans {
		span(s.First, s.Last)
	}
	for _, u := range t.Uses {
		span(u.TS, u.TS)
	}
	if lo.IsZero() {
		return c
	}
	if !hi.After(lo) {
		hi = lo.Add(time.Second)
	}
	plot := chartWidth - chartLeft - chartRight
	x := func(t time.Time) int {
		return chartLeft + int(float64(plot)*float64(t.Sub(lo))/float64(hi.Sub(lo)))
	}
	rows := map[string]int{}
	row := func(label string) int {
		if r, ok := rows[label]; ok {
			return r
		}
		r := len(rows)
		rows[label] = r
		c.Rows = append(c.Rows, svgRow{Y: 30 + r*rowHeight, Label: clip(label, 40)})
		return r
	}
	colors := map[string]string{}
	color := func(p string) string {
		if p == "" {
			return "#999999"
		}
		if c, ok := colors[p]; ok {
			return c
		}
		col := palette[len(colors)%len(palette)]
		colors[p] = col
		return col
	}
	for _, s := range t.Spans {
		r := row(s.Network + "  " + s.Client)
		w := max(3, x(s.Last)-x(s.First))
		color(s.Principals)
		c.Bars = append(c.Bars, svgBar{X: x(s.First), Y: 30 + r*rowHeight - 5, W: w,
			Title: fmt.Sprintf("%d requests from %s (%s), %s .. %s, %s", s.Count, s.Network, s.Client, s.First.Format(time.RFC3339), s.Last.Format(time.RFC3339), s.Principals)})
	}
	for _, u := range t.Uses {
		r := row(networkOf(u.IP) + "  " + u.Client)
		c.Dots = append(c.Dots, svgDot{X: x(u.TS), Y: 30 + r*rowHeight, Color: color(u.Principal), Hit: hits[u.Req],
			Title: fmt.Sprintf("%s %s from %s (%s) as %q, request %s", u.TS.Format(time.RFC3339Nano), t.Session, u.IP, u.Client, u.Principal, u.Req)})
	}
	c.Height = 30 + len(rows)*rowHeight + 30
	for i := 0; i <= 4; i++ {
		tt := lo.Add(time.Duration(float64(hi.Sub(lo)) * float64(i) / 4))
		anchor := "middle"
		if i == 4 {
			anchor = "end"
		}
		c.Ticks = append(c.Ticks, svgTick{X: x(tt), Label: tt.Format("01-02 15:04:05"), Anchor: anchor})
	}
	ps := make([]string, 0, len(colors))
	for p := range colors {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	for i, p := range ps {
		c.Legend = append(c.Legend, svgLegend{Color: colors[p], Principal: p, X: chartLeft + i*120})
	}
	return c
}

func networkOf(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 64
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ip
	}
	return p.String()
}

// incidentChart is the page's overview: one row per host, one mark per
// incident from its first to its last request, over the log's time range.
type incidentChart struct {
	Width, Height int
	Rows          []svgRow
	Marks         []incidentMark
	Ticks         []svgTick
	Axis          int
}

type incidentMark struct {
	ID          string
	X, Y, W     int
	Color       string
	Title       string
	LabelX      int
	LabelY      int
	LabelAnchor string
}

var severityColor = map[Severity]string{Critical: "#b00020", High: "#d9480f", Medium: "#e0a800", Low: "#4dabf7", Info: "#adb5bd"}

func buildIncidentChart(r *Report) incidentChart {
	c := incidentChart{Width: chartWidth}
	lo, err1 := time.Parse(time.RFC3339Nano, r.Stats.First)
	hi, err2 := time.Parse(time.RFC3339Nano, r.Stats.Last)
	if err1 != nil || err2 != nil {
		return c
	}
	for _, in := range r.Incidents {
		if in.First.Before(lo) {
			lo = in.First
		}
		if in.Last.After(hi) {
			hi = in.Last
		}
	}
	if !hi.After(lo) {
		hi = lo.Add(time.Second)
	}
	hosts := append([]string(nil), r.hosts...)
	for _, in := range r.Incidents {
		for _, h := range in.Hosts {
			if !slicesContains(hosts, h) {
				hosts = append(hosts, h)
			}
		}
	}
	sort.Strings(hosts)
	if len(hosts) > 64 {
		// Many hosts: draw only those with incidents.
		hosts = hosts[:0]
		for _, in := range r.Incidents {
			for _, h := range in.Hosts {
				if !slicesContains(hosts, h) {
					hosts = append(hosts, h)
				}
			}
		}
		sort.Strings(hosts)
	}
	if len(hosts) == 0 {
		hosts = []string{"?"}
	}
	row := map[string]int{}
	const left, top, rh = 120, 20, 26
	for i, h := range hosts {
		row[h] = i
		c.Rows = append(c.Rows, svgRow{Y: top + i*rh + rh/2, Label: clip(h, 18)})
	}
	plot := chartWidth - left - chartRight
	x := func(t time.Time) int {
		return left + int(float64(plot)*float64(t.Sub(lo))/float64(hi.Sub(lo)))
	}
	for _, in := range r.Incidents {
		hs := in.Hosts
		if len(hs) == 0 {
			hs = []string{hosts[0]}
		}
		for _, h := range hs {
			y := top + row[h]*rh + 4
			x0 := x(in.First)
			w := max(6, x(in.Last)-x0)
			m := incidentMark{ID: in.ID, X: x0, Y: y, W: w, Color: severityColor[in.Severity],
				Title:  fmt.Sprintf("%s %s on %s, %s .. %s: %s", in.ID, in.Severity, h, in.First.Format(time.RFC3339), in.Last.Format(time.RFC3339), clip(in.Summary, 200)),
				LabelX: x0 + w + 3, LabelY: y + 12, LabelAnchor: "start"}
			if m.LabelX > chartWidth-40 {
				m.LabelX, m.LabelAnchor = x0-3, "end"
			}
			c.Marks = append(c.Marks, m)
		}
	}
	c.Axis = top + len(hosts)*rh + 4
	c.Height = c.Axis + 24
	for i := 0; i <= 4; i++ {
		tt := lo.Add(time.Duration(float64(hi.Sub(lo)) * float64(i) / 4))
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 4:
			anchor = "end"
		}
		c.Ticks = append(c.Ticks, svgTick{X: x(tt), Label: tt.Format("01-02 15:04"), Anchor: anchor})
	}
	return c
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func htmlFindingOf(n int, f *Finding) htmlFinding {
	hits := map[string]bool{}
	for _, q := range f.Requests {
		hits[q] = true
	}
	hf := htmlFinding{N: n, Rule: f.Rule, Severity: f.Severity.String(), Sessions: f.Sessions, Principals: f.Principals,
		Requests: f.Requests, First: f.First.Format(time.RFC3339Nano), Last: f.Last.Format(time.RFC3339Nano), Count: f.Count, Evidence: f.Evidence}
	for _, t := range f.Timeline() {
		hf.Charts = append(hf.Charts, buildChart(t, hits))
	}
	return hf
}

// WriteHTML writes the report as one self-contained HTML page (no script,
// no external resource) that leads with the answers: how many incidents,
// how many people, which sessions to revoke and the command that does it,
// a timeline of the incidents by host; then each incident, expandable to
// its evidence lines and a timeline of each session's uses.
func (r *Report) WriteHTML(w io.Writer) error {
	page := htmlPage{Stats: r.Stats, Rules: Rules(), Bytes: humanBytes(r.Stats.Bytes), Findings: len(r.Findings),
		RevokeSeverity: r.RevokeSeverity.String(), RevokeCommand: r.RevokeCommand(), SessionsFile: r.SessionsFile}
	page.People, page.Owners, page.Recipients = r.Affected(Info)
	page.Revoke = r.SessionsToRevoke(r.RevokeSeverity)
	for sev := Critical; sev >= Info; sev-- {
		if n := countSeverity(r.Incidents, sev); n > 0 {
			page.BySeverity = append(page.BySeverity, htmlSevCount{sev.String(), n})
		}
	}
	page.Timeline = buildIncidentChart(r)
	n := 0
	for _, in := range r.Incidents {
		hi := htmlIncident{ID: in.ID, Severity: in.Severity.String(), Rules: strings.Join(in.Rules, ", "), Summary: in.Summary,
			Owners: strings.Join(in.Owners, ", "), Recipients: strings.Join(in.Recipients, ", "), Sessions: in.Sessions,
			Hosts: strings.Join(in.Hosts, ", "), First: in.First.Format(time.RFC3339), Last: in.Last.Format(time.RFC3339)}
		for _, f := range in.Findings {
			n++
			hi.Findings = append(hi.Findings, htmlFindingOf(n, f))
		}
		page.Incidents = append(page.Incidents, hi)
	}
	for _, nc := range r.Stats.noiseList() {
		page.Noise = append(page.Noise, htmlNoise{Rule: nc.Rule, Severity: nc.Severity, Count: nc.Count, Examples: nc.Examples})
	}
	page.BenignCache = r.Stats.Benign[BenignOwnCache]
	if err := htmlTmpl.Execute(w, page); err != nil {
		return fmt.Errorf("forensics: write html: %w", err)
	}
	return nil
}

func countSeverity(ins []*Incident, sev Severity) int {
	n := 0
	for _, in := range ins {
		if in.Severity == sev {
			n++
		}
	}
	return n
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cordon scan report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
.critical{color:#fff;background:#b00020}.high{color:#fff;background:#d9480f}.medium{background:#ffd43b}.low{background:#d0ebff}.info{background:#eee}
.sev{padding:1px 6px;border-radius:3px;font-weight:bold}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:6px;font-size:12px}
code{font-size:12px} svg{border:1px solid #ddd;background:#fff;margin:4px 0}
#summary{border:2px solid #333;padding:10px 16px;border-radius:6px;background:#fafafa}
#summary .big{font-size:1.5em;font-weight:bold;margin:0 0 6px}
#summary ul{margin:4px 0;padding-left:1.2em}
details{border:1px solid #ccc;border-radius:4px;padding:6px 10px;margin:8px 0}
details>summary{cursor:pointer}
.clean{color:#2b8a3e}
</style></head><body>
<h1>cordon scan report</h1>
<section id="summary" aria-label="summary">
{{if .Incidents}}<p class="big" id="incident-count">{{len .Incidents}} incident{{if ne (len .Incidents) 1}}s{{end}}{{range .BySeverity}} <span class="sev {{.Severity}}">{{.N}} {{.Severity}}</span>{{end}}</p>
<ul>
<li id="people"><b>{{.People}} {{if eq .People 1}}person{{else}}people{{end}} affected</b>: {{.Owners}} whose session went to someone else, {{.Recipients}} shown or given another's session</li>
<li id="revoke-count"><b>{{len .Revoke}} session{{if ne (len .Revoke) 1}}s{{end}} to revoke</b> (incidents at {{.RevokeSeverity}} or above)</li>
</ul>
{{if .Revoke}}<p>Revoke them:</p>
{{if .SessionsFile}}<pre id="revoke-command">{{.RevokeCommand}}</pre>
<p>(<code>{{.SessionsFile}}</code> was written by this scan's <code>-sessions-out</code>; add <code>-store URL</code> for your session store; without <code>-apply</code> it only shows what it would revoke.)</p>
{{else}}<pre id="revoke-command">{{.RevokeCommand}} &lt;&lt;'EOF'
{{range .Revoke}}{{.}}
{{end}}EOF</pre>
<p>(add <code>-store URL</code> for your session store; without <code>-apply</code> it only shows what it would revoke.)</p>{{end}}{{end}}
{{else}}<p class="big clean" id="incident-count">No incidents</p><p>No session went to the wrong person in these logs, as far as the rules can see.</p>{{end}}
<p>Read {{.Stats.Requests}} requests ({{.Bytes}}) from {{.Stats.Files}} input(s), {{.Stats.First}} .. {{.Stats.Last}}; {{.Stats.Sessions}} sessions; {{.Stats.Malformed}} malformed and {{.Stats.Late}} late lines.</p>
{{range .Stats.Errors}}<p><b>read error:</b> {{.}}</p>{{end}}
</section>
{{with .Timeline}}{{if .Rows}}
<h2>Incidents by host</h2>
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="incidents by host over the log's time range">
{{range .Rows}}<text x="6" y="{{.Y}}" dy="4" font-size="11">{{.Label}}</text><line x1="120" x2="880" y1="{{.Y}}" y2="{{.Y}}" stroke="#eee"/>
{{end}}{{range .Marks}}<a href="#{{.ID}}"><rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="16" rx="3" fill="{{.Color}}"><title>{{.Title}}</title></rect><text x="{{.LabelX}}" y="{{.LabelY}}" font-size="10" text-anchor="{{.LabelAnchor}}">{{.ID}}</text></a>
{{end}}{{$a := .Axis}}<line x1="120" x2="880" y1="{{$a}}" y2="{{$a}}" stroke="#999"/>{{range .Ticks}}<text x="{{.X}}" y="{{$a}}" dy="14" font-size="10" text-anchor="{{.Anchor}}">{{.Label}}</text>
{{end}}</svg>{{end}}{{end}}
{{if .Incidents}}<h2>Incidents</h2>{{end}}
{{range .Incidents}}
<details id="{{.ID}}"><summary><b>{{.ID}}</b> <span class="sev {{.Severity}}">{{.Severity}}</span> {{.Rules}}: {{if .Owners}}{{.Owners}}{{end}}{{if .Recipients}} &rarr; {{.Recipients}}{{end}}, {{.First}} .. {{.Last}}</summary>
<p>{{.Summary}}</p>
<p>owner: {{.Owners}}{{if .Recipients}}<br>recipient: {{.Recipients}}{{end}}<br>hosts: {{.Hosts}}<br>sessions to revoke: <code>{{range .Sessions}}{{.}} {{end}}</code></p>
{{range .Findings}}
<h3 id="f{{.N}}"><span class="sev {{.Severity}}">{{.Severity}}</span> {{.Rule}}, {{.Count}} request(s), {{.First}} .. {{.Last}}</h3>
<pre>{{.Evidence}}</pre>
<p>requests: <code>{{range .Requests}}{{.}} {{end}}</code></p>
{{range .Charts}}{{if .Rows}}
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="timeline of session {{.Session}}">
<text x="6" y="16" font-size="12" font-weight="bold">session {{.Session}}{{if .Dropped}} ({{.Dropped}} later uses not drawn){{end}}</text>
{{range .Rows}}<text x="6" y="{{.Y}}" dy="4" font-size="11">{{.Label}}</text><line x1="260" x2="880" y1="{{.Y}}" y2="{{.Y}}" stroke="#eee"/>
{{end}}{{range .Bars}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="10" fill="#adb5bd" opacity="0.7"><title>{{.Title}}</title></rect>
{{end}}{{range .Dots}}<circle cx="{{.X}}" cy="{{.Y}}" r="{{if .Hit}}6{{else}}4{{end}}" fill="{{.Color}}"{{if .Hit}} stroke="#d00" stroke-width="2"{{end}}><title>{{.Title}}</title></circle>
{{end}}{{$h := .Height}}{{range .Ticks}}<text x="{{.X}}" y="{{$h}}" dy="-16" font-size="10" text-anchor="{{.Anchor}}">{{.Label}}</text>
{{end}}{{range .Legend}}<circle cx="{{.X}}" cy="{{$h}}" r="4" transform="translate(0,-5)" fill="{{.Color}}"/><text x="{{.X}}" dx="8" y="{{$h}}" dy="-2" font-size="10">{{.Principal}}</text>
{{end}}</svg>{{end}}{{end}}
{{end}}
</details>
{{end}}
{{if or .Noise .BenignCache}}<h2>Counted, not listed</h2>
<table><tr><th>rule</th><th>severity</th><th>count</th><th>examples</th></tr>
{{range .Noise}}<tr><td>{{.Rule}}</td><td>{{.Severity}}</td><td>{{.Count}}</td><td>{{range .Examples}}<pre>{{.}}</pre>{{end}}</td></tr>
{{end}}{{if .BenignCache}}<tr><td>cache-leak</td><td>none</td><td>{{.BenignCache}}</td><td>shared-cache hits served to the principal they were produced for: not a leak</td></tr>{{end}}
</table>
<p>Lower <code>-min-severity</code> to list what is below it as findings.</p>{{end}}
{{if .Stats.FirstBad}}<h2>Malformed lines</h2><ul>{{range .Stats.FirstBad}}<li><code>{{.File}}:{{.Line}}</code>: {{.Reason}}</li>{{end}}</ul>{{end}}
<h2>Rules</h2>
<p>{{.Findings}} finding(s) in all, grouped into the incidents above.</p>
<table><tr><th>#</th><th>id</th><th>severity</th><th>fires when</th><th>known false positives</th></tr>
{{range .Rules}}<tr><td>{{.N}}</td><td>{{.ID}}</td><td>{{.Severity}}</td><td>{{.Summary}}</td><td>{{.FalsePositives}}</td></tr>{{end}}
</table></body></html>
`))
