package session_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/dbsc/dbsctest"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type dbscApp struct {
	srv *httptest.Server
	m   *session.Manager
	clk *clock
	ev  chan session.Event
}

func newDBSCApp(t *testing.T, on bool) *dbscApp {
	t.Helper()
	a := &dbscApp{clk: &clock{t: time.Now()}, ev: make(chan session.Event, 1000)}
	opt := session.Options{Dev: true, Now: a.clk.Now, OnEvent: func(_ context.Context, e session.Event) {
		select {
		case a.ev <- e:
		default:
		}
	}}
	if on {
		opt.DBSC = &session.DBSC{TTL: 10 * time.Minute}
	}
	a.m = session.New(memstore.New(memstore.Options{}), opt)
	t.Cleanup(func() { a.m.Close() })
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Login(r.FormValue("u")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Logout(); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		p, err := session.From(r).Principal()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.WriteString(w, p)
	})
	a.srv = httptest.NewServer(a.m.Middleware(mux))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *dbscApp) browser(t *testing.T, key *dbsctest.Client) *dbsctest.Browser {
	jar, _ := cookiejar.New(nil)
	return &dbsctest.Browser{HTTP: &http.Client{Jar: jar}, Key: key}
}

func (a *dbscApp) login(t *testing.T, b *dbsctest.Browser, user string) *http.Response {
	t.Helper()
	resp, err := b.HTTP.PostForm(a.srv.URL+"/login", url.Values{"u": {user}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return resp
}

func (a *dbscApp) me(t *testing.T, c *http.Client) string {
	t.Helper()
	resp, err := c.Get(a.srv.URL + "/me")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// thief copies every cookie the browser holds into a new client that has
// no key.
func (a *dbscApp) thief(t *testing.T, b *dbsctest.Browser) *dbsctest.Browser {
	u, _ := url.Parse(a.srv.URL)
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(u, b.HTTP.Jar.Cookies(u))
	th := &dbsctest.Browser{HTTP: &http.Client{Jar: jar}, Key: dbsctest.NewES256(), ID: b.ID, RefreshURL: b.RefreshURL}
	return th
}

func TestDBSCBindsTheSessionToTheDevice(t *testing.T) {
	for name, key := range map[string]*dbsctest.Client{"ES256": dbsctest.NewES256(), "RS256": dbsctest.NewRS256(2048)} {
		for _, quote := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/raw", true: "/quoted"}[quote], func(t *testing.T) {
				a := newDBSCApp(t, true)
				b := a.browser(t, key)
				b.Quote = quote
				resp := a.login(t, b, "alice")
				reg := resp.Header.Get(dbsc.HeaderRegistration)
				if !strings.HasPrefix(reg, "(ES256 RS256);path=") {
					t.Fatalf("login offers %q", reg)
				}
				if st, err := b.Register(resp); err != nil || st != 200 {
					t.Fatalf("register: %d %v", st, err)
				}
				if got := a.me(t, b.HTTP); got != "alice" {
					t.Fatalf("after registration: %q", got)
				}
				list, _ := a.m.Sessions(context.Background(), "alice", 0)
				if len(list) != 1 || !list[0].DeviceBound {
					t.Errorf("Sessions = %+v, want one device-bound", list)
				}

				thief := a.thief(t, b)
				if got := a.me(t, thief.HTTP); got != "alice" {
					t.Fatalf("a copy of live cookies within the TTL: %q (it works until the bound cookie ends)", got)
				}
				a.clk.Add(11 * time.Minute)
				if got := a.me(t, b.HTTP); got != "" {
					t.Errorf("the owner past the TTL without a refresh is %q, want anonymous", got)
				}
				if got := a.me(t, thief.HTTP); got != "" {
					t.Errorf("the thief past the TTL is %q, want anonymous", got)
				}
				// The thief cannot refresh: its key is not the session's.
				st, cookies, err := thief.Refresh()
				if err != nil || st != http.StatusBadRequest || len(cookies) != 0 {
					t.Errorf("thief's refresh: %d %q %v; want 400 and no cookie", st, cookies, err)
				}
				// The owner can, and the stolen values stay dead after it.
				st, cookies, err = b.Refresh()
				if err != nil || st != 200 || len(cookies) != 1 {
					t.Fatalf("owner's refresh: %d %q %v", st, cookies, err)
				}
				if got := a.me(t, b.HTTP); got != "alice" {
					t.Errorf("owner after refresh: %q", got)
				}
				if got := a.me(t, thief.HTTP); got != "" {
					t.Errorf("thief after the owner's refresh: %q, want anonymous", got)
				}
				// Each refresh issues a new value.
				before := cookies[0]
				if _, cookies, _ = b.Refresh(); len(cookies) != 1 || cookies[0] == before {
					t.Errorf("a second refresh reissued %q", cookies)
				}
			})
		}
	}
}

