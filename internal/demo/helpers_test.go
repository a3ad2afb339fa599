package demo

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

// testHash is a cheap argon2id cost so that tests stay fast; the format
// and code path are the production ones.
var testHash = HashParams{Time: 1, Memory: 64, Threads: 1}

const (
	testAdmin    = "root"
	goodPassword = "correct horse battery staple"
)

type env struct {
	t     *testing.T
	srv   *httptest.Server
	app   *App
	m     *session.Manager
	users *Users
	st    *memstore.Store
	log   *reqlog.Writer
	logf  string
}

type envOptions struct {
	hash HashParams
	// edit, if set, changes the app's options before New.
	edit func(*Options)
	// now, if set, is the clock of the session manager and its store.
	now func() time.Time
}

func newEnv(t *testing.T, eo ...envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	h := testHash
	if len(eo) > 0 && eo[0].hash != (HashParams{}) {
		h = eo[0].hash
	}
	users, err := OpenUsers(filepath.Join(dir, "demo.db"), UsersOptions{Hash: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var now func() time.Time
	if len(eo) > 0 {
		now = eo[0].now
	}
	st := memstore.New(memstore.Options{Now: now})
	m := session.New(st, session.Options{Logger: quiet, Now: now, Dev: true})
	t.Cleanup(func() { m.Close() })
	logf := filepath.Join(dir, "requests.log")
	lw, err := reqlog.Open(logf, reqlog.WriterOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lw.Close() })
	opt := Options{Sessions: m, Users: users, Admin: testAdmin, Log: lw, Logger: quiet, Now: now}
	if len(eo) > 0 && eo[0].edit != nil {
		eo[0].edit(&opt)
	}
	app, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, app: app, m: m, users: users, st: st, log: lw, logf: logf}
}

// client is one user agent: its own cookie jar, redirects not followed.
type client struct {
	e  *env
	hc *http.Client
}

func (e *env) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &client{e: e, hc: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type resp struct {
	code int
	hdr  http.Header
	body string
}

func (c *client) do(req *http.Request) resp {
	c.e.t.Helper()
	res, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, string(b)}
}

func (c *client) newReq(method, path string, body io.Reader) *http.Request {
	c.e.t.Helper()
	req, err := http.NewRequest(method, c.e.srv.URL+path, body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	return req
}

// api sends a JSON body the way curl does: no Origin, no Sec-Fetch-Site.
func (c *client) api(method, path string, body any) resp {
	c.e.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.e.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req := c.newReq(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req)
}

func (c *client) get(path string) resp {
	c.e.t.Helper()
	return c.do(c.newReq("GET", path, nil))
}

// form posts a form as a browser on the same origin does.
func (c *client) form(path string, v url.Values) resp {
	c.e.t.Helper()
	req := c.newReq("POST", path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.do(req)
}

func creds(user, password string) map[string]string {
	return map[string]string{"user": user, "password": password}
}

// whoami returns the principal the server sees for c, "" for null.
func (c *client) whoami() string {
	c.e.t.Helper()
	r := c.api("GET", "/api/whoami", nil)
	if r.code != 200 {
		c.e.t.Fatalf("whoami: %d %s", r.code, r.body)
	}
	var b struct {
		User *string `json:"user"`
	}
	if err := json.Unmarshal([]byte(r.body), &b); err != nil {
		c.e.t.Fatalf("whoami body %q: %v", r.body, err)
	}
	if b.User == nil {
		return ""
	}
	if *b.User == "" {
		c.e.t.Fatalf("whoami answered an empty name instead of null: %s", r.body)
	}
	return *b.User
}

// sessionCookie returns the value of c's session cookie ("" if none).
func (c *client) sessionCookie() string {
	u, _ := url.Parse(c.e.srv.URL)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == "session" || ck.Name == session.DefaultCookieName {
			return ck.Value
		}
	}
	return ""
}

// signup signs a user up through the API and fails the test otherwise.
func (c *client) signup(user string) {
	c.e.t.Helper()
	if r := c.api("POST", "/api/signup", creds(user, goodPassword)); r.code != http.StatusCreated {
		c.e.t.Fatalf("signup %s: %d %s", user, r.code, r.body)
	}
}

// admin returns a client signed in as the administrator (signing the
// account up if needed).
func (e *env) admin() *client {
	e.t.Helper()
	c := e.client()
	if r := c.api("POST", "/api/login", creds(testAdmin, goodPassword)); r.code != http.StatusOK {
		c.signup(testAdmin)
	}
	return c
}

// logLines closes the request log and returns its lines.
func (e *env) logLines() []reqlog.Line {
	e.t.Helper()
	e.srv.Close() // every request has finished and logged
	if err := e.log.Close(); err != nil {
		e.t.Fatal(err)
	}
	b, err := os.ReadFile(e.logf)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []reqlog.Line
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var line reqlog.Line
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			e.t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, line)
	}
	return out
}
