package main

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/cordon-sec/cordon/lab"
)

// TestBrowserStoryPage opens /lab of a lab server in headless chromium and
// checks what a person sees: the leaking steps highlighted in red with the
// words that say so, the diagram with the leaking step's band, and each
// mitigation's step. It saves a screenshot under $CORDON_TEST_OUT (or a
// temporary directory).
func TestBrowserStoryPage(t *testing.T) {
	bin := os.Getenv("CORDON_CHROME")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("chromium"); err != nil {
			t.Fatal("the browser test needs Debian's chromium: run ./test.sh (it installs chromium and sets CORDON_CHROME), or set CORDON_CHROME")
		}
	}
	h, err := lab.StoryHandler(context.Background(), lab.Mitigations{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(srv.URL+"/lab"), chromedp.WaitVisible(chromedp.ID("leak-7"))); err != nil {
		t.Fatal(err)
	}
	eval := func(js string) any {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[any](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	// The highlighted steps: exactly 7 and 8, drawn in red, saying why.
	if got := eval(`[...document.querySelectorAll("#steps li.leak")].map(li => li.id).join(",")`); got != "step-7,step-8" {
		t.Fatalf("highlighted steps: %v", got)
	}
	if c := eval(`getComputedStyle(document.getElementById("step-7")).borderTopColor`); c != "rgb(204, 0, 0)" {
		t.Fatalf("step 7's border is %v, not red", c)
	}
	if s := eval(`document.getElementById("leak-7").innerText`); !strings.Contains(s.(string), "alice's session is written into request #3's cookie jar") {
		t.Fatalf("step 7 says %q", s)
	}
	if s := eval(`document.getElementById("outcome").innerText`); !strings.Contains(s.(string), "WRONG SESSION") {
		t.Fatalf("outcome %q", s)
	}
	// The diagram: the band behind step 7 is there and has a size.
	if h := eval(`document.querySelector('#diagram svg rect.leak-step[data-step="7"]').getBBox().height`); h.(float64) < 20 {
		t.Fatalf("step 7's band is %v px high", h)
	}
	if s := eval(`document.querySelector('#diagram svg text.breaks[data-step="4"]').textContent`); !strings.Contains(s.(string), "fresh-env, sealed-handles") {
		t.Fatalf("step 4's tag: %q", s)
	}
	if s := eval(`document.querySelector('#breaks tr[data-mitigation="egress-guard"]').innerText`); !strings.Contains(s.(string), "step 8") {
		t.Fatalf("egress-guard's row: %q", s)
	}
	// Where dbsc acts: steps 9 and 10 on blue, their words, and the dbsc
	// replay's diagram loaded as an image (the page's CSP allows it).
	if got := eval(`[...document.querySelectorAll("#dbsc-steps li.dbsc")].map(li => li.id).join(",")`); got != "dbsc-step-9,dbsc-step-10,dbsc-step-11" {
		t.Fatalf("dbsc steps: %v", got)
	}
	if c := eval(`getComputedStyle(document.getElementById("dbsc-step-9")).borderTopColor`); c != "rgb(31, 95, 191)" {
		t.Fatalf("dbsc step 9's border is %v, not blue", c)
	}
	if s := eval(`document.getElementById("dbsc-mark-10").innerText`); !strings.Contains(s.(string), "refresh is refused") {
		t.Fatalf("dbsc step 10 says %q", s)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if w := eval(`document.querySelector('img[src="/lab/dbsc.svg"]').naturalWidth`); w.(float64) >= 100 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the dbsc diagram did not load: width %v", w)
		}
		time.Sleep(100 * time.Millisecond)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if d := os.Getenv("CORDON_TEST_OUT"); d != "" {
		dir = filepath.Join(d, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "lab.png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
