package lab

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The baseline's story marks the leak where the code made it: the step
// whose background write put alice's session into request #3's jar, and
// the step whose response carried it; no other step.
func TestStoryMarksTheLeak(t *testing.T) {
	res, err := Replay(context.Background(), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if br := ChainBreak(res); br.Link != nil {
		t.Fatalf("the baseline's chain breaks at link %d", br.Link.N)
	}
	steps := Story(res)
	if len(steps) != 9 {
		t.Fatalf("%d steps", len(steps))
	}
	for _, st := range steps {
		leak := st.N == 7 || st.N == 8
		if (st.Leak != "") != leak {
			t.Errorf("step %d: leak mark %q", st.N, st.Leak)
		}
		if st.Story == "" || (st.N > 0 && len(st.Did) == 0) {
			t.Errorf("step %d is not told: %+v", st.N, st)
		}
		for _, d := range st.Did {
			if strings.Contains(d, "Hash#clear") || strings.Contains(d, "HTTP_COOKIE") || strings.Contains(d, "parks at") {
				t.Errorf("step %d speaks Rack or the scheduler: %s", st.N, d)
			}
		}
	}
	if !strings.Contains(steps[7].Leak, "alice's session is written into request #3's cookie jar") ||
		!strings.Contains(strings.Join(steps[7].Did, "\n"), "background goroutine writes request #3's cookie jar: Set cordon_session = session") {
		t.Fatalf("step 7: %+v", steps[7])
	}
	var out bytes.Buffer
	if err := WriteStory(&out, res); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), ">>> LEAK") != 2 {
		t.Fatalf("story:\n%s", out.String())
	}
}

// Each mitigation alone breaks the chain at the link its code removes,
// and the story says what the code did instead.
func TestEachMitigationBreaksItsLink(t *testing.T) {
	want := map[string]struct {
		link, step int
		instead    string
	}{
		"value-context":       {1, 1, "value cannot be copied into plain values"},
		"isolated-background": {2, 2, "the background's own context"},
		"fresh-env":           {3, 4, "request #1's own env: cookie header → no session cookie"},
		"sealed-handles":      {3, 4, "Principal refused: its request has ended"},
		"egress-guard":        {5, 8, "egress guard"},
	}
	breaks, err := SingleBreaks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(breaks) != 5 {
		t.Fatalf("%d mitigations", len(breaks))
	}
	for _, b := range breaks {
		w := want[b.Mitigation]
		if b.Leaked || b.Break.Link == nil || b.Break.Link.N != w.link || b.Break.Step != w.step || !strings.Contains(b.Break.Instead, w.instead) {
			t.Errorf("%s: %+v (link %v), want link %d at step %d, instead %q", b.Mitigation, b.Break, b.Break.Link, w.link, w.step, w.instead)
		}
	}
	// The story of a mitigated replay says it at that step.
	res, err := Replay(context.Background(), ReplayOptions{Mitigations: Mitigations{FreshEnv: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range Story(res) {
		if (st.Break != "") != (st.N == 4) || st.Leak != "" {
			t.Errorf("fresh-env step %d: break %q leak %q", st.N, st.Break, st.Leak)
		}
	}
}

// The diagram is well-formed, highlights the leaking steps and arrow, and
// tags each mitigation at its step.
func TestStorySVG(t *testing.T) {
	res, err := Replay(context.Background(), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	breaks, err := SingleBreaks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteStorySVG(&b, "t", res, breaks); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
	}
	svg := b.String()
	for _, s := range []string{`class="leak-step" data-step="7"`, `class="leak-step" data-step="8"`, `id="leak" class="leak"`,
		`class="breaks" data-step="1"`, `class="breaks" data-step="2"`, `class="breaks" data-step="4"`, `class="breaks" data-step="8"`,
		"fresh-env, sealed-handles", "LEAK: write Set cordon_session"} {
		if !strings.Contains(svg, s) {
			t.Errorf("the diagram lacks %s", s)
		}
	}
	if strings.Contains(svg, `class="leak-step" data-step="4"`) {
		t.Error("step 4 is highlighted as a leak")
	}
	// A mitigated replay's own diagram highlights where its chain breaks
	// and no leak.
	res, err = Replay(context.Background(), ReplayOptions{Mitigations: Mitigations{EgressGuard: true}})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := WriteStorySVG(&b, "t", res, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `class="break-step" data-step="8"`) || strings.Contains(b.String(), "leak-step") {
		t.Errorf("egress-guard diagram:\n%s", b.String())
	}
}

func TestStoryPage(t *testing.T) {
	h, err := StoryHandler(context.Background(), AllMitigations())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/lab")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := string(body)
	for _, s := range []string{`<li id="step-7" class="leak">`, `<li id="step-8" class="leak">`, `<svg`, `data-mitigation="egress-guard"><td><code>egress-guard</code></td><td>step 8: link 5, delivered`,
		"This server runs the <strong>hardened ("} {
		if !strings.Contains(page, s) {
			t.Errorf("the page lacks %s", s)
		}
	}
	if strings.Contains(page, `<li id="step-4" class="leak">`) {
		t.Error("step 4 marked as a leak")
	}
	// Where dbsc acts: after the leak, which it does not stop.
	for _, s := range []string{`data-mitigation="dbsc"`, `<li id="dbsc-step-8" class="leak">`, `<li id="dbsc-step-9" class="dbsc">`,
		`id="dbsc-mark-9">◆ here the delivered session dies`, `id="dbsc-mark-10">◆ here the recipient&#39;s refresh is refused`, `<img src="/lab/dbsc.svg"`} {
		if !strings.Contains(page, s) {
			t.Errorf("the page lacks %s", s)
		}
	}
	res, err = http.Get(srv.URL + "/lab/dbsc.svg")
	if err != nil {
		t.Fatal(err)
	}
	svg, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(svg), `class="dbsc-step" data-step="10"`) {
		t.Errorf("/lab/dbsc.svg: %s %.200s", res.Header.Get("Content-Type"), svg)
	}
}
