package demo

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
)

// endedPage follows what a browser does with a dead cookie: it asks for
// the profile, is sent to the log-in page, and reads what that page says.
func endedPage(t *testing.T, c *client) string {
	t.Helper()
	r := c.get("/profile")
	if r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/login" {
		t.Fatalf("profile with a dead session: %d %q", r.code, r.hdr.Get("Location"))
	}
	r = c.get("/login")
	if r.code != 200 {
		t.Fatalf("log-in page: %d", r.code)
	}
	// Shown once: the notice cookie is cleared.
	if again := c.get("/login"); strings.Contains(again.body, `id="ended"`) {
		t.Fatal("the message is shown again on the next page")
	}
	return r.body
}

func TestSessionEndMessages(t *testing.T) {
	clk := newClock()
	e := newEnv(t, envOptions{now: clk.Now})

	t.Run("revoked by an admin", func(t *testing.T) {
		alice := e.client()
		alice.signup("alice")
		admin := e.admin()
		if r := admin.form("/admin/revoke-session", map[string][]string{"fp": {store.Fingerprint(alice.sessionCookie())}}); r.code != http.StatusSeeOther {
			t.Fatal(r.code)
		}
		body := endedPage(t, alice)
		if !strings.Contains(body, `id="ended" role="status" aria-live="polite">Your session was revoked`) {
			t.Fatalf("no revocation message:\n%s", body)
		}
	})
	t.Run("expired", func(t *testing.T) {
		bob := e.client()
		bob.signup("bob")
		clk.Add(31 * time.Minute) // past the idle timeout
		if body := endedPage(t, bob); !strings.Contains(body, "Your session expired.") {
			t.Fatalf("no expiry message:\n%s", body)
		}
	})
	t.Run("cookie no longer verifies", func(t *testing.T) {
		c := e.client()
		c.signup("carol")
		u := mustURL(t, e.srv.URL)
		// A well-formed token the store does not know.
		c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: strings.Repeat("A", 43)}})
		if body := endedPage(t, c); !strings.Contains(body, "could no longer be verified") {
			t.Fatalf("no message for an unknown cookie:\n%s", body)
		}
		c.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "garbage"}})
		if body := endedPage(t, c); !strings.Contains(body, "could no longer be verified") {
			t.Fatalf("no message for a malformed cookie:\n%s", body)
		}
	})
	t.Run("the page asked for shows it directly", func(t *testing.T) {
		d := e.client()
		d.signup("dave")
		if err := e.m.RevokePrincipal(t.Context(), "dave"); err != nil {
			t.Fatal(err)
		}
		r := d.get("/signup")
		if !strings.Contains(r.body, "Your session was revoked") {
			t.Fatalf("sign-up page with a revoked cookie:\n%s", r.body)
		}
	})
	t.Run("logged out", func(t *testing.T) {
		c := e.client()
		c.signup("erin")
		r := c.form("/logout", nil)
		if r.code != http.StatusSeeOther {
			t.Fatal(r.code)
		}
		r = c.get(r.hdr.Get("Location"))
		if !strings.Contains(r.body, `id="note" role="status" aria-live="polite">You are logged out.`) || strings.Contains(r.body, `id="ended"`) {
			t.Fatalf("log-out page:\n%s", r.body)
		}
	})
	t.Run("a fresh visitor sees nothing", func(t *testing.T) {
		if r := e.client().get("/login"); strings.Contains(r.body, `id="ended"`) || strings.Contains(r.body, `id="note"`) {
			t.Fatalf("fresh log-in page has a message:\n%s", r.body)
		}
	})
	t.Run("logging in again with a dead cookie shows no message", func(t *testing.T) {
		f := e.client()
		f.signup("frank")
		if err := e.m.RevokePrincipal(t.Context(), "frank"); err != nil {
			t.Fatal(err)
		}
		if r := f.get("/profile"); r.code != http.StatusSeeOther { // the notice is set
			t.Fatal(r.code)
		}
		r := f.form("/login", map[string][]string{"user": {"frank"}, "password": {goodPassword}})
		if r.code != http.StatusSeeOther {
			t.Fatal(r.code)
		}
		if r := f.get("/profile"); r.code != 200 || strings.Contains(r.body, `id="ended"`) {
			t.Fatalf("profile after logging in again: %d\n%s", r.code, r.body)
		}
		// Nor later, once logged out.
		f.form("/logout", nil)
		if r := f.get("/login?done=logout"); strings.Contains(r.body, `id="ended"`) {
			t.Fatalf("a stale session-end message after log-out:\n%s", r.body)
		}
	})
}

// The pages carry their own stylesheet (no framework, nothing fetched from
// elsewhere), and the CSP lets only it style them.
func TestStylesheet(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	r := c.get("/static/style.css")
	if r.code != 200 || !strings.HasPrefix(r.hdr.Get("Content-Type"), "text/css") || !strings.Contains(r.body, "@media (max-width") {
		t.Fatalf("stylesheet: %d %q", r.code, r.hdr.Get("Content-Type"))
	}
	page := c.get("/login")
	if !strings.Contains(page.body, `<link rel="stylesheet" href="/static/style.css">`) || strings.Contains(page.body, "<style") ||
		strings.Contains(page.body, "http://") || strings.Contains(page.body, "https://") {
		t.Fatalf("the page does not use only its own stylesheet:\n%s", page.body)
	}
	if csp := page.hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	if !strings.Contains(page.body, `name="viewport" content="width=device-width`) {
		t.Fatal("no viewport: the layout cannot adapt to a phone")
	}
}

// Every visible form control has a label.
func TestFormsAreLabelled(t *testing.T) {
	e := newEnv(t)
	admin := e.admin()
	for _, path := range []string{"/login", "/signup", "/admin"} {
		body := admin.get(path).body
		if path != "/admin" {
			body = e.client().get(path).body
		}
		for _, in := range strings.Split(body, "<input")[1:] {
			tag, _, _ := strings.Cut(in, ">")
			if strings.Contains(tag, `type="hidden"`) {
				continue
			}
			_, rest, ok := strings.Cut(tag, `id="`)
			if !ok {
				t.Fatalf("%s: an input without an id: <input%s>", path, tag)
			}
			id, _, _ := strings.Cut(rest, `"`)
			if !strings.Contains(body, `<label for="`+id+`">`) {
				t.Fatalf("%s: input #%s has no label", path, id)
			}
		}
	}
}

// A session the DeviceBound hook names is marked on the pages that list
// sessions; without the hook none is.
func TestDeviceBoundMark(t *testing.T) {
	for _, bound := range []bool{false, true} {
		e := newEnv(t, envOptions{edit: func(o *Options) {
			if bound {
				o.DeviceBound = func(session.Info) bool { return true }
			}
		}})
		c := e.client()
		c.signup("alice")
		if got := strings.Contains(c.get("/profile").body, `<span class="badge device">device-bound</span>`); got != bound {
			t.Fatalf("hook %v: marked %v", bound, got)
		}
	}
}
