package demo

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/store"
)

func TestAPISignupLoginWhoamiLogout(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if got := c.whoami(); got != "" {
		t.Fatalf("whoami before signup = %q, want null", got)
	}
	r := c.api("POST", "/api/signup", creds("alice", goodPassword))
	if r.code != http.StatusCreated || strings.TrimSpace(r.body) != `{"user":"alice"}` {
		t.Fatalf("signup: %d %s", r.code, r.body)
	}
	if ct := r.hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("signup Content-Type %q", ct)
	}
	if got := c.whoami(); got != "alice" {
		t.Fatalf("whoami after signup = %q", got)
	}
	first := c.sessionCookie()

	r = c.api("POST", "/api/logout", map[string]string{})
	if r.code != http.StatusOK || strings.TrimSpace(r.body) != `{"user":null}` {
		t.Fatalf("logout: %d %s", r.code, r.body)
	}
	if got := c.whoami(); got != "" {
		t.Fatalf("whoami after logout = %q, want null", got)
	}
	// The old cookie is dead server-side, not just deleted from the jar.
	stale := e.client()
	stale.hc.Jar.SetCookies(mustURL(t, e.srv.URL), []*http.Cookie{{Name: "session", Value: first}})
	if got := stale.whoami(); got != "" {
		t.Fatalf("the logged-out cookie still names %q", got)
	}

	r = c.api("POST", "/api/login", creds("alice", goodPassword))
	if r.code != http.StatusOK || strings.TrimSpace(r.body) != `{"user":"alice"}` {
		t.Fatalf("login: %d %s", r.code, r.body)
	}
	if got := c.whoami(); got != "alice" {
		t.Fatalf("whoami after login = %q", got)
	}
	if c.sessionCookie() == first {
		t.Fatal("login reused the old token")
	}
	// Logging in again (session fixation defence) issues a new token.
	before := c.sessionCookie()
	if r := c.api("POST", "/api/login", creds("alice", goodPassword)); r.code != 200 {
		t.Fatalf("second login: %d", r.code)
	}
	if c.sessionCookie() == before {
		t.Fatal("a second login kept the token")
	}
	// whoami's answer is for one user and must not be cached.
	r = c.api("GET", "/api/whoami", nil)
	if r.hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("whoami Cache-Control %q", r.hdr.Get("Cache-Control"))
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestLoginFailuresLookAlike(t *testing.T) {
	e := newEnv(t)
	e.client().signup("alice")
	cases := map[string]map[string]string{
		"wrong password": creds("alice", "not the right password at all"),
		"unknown user":   creds("mallory", "not the right password at all"),
		"malformed name": creds("No Such User!", "not the right password at all"),
		"short password": creds("alice", "short"),
	}
	var want *resp
	for name, body := range cases {
		c := e.client()
		r := c.api("POST", "/api/login", body)
		if r.code != http.StatusUnauthorized {
			t.Fatalf("%s: status %d %s", name, r.code, r.body)
		}
		if c.sessionCookie() != "" {
			t.Fatalf("%s: a session cookie was set", name)
		}
		if want == nil {
			want = &r
			continue
		}
		if r.body != want.body {
			t.Fatalf("%s: body %q differs from %q", name, r.body, want.body)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "Cache-Control", "Set-Cookie", "Vary"} {
			if r.hdr.Get(h) != want.hdr.Get(h) {
				t.Fatalf("%s: header %s %q differs from %q", name, h, r.hdr.Get(h), want.hdr.Get(h))
			}
		}
	}
	if !strings.Contains(want.body, "invalid user name or password") {
		t.Fatalf("failure body %q", want.body)
	}
}

