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
{{end}}</tbody></table>
<p>The links:</p><ol>{{range .Chain}}<li>step {{.Step}}, {{.Name}}: {{.What}}</li>{{end}}</ol>
<h2>Sequence diagram</h2>
<p>Red: the steps where another user's session goes into bob's response. Green tags: the step at which each mitigation alone breaks the chain. <a href="/lab/diagram.svg">The diagram on its own</a>.</p>
<div class="diagram" id="diagram">{{.SVG}}</div>
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
	name := "vulnerable"
	if serving.Count() > 0 {
		name = "hardened (" + serving.String() + ")"
	}
	o := res.Responses[len(res.Responses)-1]
	p := storyPage{Steps: Story(res), Headings: res.Headings, SVG: template.HTML(stripXMLDecl(svg.String())), // #nosec: made here, every text escaped
		Breaks: breaks, Chain: Chain, Serving: name, Outcome: describeObserved(o)}
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
	return mux, nil
}

func stripXMLDecl(s string) string {
	if strings.HasPrefix(s, "<?xml") {
		if i := strings.Index(s, "?>"); i >= 0 {
			return s[i+2:]
		}
	}
	return s
}
