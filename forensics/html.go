package forensics

import (
	"fmt"
	"html/template"
	"io"
	"net/netip"
	"sort"
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

type htmlPage struct {
	Stats    Stats
	Findings []htmlFinding
	Rules    []RuleInfo
	Bytes    string
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

// WriteHTML writes the report as one self-contained HTML page with an SVG
// timeline per finding: who used the session, from where, when.
func (r *Report) WriteHTML(w io.Writer) error {
	page := htmlPage{Stats: r.Stats, Rules: Rules(), Bytes: humanBytes(r.Stats.Bytes)}
	for i, f := range r.Findings {
		hits := map[string]bool{}
		for _, q := range f.Requests {
			hits[q] = true
		}
		hf := htmlFinding{N: i + 1, Rule: f.Rule, Severity: f.Severity.String(), Sessions: f.Sessions, Principals: f.Principals,
			Requests: f.Requests, First: f.First.Format(time.RFC3339Nano), Last: f.Last.Format(time.RFC3339Nano), Count: f.Count, Evidence: f.Evidence}
		for _, t := range f.Timeline() {
			hf.Charts = append(hf.Charts, buildChart(t, hits))
		}
		page.Findings = append(page.Findings, hf)
	}
	if err := htmlTmpl.Execute(w, page); err != nil {
		return fmt.Errorf("forensics: write html: %w", err)
	}
	return nil
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cordon scan report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:2em}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
.critical{color:#fff;background:#b00020}.high{color:#fff;background:#d9480f}.medium{background:#ffd43b}.low{background:#d0ebff}.info{background:#eee}
.sev{padding:1px 6px;border-radius:3px;font-weight:bold}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:6px;font-size:12px}
code{font-size:12px} svg{border:1px solid #ddd;background:#fff;margin:4px 0}
</style></head><body>
<h1>cordon scan report</h1>
<p>{{.Stats.Requests}} requests in {{.Stats.Lines}} lines ({{.Bytes}}) from {{.Stats.Files}} input(s);
time range {{.Stats.First}} .. {{.Stats.Last}}; {{.Stats.Sessions}} sessions; {{.Stats.Malformed}} malformed lines; {{.Stats.Late}} late lines.</p>
{{range .Stats.Errors}}<p><b>read error:</b> {{.}}</p>{{end}}
{{if .Stats.FirstBad}}<p>first malformed lines:</p><ul>{{range .Stats.FirstBad}}<li><code>{{.File}}:{{.Line}}</code>: {{.Reason}}</li>{{end}}</ul>{{end}}
<h2>{{len .Findings}} findings</h2>
<table><tr><th>#</th><th>severity</th><th>rule</th><th>sessions</th><th>principals</th><th>requests</th><th>first</th></tr>
{{range .Findings}}<tr><td><a href="#f{{.N}}">{{.N}}</a></td><td><span class="sev {{.Severity}}">{{.Severity}}</span></td><td>{{.Rule}}</td><td><code>{{range .Sessions}}{{.}} {{end}}</code></td><td>{{range .Principals}}{{.}} {{end}}</td><td>{{.Count}}</td><td>{{.First}}</td></tr>
{{end}}</table>
{{range .Findings}}
<h2 id="f{{.N}}">{{.N}}. <span class="sev {{.Severity}}">{{.Severity}}</span> {{.Rule}}</h2>
<p>sessions: <code>{{range .Sessions}}{{.}} {{end}}</code><br>principals: {{range .Principals}}{{.}} {{end}}<br>
{{.Count}} request(s), {{.First}} .. {{.Last}}<br>requests: <code>{{range .Requests}}{{.}} {{end}}</code></p>
<pre>{{.Evidence}}</pre>
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
<h2>rules</h2>
<table><tr><th>#</th><th>id</th><th>severity</th><th>fires when</th><th>known false positives</th></tr>
{{range .Rules}}<tr><td>{{.N}}</td><td>{{.ID}}</td><td>{{.Severity}}</td><td>{{.Summary}}</td><td>{{.FalsePositives}}</td></tr>{{end}}
</table></body></html>
`))