// An unknown user costs the same password-hash work as a wrong password.
// Time is not measured (the machine is noisy): argon2id allocates its
// memory parameter on every hash, so the bytes allocated show whether a
// hash was computed.
func TestUnknownUserHashesADummyPassword(t *testing.T) {
	const memKiB = 4096
	u, err := OpenUsers(filepath.Join(t.TempDir(), "u.db"), UsersOptions{Hash: HashParams{Time: 1, Memory: memKiB, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	ctx := context.Background()
	if err := u.Create(ctx, "alice", goodPassword); err != nil {
		t.Fatal(err)
	}
	alloc := func(name, password string) uint64 {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		err := u.Authenticate(ctx, name, password)
		runtime.ReadMemStats(&b)
		if err != ErrBadCredentials {
			t.Fatalf("Authenticate(%q) = %v, want ErrBadCredentials", name, err)
		}
		return b.TotalAlloc - a.TotalAlloc
	}
	for _, c := range []struct{ name, pw string }{
		{"alice", "a wrong password here"},
		{"nobody", "a wrong password here"},
		{"BAD NAME", "a wrong password here"},
	} {
		if got := alloc(c.name, c.pw); got < memKiB*1024 {
			t.Fatalf("Authenticate(%q) allocated %d bytes: no argon2id hash (%d KiB) was computed", c.name, got, memKiB)
		}
	}
	if err := u.Authenticate(ctx, "alice", goodPassword); err != nil {
		t.Fatalf("right password: %v", err)
	}
}

func TestSignupValidation(t *testing.T) {
	e := newEnv(t)
	e.client().signup("taken")
	long := strings.Repeat("a", 65)
	cases := []struct {
		name     string
		ct       string
		body     string
		code     int
		contains string
	}{
		{"short name", "application/json", `{"user":"ab","password":"` + goodPassword + `"}`, 400, "3 to 64"},
		{"long name", "application/json", `{"user":"` + long + `","password":"` + goodPassword + `"}`, 400, "3 to 64"},
		{"upper case", "application/json", `{"user":"Alice","password":"` + goodPassword + `"}`, 400, "a-z"},
		{"space", "application/json", `{"user":"al ice","password":"` + goodPassword + `"}`, 400, "a-z"},
		{"unicode", "application/json", `{"user":"ålice","password":"` + goodPassword + `"}`, 400, "a-z"},
		{"short password", "application/json", `{"user":"bob","password":"fourteen chars"}`, 400, "at least 15"},
		{"long password", "application/json", `{"user":"bob","password":"` + strings.Repeat("p", 129) + `"}`, 400, "at most 128"},
		{"taken", "application/json", `{"user":"taken","password":"` + goodPassword + `"}`, 409, "taken"},
		{"not json", "application/json", `user=bob`, 400, "must be"},
		{"unknown field", "application/json", `{"user":"bob","password":"` + goodPassword + `","admin":true}`, 400, "must be"},
		{"two objects", "application/json", `{"user":"bob","password":"` + goodPassword + `"}{}`, 400, "one JSON object"},
		{"wrong type", "application/json", `{"user":1,"password":"` + goodPassword + `"}`, 400, "must be"},
		{"form body", "application/x-www-form-urlencoded", `user=bob&password=x`, 415, "application/json"},
		{"too large", "application/json", `{"user":"bob","password":"` + strings.Repeat("p", MaxBody) + `"}`, 413, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.client()
			req := c.newReq("POST", "/api/signup", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			r := c.do(req)
			if r.code != tc.code || !strings.Contains(r.body, tc.contains) || !strings.HasPrefix(r.body, `{"error":`) {
				t.Fatalf("%d %s, want %d containing %q", r.code, r.body, tc.code, tc.contains)
			}
			if strings.Contains(r.body, goodPassword) {
				t.Fatal("the answer echoes the password")
			}
			if c.sessionCookie() != "" || c.whoami() != "" {
				t.Fatal("a refused signup logged in")
			}
		})
	}
	// A refused signup created nobody.
	if ok, err := e.users.Exists(context.Background(), "bob"); err != nil || ok {
		t.Fatalf("bob exists after refused signups: %v %v", ok, err)
	}
	// The routes are exact.
	c := e.client()
	if r := c.api("GET", "/api/login", nil); r.code != http.StatusMethodNotAllowed || r.hdr.Get("Allow") != "POST" {
		t.Fatalf("GET /api/login: %d", r.code)
	}
	if r := c.api("GET", "/api/nothing", nil); r.code != http.StatusNotFound || !strings.Contains(r.body, "error") {
		t.Fatalf("GET /api/nothing: %d %s", r.code, r.body)
	}
}

func TestCrossOriginRequestsRefused(t *testing.T) {
	e := newEnv(t)
	e.client().signup("alice")
	victim := e.client()
	if r := victim.api("POST", "/api/login", creds("alice", goodPassword)); r.code != 200 {
		t.Fatal(r.code)
	}
	cookie := victim.sessionCookie()
	before, err := e.m.Sessions(context.Background(), "alice", 0)
	if err != nil {
		t.Fatal(err)
	}

	// A form on evil.example posts to the demo with the victim's cookie.
	hostile := []struct {
		name    string
		path    string
		ct      string
		body    string
		headers map[string]string
	}{
		{"logout-others form, fetch metadata", "/profile/logout-others", "application/x-www-form-urlencoded", "",
			map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
		{"login form, Origin only (older browser)", "/login", "application/x-www-form-urlencoded", "user=alice&password=" + url.QueryEscape(goodPassword),
			map[string]string{"Origin": "https://evil.example"}},
		{"logout form, same-site subdomain", "/logout", "application/x-www-form-urlencoded", "",
			map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"API logout, text/plain simple request", "/api/logout", "text/plain", "{}",
			map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			req := victim.newReq("POST", h.path, strings.NewReader(h.body))
			req.Header.Set("Content-Type", h.ct)
			for k, v := range h.headers {
				req.Header.Set(k, v)
			}
			r := victim.do(req)
			if r.code != http.StatusForbidden || !strings.Contains(r.body, "cross-origin") {
				t.Fatalf("%d %s, want 403", r.code, r.body)
			}
			if strings.HasPrefix(h.path, "/api/") && !strings.HasPrefix(r.body, `{"error":`) {
				t.Fatalf("API refusal is not JSON: %s", r.body)
			}
		})
	}
	if victim.sessionCookie() != cookie || victim.whoami() != "alice" {
		t.Fatal("a refused cross-origin request changed the victim's session")
	}
	after, err := e.m.Sessions(context.Background(), "alice", 0)
	if err != nil || len(after) != len(before) {
		t.Fatalf("sessions before %d, after %d (%v)", len(before), len(after), err)
	}

	// Same-origin browser forms and header-less programs pass.
	if r := victim.form("/logout", nil); r.code != http.StatusSeeOther {
		t.Fatalf("same-origin logout form: %d %s", r.code, r.body)
	}
	if victim.whoami() != "" {
		t.Fatal("same-origin logout did not log out")
	}
	if r := victim.api("POST", "/api/login", creds("alice", goodPassword)); r.code != 200 {
		t.Fatalf("curl-style login: %d", r.code)
	}
}

func TestHTMLPagesFlow(t *testing.T) {
	e := newEnv(t)
	b := e.client()
	if r := b.get("/"); r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/login" {
		t.Fatalf("GET / anonymous: %d %s", r.code, r.hdr.Get("Location"))
	}
	if r := b.get("/profile"); r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/login" {
		t.Fatalf("GET /profile anonymous: %d %s", r.code, r.hdr.Get("Location"))
	}
	r := b.get("/signup")
	if r.code != 200 || !strings.Contains(r.body, `action="/signup"`) || !strings.Contains(r.body, `minlength="15"`) {
		t.Fatalf("GET /signup: %d %s", r.code, r.body)
	}
	if csp := r.hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	// A refused form re-renders with the error and the escaped name.
	r = b.form("/signup", url.Values{"user": {"<b>x</b>"}, "password": {goodPassword}})
	if r.code != 400 || !strings.Contains(r.body, "may hold only") || strings.Contains(r.body, "<b>x</b>") || !strings.Contains(r.body, "&lt;b&gt;") {
		t.Fatalf("bad signup form: %d %s", r.code, r.body)
	}
	r = b.form("/signup", url.Values{"user": {"carol"}, "password": {goodPassword}})
	if r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/profile" {
		t.Fatalf("signup form: %d %s", r.code, r.body)
	}
	browserFP := store.Fingerprint(b.sessionCookie())

	// A second session of the same user, from a program.
	other := e.client()
	if r := other.api("POST", "/api/login", creds("carol", goodPassword)); r.code != 200 {
		t.Fatal(r.code)
	}
	otherFP := store.Fingerprint(other.sessionCookie())
	// Someone else's session must survive carol's "log out others".
	dave := e.client()
	dave.signup("dave")

	r = b.get("/profile")
	if r.code != 200 || !strings.Contains(r.body, `<strong id="principal">carol</strong>`) {
		t.Fatalf("profile: %d %s", r.code, r.body)
	}
	if !strings.Contains(r.body, `data-fp="`+browserFP+`"`) || !strings.Contains(r.body, `data-fp="`+otherFP+`"`) {
		t.Fatalf("profile does not list both sessions:\n%s", r.body)
	}
	if strings.Contains(r.body, store.Fingerprint(dave.sessionCookie())) {
		t.Fatal("profile lists another user's session")
	}
	if !strings.Contains(r.body, "Go-http-client") || !strings.Contains(r.body, "127.0.0.1") || !strings.Contains(r.body, `<span class="badge this" id="this-browser">this browser</span>`) {
		t.Fatalf("profile lacks user agent, IP or the current marker:\n%s", r.body)
	}

	r = b.form("/profile/logout-others", nil)
	if r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/profile?done=others&n=1" {
		t.Fatalf("logout-others: %d %q", r.code, r.hdr.Get("Location"))
	}
	if got := other.whoami(); got != "" {
		t.Fatalf("the other session still names %q", got)
	}
	if b.whoami() != "carol" || dave.whoami() != "dave" {
		t.Fatal("logout-others ended the current session or another user's")
	}
	r = b.get("/profile?done=others&n=1")
	if !strings.Contains(r.body, "Logged out 1 other session(s).") || strings.Contains(r.body, otherFP) {
		t.Fatalf("profile after logout-others:\n%s", r.body)
	}

	// Log in through the form on another client, then log out.
	b2 := e.client()
	if r := b2.form("/login", url.Values{"user": {"carol"}, "password": {"wrong password, long enough"}}); r.code != 401 || !strings.Contains(r.body, "invalid user name or password") {
		t.Fatalf("bad login form: %d", r.code)
	}
	if r := b2.form("/login", url.Values{"user": {"carol"}, "password": {goodPassword}}); r.code != http.StatusSeeOther {
		t.Fatalf("login form: %d", r.code)
	}
	if r := b.get("/logout"); r.code != 200 || !strings.Contains(r.body, `action="/logout"`) {
		t.Fatalf("GET /logout: %d", r.code)
	}
	if r := b.form("/logout", nil); r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/login?done=logout" {
		t.Fatalf("logout form: %d %s", r.code, r.hdr.Get("Location"))
	}
	if b.whoami() != "" || b2.whoami() != "carol" {
		t.Fatal("logout ended the wrong sessions")
	}
	if r := b.get("/logout"); !strings.Contains(r.body, `id="logged-out"`) {
		t.Fatalf("GET /logout after logout: %s", r.body)
	}
}

