package demo

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromePath returns the chromium binary the browser test drives: the one
// named by CORDON_CHROME (test.sh sets it), else chromium on PATH.
func chromePath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CORDON_CHROME"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CORDON_CHROME=%s: %v; run ./test.sh, which installs Debian's chromium", p, err)
		}
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("the browser test needs Debian's chromium, which is not installed: run ./test.sh (it installs chromium and sets CORDON_CHROME), or set CORDON_CHROME to a chromium binary")
	}
	return p
}

// testOut is the directory a test's screenshots go to: $CORDON_TEST_OUT/
// <test name> when that is set (to keep them), else a temporary one.
func testOut(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("CORDON_TEST_OUT"); d != "" {
		dir := filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// browser is one headless chromium tab, with its own cookies.
type browser struct {
	t   *testing.T
	ctx context.Context
	out string
}

// newBrowser starts chromium; more tabs with cookies of their own come
// from other().
func newBrowser(t *testing.T) *browser {
	t.Helper()
	bin := chromePath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 700),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	b := &browser{t: t, ctx: bctx, out: testOut(t)}
	b.do("start", chromedp.EmulateViewport(1000, 700))
	return b
}

// other opens a tab in a browser context of its own: another person.
func (b *browser) other() *browser {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	o := &browser{t: b.t, ctx: ctx, out: b.out}
	o.do("start", chromedp.EmulateViewport(1000, 700))
	return o
}

func (b *browser) do(step string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", step, err)
	}
}

// text is what a person reads in the element with that id.
func (b *browser) text(id string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		b.t.Fatalf("text of #%s: %v", id, err)
	}
	return s
}

func (b *browser) location() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("location: %v", err)
	}
	return s
}

func (b *browser) eval(js string) any {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) rows() int {
	b.t.Helper()
	nodes, err := chromedp.Run(b.ctx, chromedp.Nodes(chromedp.CSSAll("#sessions tr.session"), chromedp.AtLeast(0)))
	if err != nil {
		b.t.Fatalf("session rows: %v", err)
	}
	return len(nodes)
}

// shot saves a PNG of the page as the person sees it and returns its path.
func (b *browser) shot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.out, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
	return p
}

func (b *browser) fill(step, base, path, user, password string) {
	b.t.Helper()
	b.do(step,
		chromedp.Navigate(base+path),
		chromedp.WaitVisible(chromedp.ID("credentials")),
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
	)
}

// TestBrowserSignupProfileLogoutOthersLogout drives the HTML pages in a
// real headless chromium: a refused log-in, sign-up, the profile with both
// of the user's sessions (this browser's marked), the same page at phone
// width, log out everywhere else, log out, log in again.
func TestBrowserSignupProfileLogoutOthersLogout(t *testing.T) {
	e := newEnv(t)
	b := newBrowser(t)
	base := e.srv.URL

	// A log-in that fails says so, as an alert, next to the form.
	b.fill("wrong log-in", base, "/login", "erin", "not the password at all")
	b.do("error shown", chromedp.WaitVisible(chromedp.ID("error")))
	if msg := b.text("error"); msg != msgBadCredentials {
		t.Fatalf("log-in error: %q", msg)
	}
	if role := b.eval(`document.getElementById("error").getAttribute("role")`); role != "alert" {
		t.Fatalf("the error is not announced: role %v", role)
	}
	if inv := b.eval(`document.getElementById("password").getAttribute("aria-invalid")`); inv != "true" {
		t.Fatalf("the password field is not marked invalid: %v", inv)
	}
	b.shot("login-error")

	// Sign up.
	b.fill("sign up", base, "/signup", "erin", goodPassword)
	b.do("profile", chromedp.WaitVisible(chromedp.ID("principal")))
	if p, loc := b.text("principal"), b.location(); p != "erin" || !strings.HasSuffix(loc, "/profile") {
		t.Fatalf("after sign-up: principal %q at %s", p, loc)
	}
	if n := b.rows(); n != 1 {
		t.Fatalf("profile lists %d sessions, want 1", n)
	}

	// A second session of erin's, from a program.
	other := e.client()
	if r := other.api("POST", "/api/login", creds("erin", goodPassword)); r.code != 200 {
		t.Fatalf("API login: %d %s", r.code, r.body)
	}
	b.do("see both sessions", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("principal")))
	if n := b.rows(); n != 2 {
		t.Fatalf("profile lists %d sessions, want 2", n)
	}
	current, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("tr.session.current td")))
	if err != nil || !strings.Contains(current, "this browser") {
		t.Fatalf("the current session is not marked: %q, %v", current, err)
	}
	if n := b.eval(`document.querySelectorAll(".badge.this").length`); n != float64(1) {
		t.Fatalf("%v sessions marked as this browser", n)
	}
	// The stylesheet is applied: the page is not unstyled HTML.
	if bg := b.eval(`getComputedStyle(document.querySelector("header.bar")).backgroundColor`); bg == "rgba(0, 0, 0, 0)" {
		t.Fatal("the stylesheet did not load")
	}
	shot := b.shot("profile")
	if p := os.Getenv("CORDON_PROFILE_PNG"); p != "" {
		// The picture in the README: the same page, kept.
		png, _ := os.ReadFile(shot)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// At phone width each session is a card, and nothing scrolls sideways.
	b.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("principal")))
	if d := b.eval(`getComputedStyle(document.querySelector("#sessions tr.session")).display`); d != "block" {
		t.Fatalf("at phone width a session row displays as %v, want a block", d)
	}
	if wide := b.eval(`document.documentElement.scrollWidth > window.innerWidth`); wide != false {
		t.Fatalf("the profile scrolls sideways at 390 px: scrollWidth %v", b.eval(`document.documentElement.scrollWidth`))
	}
	b.shot("profile-phone")
	b.do("desktop width", chromedp.EmulateViewport(1000, 700), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("principal")))

	// Log out everywhere else.
	b.do("log out other sessions", chromedp.Click(chromedp.ID("logout-others")), chromedp.WaitVisible(chromedp.ID("note")))
	if note := b.text("note"); note != "Logged out 1 other session(s)." {
		t.Fatalf("note after logging out others: %q", note)
	}
	if got := other.whoami(); got != "" {
		t.Fatalf("the API session still names %q after 'log out my other sessions'", got)
	}
	if n := b.rows(); n != 1 {
		t.Fatalf("profile lists %d sessions after logging out the others, want 1", n)
	}
	if p := b.text("principal"); p != "erin" {
		t.Fatalf("the browser's own session was logged out too: principal %q", p)
	}
	b.shot("profile-others-logged-out")

	// Log out. The profile page shows a #note too (from the step before),
	// so wait for the log-in form, which only the page after log-out has.
	b.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("credentials")), chromedp.WaitVisible(chromedp.ID("note")))
	if note, loc := b.text("note"), b.location(); note != "You are logged out." || !strings.Contains(loc, "/login") {
		t.Fatalf("after log-out: %q at %s", note, loc)
	}
	b.shot("logged-out")
	if list, err := e.m.Sessions(context.Background(), "erin", 0); err != nil || len(list) != 0 {
		t.Fatalf("erin's sessions after log-out: %d, %v", len(list), err)
	}
	b.do("profile after log-out", chromedp.Navigate(base+"/profile"), chromedp.WaitVisible(chromedp.ID("credentials")))
	if loc := b.location(); !strings.HasSuffix(loc, "/login") {
		t.Fatalf("the profile after log-out is at %s, want the log-in page", loc)
	}

	// Log in again.
	b.fill("log in", base, "/login", "erin", goodPassword)
	b.do("profile after log-in", chromedp.WaitVisible(chromedp.ID("principal")))
	if p := b.text("principal"); p != "erin" {
		t.Fatalf("after log-in: principal %q", p)
	}
	b.shot("logged-in")
}

