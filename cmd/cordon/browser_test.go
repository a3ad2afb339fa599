package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cordon-sec/cordon/internal/demo"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

// browserDemo is the reference app on an httptest server, with its
// session manager: what the browser test drives.
type browserDemo struct {
	srv *httptest.Server
	m   *session.Manager
}

// newBrowserDemo starts the demo app in process on a memstore, with a
// cheap password hash so that the test stays fast.
func newBrowserDemo(t *testing.T) *browserDemo {
	t.Helper()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	users, err := demo.OpenUsers(filepath.Join(dir, "demo.db"), demo.UsersOptions{Hash: demo.HashParams{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Close() })
	m := session.New(memstore.New(memstore.Options{}), session.Options{Logger: quiet})
	t.Cleanup(func() { m.Close() })
	lw, err := reqlog.Open(filepath.Join(dir, "requests.log"), reqlog.WriterOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lw.Close() })
	app, err := demo.New(demo.Options{Sessions: m, Users: users, AdminPassword: "admin password for tests", Log: lw, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return &browserDemo{srv: srv, m: m}
}

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

// TestBrowserSignupProfileLogoutOthersLogout drives the HTML pages in a
// real headless chromium: sign up, see the profile with both of the user's
// sessions (the second made through the JSON API), log out everywhere else
// (and check the other session is dead), log out.
const goodPassword = "correct horse battery staple"

func TestBrowserSignupProfileLogoutOthersLogout(t *testing.T) {
	bin := chromePath(t)
	e := newBrowserDemo(t)
	profileDir := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profileDir),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	do := func(step string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("text of #%s: %v", id, err)
		}
		return s
	}
	location := func() string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Location())
		if err != nil {
			t.Fatalf("location: %v", err)
		}
		return s
	}
	rows := func() int {
		t.Helper()
		nodes, err := chromedp.Run(bctx, chromedp.Nodes(chromedp.CSSAll("#sessions tr.session"), chromedp.AtLeast(0)))
		if err != nil {
			t.Fatalf("session rows: %v", err)
		}
		return len(nodes)
	}

	// Sign up.
	do("sign up",
		chromedp.Navigate(e.srv.URL+"/signup"),
		chromedp.WaitVisible(chromedp.ID("credentials")),
		chromedp.SendKeys(chromedp.ID("user"), "erin"),
		chromedp.SendKeys(chromedp.ID("password"), goodPassword),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("principal")),
	)
	if p, loc := text("principal"), location(); p != "erin" || !strings.HasSuffix(loc, "/profile") {
		t.Fatalf("after sign-up: principal %q at %s", p, loc)
	}
	if n := rows(); n != 1 {
		t.Fatalf("profile lists %d sessions, want 1", n)
	}

	// A second session of erin's, from a program.
	other := newJarClient(t)
	if code, body := postJSON(t, other, e.srv.URL+"/api/login", `{"user":"erin","password":"`+goodPassword+`"}`); code != 200 {
		t.Fatalf("API login: %d %s", code, body)
	}
	do("see both sessions",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.ID("principal")),
	)
	if n := rows(); n != 2 {
		t.Fatalf("profile lists %d sessions, want 2", n)
	}
	current, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("tr.session.current td")))
	if err != nil || !strings.Contains(current, "(this one)") {
		t.Fatalf("the current session is not marked: %q, %v", current, err)
	}

	// Log out everywhere else.
	do("log out other sessions",
		chromedp.Click(chromedp.ID("logout-others")),
		chromedp.WaitVisible(chromedp.ID("note")),
	)
	if note := text("note"); !strings.Contains(note, "Logged out 1 other session") {
		t.Fatalf("note after logging out others: %q", note)
	}
	if got := whoami(t, other, e.srv.URL+"/"); got != "" {
		t.Fatalf("the API session still names %q after 'log out my other sessions'", got)
	}
	if n := rows(); n != 1 {
		t.Fatalf("profile lists %d sessions after logging out the others, want 1", n)
	}
	if p := text("principal"); p != "erin" {
		t.Fatalf("the browser's own session was logged out too: principal %q", p)
	}

	// Log out.
	// The profile page shows a #note too (from the step before), so wait
	// for the log-in form, which only the page after log-out has.
	do("log out",
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("credentials")),
		chromedp.WaitVisible(chromedp.ID("note")),
	)
	if note, loc := text("note"), location(); !strings.Contains(note, "logged out") || !strings.Contains(loc, "/login") {
		t.Fatalf("after log-out: %q at %s", note, loc)
	}
	if list, err := e.m.Sessions(context.Background(), "erin", 0); err != nil || len(list) != 0 {
		t.Fatalf("erin's sessions after log-out: %d, %v", len(list), err)
	}
	do("profile after log-out",
		chromedp.Navigate(e.srv.URL+"/profile"),
		chromedp.WaitVisible(chromedp.ID("credentials")),
	)
	if loc := location(); !strings.HasSuffix(loc, "/login") {
		t.Fatalf("the profile after log-out is at %s, want the log-in page", loc)
	}
}