func TestAdmin(t *testing.T) {
	e := newEnv(t)
	alice, alice2, bob := e.client(), e.client(), e.client()
	alice.signup("alice")
	if r := alice2.api("POST", "/api/login", creds("alice", goodPassword)); r.code != 200 {
		t.Fatal(r.code)
	}
	bob.signup("bob")

	// Nobody signed in is sent to log in, with a word on why; a user who
	// is not the administrator gets 403. Neither can revoke.
	anon := e.client()
	if r := anon.get("/admin"); r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/login" {
		t.Fatalf("anonymous /admin: %d %q", r.code, r.hdr.Get("Location"))
	}
	if r := anon.get("/login"); !strings.Contains(r.body, "administrator") {
		t.Fatalf("the log-in page after /admin does not say why:\n%s", r.body)
	}
	for _, c := range []*client{anon, bob} {
		for _, path := range []string{"/admin/revoke-all", "/admin/revoke-user", "/admin/revoke-session"} {
			r := c.form(path, url.Values{"confirm": {"yes"}, "user": {"alice"}, "fp": {store.Fingerprint(alice.sessionCookie())}})
			if r.code != http.StatusSeeOther && r.code != http.StatusForbidden {
				t.Fatalf("%s by a non-admin: %d", path, r.code)
			}
		}
	}
	if r := bob.get("/admin"); r.code != http.StatusForbidden || !strings.Contains(r.body, "Only the administrator") {
		t.Fatalf("/admin as bob: %d %s", r.code, r.body)
	}
	if alice.whoami() != "alice" || bob.whoami() != "bob" {
		t.Fatal("an unauthorised revocation acted")
	}

	admin := e.admin()
	list := func() string {
		t.Helper()
		r := admin.get("/admin")
		if r.code != 200 {
			t.Fatalf("admin page: %d %s", r.code, r.body)
		}
		return r.body
	}
	page := list()
	for _, c := range []*client{alice, alice2, bob} {
		if !strings.Contains(page, `data-fp="`+store.Fingerprint(c.sessionCookie())+`"`) {
			t.Fatalf("admin page lacks a session:\n%s", page)
		}
	}
	if strings.Contains(page, alice.sessionCookie()) {
		t.Fatal("admin page shows a raw token")
	}
	// The admin's own session is marked as this browser's.
	if !strings.Contains(page, `class="session current" data-fp="`+store.Fingerprint(admin.sessionCookie())+`"`) || strings.Count(page, "this browser</span>") != 1 {
		t.Fatalf("the admin page does not mark this browser's session once:\n%s", page)
	}
	if r := admin.get("/profile"); !strings.Contains(r.body, `href="/admin"`) {
		t.Fatal("the administrator's pages do not link to /admin")
	}
	if r := bob.get("/profile"); strings.Contains(r.body, `href="/admin"`) {
		t.Fatal("a user's pages link to /admin")
	}

	// One session: no confirmation step.
	fp := store.Fingerprint(alice.sessionCookie())
	r := admin.form("/admin/revoke-session", url.Values{"fp": {fp}})
	if r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/admin?done=session&n=1" {
		t.Fatalf("revoke-session: %d %q %s", r.code, r.hdr.Get("Location"), r.body)
	}
	if alice.whoami() != "" || alice2.whoami() != "alice" || bob.whoami() != "bob" {
		t.Fatal("revoke-session revoked the wrong sessions")
	}
	if strings.Contains(list(), fp) {
		t.Fatal("the revoked session is still listed")
	}
	if r := admin.form("/admin/revoke-session", url.Values{"fp": {"not-a-fingerprint"}}); r.code != 400 || !strings.Contains(r.body, `role="alert"`) {
		t.Fatalf("bad fingerprint: %d", r.code)
	}

	// One user: first a question, then the act.
	alice.api("POST", "/api/login", creds("alice", goodPassword))
	r = admin.form("/admin/revoke-user", url.Values{"user": {"alice"}})
	if r.code != http.StatusOK || !strings.Contains(r.body, "Revoke every session of alice?") || !strings.Contains(r.body, "alice has 2 live session(s)") ||
		!strings.Contains(r.body, `name="confirm" value="yes"`) {
		t.Fatalf("revoke-user without confirmation: %d %s", r.code, r.body)
	}
	if alice.whoami() != "alice" || alice2.whoami() != "alice" {
		t.Fatal("revoke-user acted before it was confirmed")
	}
	r = admin.form("/admin/revoke-user", url.Values{"user": {"alice"}, "confirm": {"yes"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("revoke-user: %d %s", r.code, r.body)
	}
	if alice.whoami() != "" || alice2.whoami() != "" || bob.whoami() != "bob" {
		t.Fatal("revoke-user revoked the wrong sessions")
	}
	if r := admin.form("/admin/revoke-user", url.Values{"user": {"A B"}}); r.code != 400 {
		t.Fatalf("bad user: %d", r.code)
	}
	// A user whose sessions were revoked can log in again.
	alice.api("POST", "/api/login", creds("alice", goodPassword))
	if alice.whoami() != "alice" {
		t.Fatal("log-in after revoke-user failed")
	}

	// Everyone: a question, then the act, which ends the admin's session too.
	r = admin.form("/admin/revoke-all", url.Values{})
	if r.code != http.StatusOK || !strings.Contains(r.body, "Revoke every session of every user?") || !strings.Contains(r.body, "this browser") {
		t.Fatalf("revoke-all without confirmation: %d %s", r.code, r.body)
	}
	if alice.whoami() != "alice" {
		t.Fatal("revoke-all acted before it was confirmed")
	}
	r = admin.form("/admin/revoke-all", url.Values{"confirm": {"yes"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("revoke-all: %d", r.code)
	}
	if alice.whoami() != "" || bob.whoami() != "" || admin.whoami() != "" {
		t.Fatal("revoke-all left a session")
	}
	if list, err := e.m.Sessions(context.Background(), "", 0); err != nil || len(list) != 0 {
		t.Fatalf("sessions after revoke-all: %d, %v", len(list), err)
	}

	// The admin's forms are CSRF-protected like the rest.
	admin = e.admin()
	req := admin.newReq("POST", "/admin/revoke-all", strings.NewReader("confirm=yes"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := admin.do(req); r.code != http.StatusForbidden || admin.whoami() != testAdmin {
		t.Fatalf("cross-site revoke-all: %d", r.code)
	}

	// Each revocation leaves a revoke event in the request log.
	revokes := map[string]string{}
	for _, l := range e.logLines() {
		if l.Event == reqlog.EventRevoke {
			revokes[l.Path] = l.Detail
		}
	}
	want := map[string]string{"/admin/revoke-session": "session", "/admin/revoke-user": "user", "/admin/revoke-all": "all"}
	for p, d := range want {
		if revokes[p] != d {
			t.Errorf("request log: %s has revoke detail %q, want %q (all: %v)", p, revokes[p], d, revokes)
		}
	}
}

// Without -admin, the administrator is the account signed up first.
func TestAdminIsFirstAccount(t *testing.T) {
	e := newEnv(t, envOptions{edit: func(o *Options) { o.Admin = "" }})
	first, second := e.client(), e.client()
	first.signup("zed")
	time.Sleep(2 * time.Millisecond) // sign-up times are kept to the millisecond
	second.signup("amy")
	if r := first.get("/admin"); r.code != http.StatusOK {
		t.Fatalf("the first account's /admin: %d", r.code)
	}
	if r := second.get("/admin"); r.code != http.StatusForbidden {
		t.Fatalf("the second account's /admin: %d", r.code)
	}
}

func TestRequestLogLines(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.signup("alice")
	token := c.sessionCookie()
	fp := store.Fingerprint(token)
	c.whoami()
	c.api("POST", "/api/logout", nil)
	c.api("POST", "/api/login", creds("alice", "a wrong password, long enough"))
	bad := e.client()
	bad.hc.Jar.SetCookies(mustURL(t, e.srv.URL), []*http.Cookie{{Name: "session", Value: token}})
	bad.whoami()

	lines := e.logLines()
	b, err := os.ReadFile(e.logf)
	if err != nil {
		t.Fatal(err)
	}
	raw := string(b)
	if strings.Contains(raw, token) {
		t.Fatal("the request log holds a raw session token")
	}
	if strings.Contains(raw, goodPassword) {
		t.Fatal("the request log holds a password")
	}
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 5: %+v", len(lines), lines)
	}
	want := []struct {
		path                                  string
		status                                int
		sidIn, uidIn, sidOut, uidOut, uidView string
		event, detail                         string
	}{
		{"/api/signup", 201, "", "", fp, "alice", "alice", reqlog.EventLogin, ""},
		{"/api/whoami", 200, fp, "alice", "", "", "alice", "", ""},
		{"/api/logout", 200, fp, "alice", "", "", "", reqlog.EventLogout, ""},
		{"/api/login", 401, "", "", "", "", "", "", ""},
		{"/api/whoami", 200, "", "", "", "", "", reqlog.EventBadCookie, "unknown"},
	}
	for i, w := range want {
		l := lines[i]
		if l.Path != w.path || l.Status != w.status || l.SidIn != w.sidIn || l.UidIn != w.uidIn ||
			l.SidOut != w.sidOut || l.UidOut != w.uidOut || l.UidView != w.uidView || l.Event != w.event || l.Detail != w.detail {
			t.Errorf("line %d = %+v\nwant %+v", i+1, l, w)
		}
		if l.V != 1 || l.Seq != int64(i+1) || l.IP != "127.0.0.1" || l.Req == "" || l.Method == "" || l.Host == "" {
			t.Errorf("line %d lacks required fields: %+v", i+1, l)
		}
	}
}