// TestBrowserAdminRevocation: the administrator, in a browser of their
// own, revokes every session of a user through the confirmation step; the
// user's browser, on its next page, is told its session was revoked.
func TestBrowserAdminRevocation(t *testing.T) {
	e := newEnv(t)
	alice := newBrowser(t)
	base := e.srv.URL
	alice.fill("alice signs up", base, "/signup", "alice", goodPassword)
	alice.do("alice's profile", chromedp.WaitVisible(chromedp.ID("principal")))

	admin := alice.other()
	admin.fill("the admin signs up", base, "/signup", testAdmin, goodPassword)
	admin.do("admin's profile", chromedp.WaitVisible(chromedp.ID("principal")))
	admin.do("admin page", chromedp.Navigate(base+"/admin"), chromedp.WaitVisible(chromedp.ID("sessions")))
	users := `[...document.querySelectorAll("#sessions tr.session td:nth-child(2)")].map(td => td.innerText).sort().join(",")`
	if got := admin.eval(users); got != "alice,"+testAdmin {
		t.Fatalf("the admin page lists the sessions of %v", got)
	}
	if mine := admin.eval(`document.querySelector("#sessions tr.session.current td:nth-child(2)").innerText`); mine != testAdmin {
		t.Fatalf("the admin page marks %v as this browser's session", mine)
	}
	admin.shot("admin")
	admin.do("revoke alice", chromedp.Click(chromedp.CSS(`button[aria-label="Revoke every session of alice"]`)), chromedp.WaitVisible(chromedp.ID("confirm")))
	if q := admin.text("question"); q != "Revoke every session of alice?" {
		t.Fatalf("confirmation question: %q", q)
	}
	if d := admin.text("confirm-detail"); !strings.Contains(d, "alice has 1 live session(s)") {
		t.Fatalf("confirmation detail: %q", d)
	}
	admin.shot("admin-confirm")
	if list, _ := e.m.Sessions(context.Background(), "alice", 0); len(list) != 1 {
		t.Fatal("the revocation acted before it was confirmed")
	}
	admin.do("confirm", chromedp.Click(chromedp.ID("confirm-yes")), chromedp.WaitVisible(chromedp.ID("note")))
	if note := admin.text("note"); note != "Revoked every session of the user." {
		t.Fatalf("admin note: %q", note)
	}

	// What alice sees.
	alice.do("alice's next page", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("ended")))
	msg := alice.text("ended")
	if !strings.HasPrefix(msg, "Your session was revoked: an administrator") || !strings.HasSuffix(alice.location(), "/login") {
		t.Fatalf("alice sees %q at %s", msg, alice.location())
	}
	if live := alice.eval(`document.getElementById("ended").getAttribute("aria-live")`); live != "polite" {
		t.Fatalf("the message is not announced: aria-live %v", live)
	}
	alice.shot("revoked")
	// Shown once: the next page does not repeat it.
	alice.do("and after", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("credentials")))
	if n := alice.eval(`document.querySelectorAll("#ended").length`); n != float64(0) {
		t.Fatal("the message is shown again")
	}
}
