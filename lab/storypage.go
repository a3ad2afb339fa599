package lab

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

// storyPage is what `cordon lab serve` shows at /lab: the vulnerable
// replay told step by step, as a sequence diagram with the leaking steps
// highlighted, and for each mitigation the step at which it alone breaks
// the chain.
type storyPage struct {
	Steps    []StoryStep
	Headings map[int]string
	SVG      template.HTML
	Breaks   []MitigationBreak
	Chain    []Link
	Serving  string
	Outcome  string
	// DBSC is the replay with dbsc on, from step 8 on: the leak still
	// happens, and what the delivered session is worth afterwards.
	DBSC        []StoryStep
	DBSCOutcome string
}

var storyTmpl = template.Must(template.New("story").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>cordon lab: the 2021 session mix-up</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8;line-height:1.45}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
ol.steps{padding-left:0;list-style:none}
ol.steps li{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:.6rem .8rem;margin:.5rem 0}
ol.steps li.leak{border:2px solid #c00;background:#fdeaea}
ol.steps li.dbsc{border:2px solid #1f5fbf;background:#e4edfb}
.dbscmark{font-weight:700;color:#1f5fbf}
.mark{font-weight:700;color:#a1141c}
details{font-size:.85rem;color:#444}
details li{margin:.15rem 0}
table{border-collapse:collapse;background:#fff;width:100%}
th,td{border:1px solid #d9dde5;padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
.diagram{overflow-x:auto;background:#fff;border:1px solid #d9dde5;border-radius:8px}
code{font-size:.85rem}
</style></head><body><main>
<h1>The 2021 session mix-up, replayed</h1>
<p>This server runs the <strong>{{.Serving}}</strong> composition. Below: the post-mortem's eight steps replayed against the vulnerable one, deterministically. Every "the code did" line was recorded by the code as it ran. Outcome, read from response #3: <strong id="outcome">{{.Outcome}}</strong>.</p>
<ol class="steps" id="steps">
{{range .Steps}}{{if .N}}<li id="step-{{.N}}"{{if .Leak}} class="leak"{{end}}><strong>Step {{.N}}.</strong> {{.Story}}
{{if .Leak}}<p class="mark" id="leak-{{.N}}">◀ {{.Leak}}</p>{{end}}
<details><summary>what the code did</summary><ul>{{range .Did}}<li><code>{{.}}</code></li>{{end}}</ul></details></li>
{{end}}{{end}}</ol>
<h2>Where each mitigation breaks the chain</h2>
<table id="breaks"><thead><tr><th scope="col">mitigation</th><th scope="col">breaks the chain at</th><th scope="col">what its code did instead</th><th scope="col">replay</th></tr></thead><tbody>
{{range .Breaks}}<tr data-mitigation="{{.Mitigation}}"><td><code>{{.Mitigation}}</code></td><td>{{if .Break.Link}}step {{.Break.Step}}: link {{.Break.Link.N}}, {{.Break.Link.Name}}{{else}}—{{end}}</td><td>{{.Break.Instead}}</td><td>{{if .Leaked}}LEAK{{else}}no leak{{end}}</td></tr>
{{end}}<tr data-mitigation="dbsc"><td><code>dbsc</code></td><td>— (does not break the chain: acts after it, steps 9 to 11)</td><td>the delivered session stops working at the bound cookie's TTL and its refresh is refused; see below</td><td>LEAK</td></tr>
</tbody></table>
<p>The links:</p><ol>{{range .Chain}}<li>step {{.Step}}, {{.Name}}: {{.What}}</li>{{end}}</ol>
<h2>Sequence diagram</h2>
<p>Red: the steps where another user's session goes into bob's response. Green tags: the step at which each mitigation alone breaks the chain. <a href="/lab/diagram.svg">The diagram on its own</a>.</p>
<div class="diagram" id="diagram">{{.SVG}}</div>
<h2 id="dbsc">With dbsc: the leak still happens, the delivered session dies</h2>
<p>The same eight steps with device-bound sessions on (alice's browser registered a device key), and three more: the lab's clock moves on by the bound cookie's TTL. Outcome: <strong id="dbsc-outcome">{{.DBSCOutcome}}</strong></p>
<ol class="steps" id="dbsc-steps">
{{range .DBSC}}<li id="dbsc-step-{{.N}}" class="{{if .Leak}}leak{{else if .DBSC}}dbsc{{end}}"><strong>Step {{.N}}.</strong> {{.Story}}
{{if .Leak}}<p class="mark">◀ {{.Leak}}</p>{{end}}{{if .DBSC}}<p class="dbscmark" id="dbsc-mark-{{.N}}">◆ {{.DBSC}}</p>{{end}}
<details><summary>what the code did</summary><ul>{{range .Did}}<li><code>{{.}}</code></li>{{end}}</ul></details></li>
{{end}}</ol>
<p>Blue: where dbsc acts. <a href="/lab/dbsc.svg">Its sequence diagram</a>.</p>
<div class="diagram"><img src="/lab/dbsc.svg" alt="sequence diagram of the replay with dbsc" style="max-width:none"></div>
</main></body></html>
`))

// StoryHandler serves the story page at /lab and its diagram at
// /lab/diagram.svg. It replays the vulnerable composition and each
// mitigation alone once, now; serving names the composition the server
// runs, for the page's first line.
func StoryHandler(ctx context.Context, serving Mitigations) (http.Handler, error) {
	res, err := Replay(ctx, ReplayOptions{})
	if err != nil {
		return nil, err
	}
	breaks, err := SingleBreaks(ctx)
	if err != nil {
		return nil, err
	}
	var svg bytes.Buffer
	if err := WriteStorySVG(&svg, "the 2021 session mix-up, replayed — vulnerable composition", res, breaks); err != nil {
		return nil, err
	}
	dres, err := Replay(ctx, ReplayOptions{Mitigations: Mitigations{DBSC: true}})
	if err != nil {
		return nil, err
	}
	var dsvg bytes.Buffer
	if err := WriteStorySVG(&dsvg, "the 2021 session mix-up, replayed with dbsc: the leak still happens, the delivered session dies", dres, nil); err != nil {
		return nil, err
	}
	var dsteps []StoryStep
	for _, st := range Story(dres) {
		if st.N >= 8 {
			dsteps = append(dsteps, st)
		}
	}
	name := "vulnerable"
	if serving.Count() > 0 {
		name = "hardened (" + serving.String() + ")"
	}
	o := res.Responses[len(res.Responses)-1]
	p := storyPage{Steps: Story(res), Headings: res.Headings, SVG: template.HTML(stripXMLDecl(svg.String())), // #nosec: made here, every text escaped
		Breaks: breaks, Chain: Chain, Serving: name, Outcome: describeObserved(o),
		DBSC: dsteps, DBSCOutcome: dbscOutcome(dres)}
	var page bytes.Buffer
	if err := storyTmpl.Execute(&page, p); err != nil {
		return nil, fmt.Errorf("lab: story page: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lab", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")
		_, _ = w.Write(page.Bytes())
	})
	mux.HandleFunc("GET /lab/diagram.svg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		_, _ = w.Write(svg.Bytes())
	})
	mux.HandleFunc("GET /lab/dbsc.svg", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		_, _ = w.Write(dsvg.Bytes())
	})
	return mux, nil
}

// dbscOutcome sums up a dbsc replay's aftermath in one line.
func dbscOutcome(res *ReplayResult) string {
	af := res.Aftermath
	if af == nil {
		return ""
	}
	s := "response #3 delivers alice's session to bob's browser; "
	if !res.Leaked {
		s = "nothing is delivered; "
	}
	s += fmt.Sprintf("after %s bob's browser is %s", af.After, describeServed(af.Recipient))
	if r := af.RecipientRefresh; r != nil {
		s += fmt.Sprintf("; its refresh without the key: status %d", r.Status)
	}
	if r := af.OwnerRefresh; r != nil {
		s += fmt.Sprintf("; alice's refresh with her key: status %d, then %s", r.Status, describeServed(af.Owner))
	}
	return s
}

func stripXMLDecl(s string) string {
	if strings.HasPrefix(s, "<?xml") {
		if i := strings.Index(s, "?>"); i >= 0 {
			return s[i+2:]
		}
	}
	return s
}