// Without DBSC the same theft works for the session's whole life: the
// test above would fail on a manager that does not bind.
func TestWithoutDBSCACopiedCookieKeepsWorking(t *testing.T) {
	a := newDBSCApp(t, false)
	b := a.browser(t, dbsctest.NewES256())
	resp := a.login(t, b, "alice")
	if h := resp.Header.Get(dbsc.HeaderRegistration); h != "" {
		t.Fatalf("registration offered with DBSC off: %q", h)
	}
	thief := a.thief(t, b)
	a.clk.Add(11 * time.Minute)
	if got := a.me(t, thief.HTTP); got != "alice" {
		t.Fatalf("thief = %q; the contrast this test shows is gone", got)
	}
}

func TestDBSCStaleProofGetsAFreshChallenge(t *testing.T) {
	a := newDBSCApp(t, true)
	b := a.browser(t, dbsctest.NewES256())
	if st, err := b.Register(a.login(t, b, "alice")); st != 200 || err != nil {
		t.Fatal(st, err)
	}
	st, ch, _, err := b.RefreshWith("")
	if err != nil || st != 403 || ch == "" {
		t.Fatalf("first refresh: %d %q %v", st, ch, err)
	}
	proof := b.Key.RefreshProof(ch)
	if st, _, cookies, _ := b.RefreshWith(proof); st != 200 || len(cookies) != 1 {
		t.Fatalf("proof: %d %q", st, cookies)
	}
	// The same validly signed proof again (a cached one): 403 with a new
	// challenge, not a session-ending status, and no cookie.
	st, ch2, cookies, err := b.RefreshWith(proof)
	if err != nil || st != 403 || ch2 == "" || ch2 == ch || len(cookies) != 0 {
		t.Fatalf("replayed proof: %d %q %q %v", st, ch2, cookies, err)
	}
	// An expired challenge is stale too.
	a.clk.Add(6 * time.Minute)
	if st, ch3, cookies, _ := b.RefreshWith(b.Key.RefreshProof(ch2)); st != 403 || ch3 == "" || len(cookies) != 0 {
		t.Fatalf("expired challenge: %d %q", st, cookies)
	}
}

