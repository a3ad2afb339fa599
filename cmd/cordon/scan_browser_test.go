package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// scanChrome returns the chromium binary for the report's browser test:
// CORDON_CHROME when set (then it must exist), else chromium on PATH; the
// test is skipped only when there is no browser at all.
func scanChrome(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CORDON_CHROME"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CORDON_CHROME=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium: set CORDON_CHROME or install chromium (./test.sh does)")
	return ""
}

// TestScanBrowserReportSummary opens the HTML report of a generated log in
// a real headless chromium and checks what a person sees first: the number
// of incidents, the people affected, the sessions to revoke and the exact
// revoke command, the incident timeline; that an incident opens to its
// evidence; and that the page runs no script. The screenshot of the
// summary is kept in the test's artifact directory (go test -artifacts).
func TestScanBrowserReportSummary(t *testing.T) {
	bin := scanChrome(t)
	dir := t.TempDir()
	logf := filepath.Join(dir, "g.log")
	if _, _, err := scanRun(t, nil, "gen-logs", "-n", "30000", "-incidents", "2", "-seed", "3", "-o", logf); err != nil {
		t.Fatal(err)
	}
	htmlf, revokef := filepath.Join(dir, "report.html"), filepath.Join(dir, "revoke.txt")
	out, _, err := scanRun(t, nil, "scan", "-format", "json", "-html", htmlf, "-sessions-out", revokef, logf)
	if !errors.Is(err, errIncidents) {
		t.Fatalf("scan: %v", err)
	}
	var rep struct {
		Incidents []struct{ ID, Severity string } `json:"incidents"`
		Summary   struct {
			People int      `json:"people_affected"`
			Revoke []string `json:"sessions_to_revoke"`
		} `json:"summary"`
	}
	scanReadJSON(t, []byte(out), &rep)
	if len(rep.Incidents) == 0 {
		t.Fatal("no incidents in the generated log")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-extensions", true),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1200, 900), chromedp.Navigate("file://"+htmlf), chromedp.WaitVisible(chromedp.ID("summary"))); err != nil {
		t.Fatalf("open the report: %v", err)
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("text of #%s: %v", id, err)
		}
		return strings.TrimSpace(s)
	}
	if got, want := text("incident-count"), fmt.Sprintf("%d incidents", len(rep.Incidents)); !strings.HasPrefix(got, want) {
		t.Errorf("the summary says %q, want it to start with %q", got, want)
	}
	if got, want := text("people"), fmt.Sprintf("%d people affected", rep.Summary.People); !strings.HasPrefix(got, want) {
		t.Errorf("people: %q, want %q", got, want)
	}
	if got, want := text("revoke-count"), fmt.Sprintf("%d sessions to revoke", len(rep.Summary.Revoke)); !strings.HasPrefix(got, want) {
		t.Errorf("revoke count: %q, want %q", got, want)
	}
	if got, want := text("revoke-command"), "cordon revoke -from "+revokef+" -apply"; got != want {
		t.Errorf("revoke command: %q, want %q", got, want)
	}
	// The timeline has a mark per incident and host, each a link to it.
	marks, err := chromedp.Run(bctx, chromedp.Nodes(chromedp.CSSAll(`svg[aria-label^="incidents by host"] a rect`), chromedp.AtLeast(0)))
	if err != nil || len(marks) < len(rep.Incidents) {
		t.Errorf("timeline: %d marks for %d incidents (%v)", len(marks), len(rep.Incidents), err)
	}
	// An incident is closed until opened; then its evidence lines show.
	open := func() bool {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.getElementById("I1").open && document.querySelector("#I1 pre").offsetHeight > 0`))
		if err != nil {
			t.Fatalf("evaluate: %v", err)
		}
		return v
	}
	if open() {
		t.Error("incident I1 is open before it is clicked")
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS("#I1 > summary")), chromedp.WaitVisible(chromedp.CSS("#I1 pre"))); err != nil {
		t.Fatalf("open incident I1: %v", err)
	}
	if !open() {
		t.Error("incident I1 did not open to its evidence")
	}
	if s, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#I1 pre"))); !strings.Contains(s, `"sid_out"`) && !strings.Contains(s, `"sid_in"`) {
		t.Errorf("I1's evidence does not quote log lines: %.200s", s)
	}
	scripts, _ := chromedp.Run(bctx, chromedp.Evaluate[int](`document.scripts.length`))
	if scripts != 0 {
		t.Errorf("the report has %d scripts", scripts)
	}

	png, err := chromedp.Run(bctx, chromedp.Screenshot(chromedp.ID("summary")))
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	shot := filepath.Join(t.ArtifactDir(), "scan-report-summary.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the summary: %s", shot)
}