func TestDBSCEndsWithTheSession(t *testing.T) {
	for _, end := range []string{"logout", "revoke"} {
		t.Run(end, func(t *testing.T) {
			a := newDBSCApp(t, true)
			b := a.browser(t, dbsctest.NewES256())
			if st, err := b.Register(a.login(t, b, "alice")); st != 200 || err != nil {
				t.Fatal(st, err)
			}
			if end == "logout" {
				resp, err := b.HTTP.Post(a.srv.URL+"/logout", "", nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				deleted := false
				for _, c := range resp.Header.Values("Set-Cookie") {
					deleted = deleted || strings.HasPrefix(c, "cordon-bound=;") && strings.Contains(c, "Max-Age=0")
				}
				if !deleted {
					t.Errorf("log-out left the bound cookie: %q", resp.Header.Values("Set-Cookie"))
				}
			} else if err := a.m.RevokePrincipal(context.Background(), "alice"); err != nil {
				t.Fatal(err)
			}
			st, cookies, err := b.Refresh()
			if err != nil || st != http.StatusUnauthorized {
				t.Errorf("refresh after %s: %d %v, want 401", end, st, err)
			}
			for _, c := range cookies {
				if !strings.Contains(c, "Max-Age=0") {
					t.Errorf("refresh after %s set %q", end, c)
				}
			}
		})
	}
}

// Hostile and careless requests to the endpoints: a 4xx, never a 5xx,
// never a cookie.
func TestDBSCEndpointsRefuseBadInput(t *testing.T) {
	a := newDBSCApp(t, true)
	owner := a.browser(t, dbsctest.NewES256())
	resp := a.login(t, owner, "alice")
	reg, err := dbsctest.ParseRegistration(resp.Header.Get(dbsc.HeaderRegistration))
	if err != nil {
		t.Fatal(err)
	}
	regURL := a.srv.URL + reg.Path
	other := dbsctest.NewES256()
	post := func(c *http.Client, u string, h map[string]string) (int, []string) {
		req, _ := http.NewRequest(http.MethodPost, u, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode, r.Header.Values("Set-Cookie")
	}
	anon := &http.Client{}
	cases := []struct {
		name string
		c    *http.Client
		h    map[string]string
	}{
		{"no proof", owner.HTTP, nil},
		{"garbage", owner.HTTP, map[string]string{dbsc.HeaderResponse: "not a jwt"}},
		{"alg none", owner.HTTP, map[string]string{dbsc.HeaderResponse: none(reg.Challenge)}},
		{"wrong challenge", owner.HTTP, map[string]string{dbsc.HeaderResponse: other.RegistrationProof("made-up", "")}},
		{"refresh-shaped proof", owner.HTTP, map[string]string{dbsc.HeaderResponse: other.RefreshProof(reg.Challenge)}},
		{"no session", anon, map[string]string{dbsc.HeaderResponse: other.RegistrationProof(reg.Challenge, "")}},
		{"huge", owner.HTTP, map[string]string{dbsc.HeaderResponse: strings.Repeat("a", 9000)}},
	}
	for _, tc := range cases {
		st, cookies := post(tc.c, regURL, tc.h)
		if st < 400 || st >= 500 || len(cookies) != 0 {
			t.Errorf("register, %s: %d %q; want 4xx and no cookie", tc.name, st, cookies)
		}
	}
	// None of those attempts spent the offer: the browser's own
	// registration still goes through, once.
	if st, err := owner.Register(resp); st != 200 || err != nil {
		t.Errorf("registration after hostile attempts: %d %v", st, err)
	}
	if st, _ := owner.Register(resp); st != http.StatusUnauthorized {
		t.Errorf("a second registration of the same offer: %d, want 401", st)
	}
	// Refresh endpoint without a binding, with malformed ids, by GET.
	refURL := a.srv.URL + "/.cordon/dbsc/refresh"
	for name, h := range map[string]map[string]string{
		"no id":         nil,
		"malformed id":  {dbsc.HeaderSessionID: "a b"},
		"unknown id":    {dbsc.HeaderSessionID: "nope"},
		"proof, no key": {dbsc.HeaderSessionID: "nope", dbsc.HeaderResponse: other.RefreshProof("x")},
	} {
		if st, cookies := post(owner.HTTP, refURL, h); st < 400 || st >= 500 || len(cookies) != 0 {
			t.Errorf("refresh, %s: %d %q", name, st, cookies)
		}
	}
	r, err := owner.HTTP.Get(refURL)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET refresh: %d", r.StatusCode)
	}
}

func none(ch string) string {
	h := `{"alg":"none","typ":"dbsc+jwt"}`
	p := `{"jti":"` + ch + `"}`
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(h)) + "." + enc([]byte(p)) + "."
}
