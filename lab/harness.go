package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// Observed is one response as the client received it, and what the client
// side makes of it.
type Observed struct {
	// Request is the server's number of the request.
	Request int64 `json:"request"`
	// Status is the HTTP status received.
	Status int `json:"status"`
	// As is the principal the client was (the session it sent), "" if
	// anonymous.
	As string `json:"as"`
	// BodyUser is the user the body was produced for, when it names one.
	BodyUser string `json:"body_user,omitempty"`
	// CookieFP is the fingerprint of the session cookie the response set,
	// "" if none. CookieUser is the principal of that session per the store.
	CookieFP   string `json:"cookie_fp,omitempty"`
	CookieUser string `json:"cookie_user,omitempty"`
	// Leaked reports whether the response set a session cookie of a
	// principal other than the one the client was or the body shows.
	Leaked bool `json:"leaked"`
	// Bound reports whether the response also set a bound cookie (DBSC).
	Bound bool `json:"bound_cookie,omitempty"`
	// Error is the error the body gives, if any.
	Error string `json:"error,omitempty"`
}

// harness drives one composition under the scheduler, over real HTTP on a
// loopback listener.
type harness struct {
	srv    *Server
	ts     *httptest.Server
	client *http.Client
	sched  *Sched
	trace  *Trace
	st     store.Store
	ctx    context.Context
	cancel context.CancelFunc

	bg   *Actor
	req  *Actor
	sent int64 // requests sent; the server numbers them in this order
	resp chan clientResult
	as   string // who the in-flight request's client is

	failNext bool
}

type clientResult struct {
	resp *http.Response
	body []byte
	err  error
}

func newHarness(m Mitigations, st store.Store, trace *Trace, sched *Sched, now func() time.Time, src io.Reader) (*harness, error) {
	h := &harness{sched: sched, trace: trace, st: st, resp: make(chan clientResult, 1)}
	srv, err := NewServer(Options{
		Mitigations: m, Store: st, Now: now, Rand: src,
		sched: sched, trace: trace,
		fail: func() bool { return h.failNext },
	})
	if err != nil {
		return nil, err
	}
	h.srv = srv
	h.ctx, h.cancel = context.WithCancel(context.Background())
	srv.Start(h.ctx)
	if h.bg, err = sched.waitEnter("background"); err != nil {
		h.cancel()
		return nil, err
	}
	if err := sched.runUntil(h.bg, "sleep"); err != nil {
		h.cancel()
		return nil, err
	}
	h.ts = httptest.NewServer(srv)
	h.client = h.ts.Client()
	h.client.Timeout = 30 * time.Second
	h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return h, nil
}

// tick wakes the sleeping background goroutine for one refresh, which fails
// if fail is set, and runs it until it yields or sleeps again.
func (h *harness) tick(fail bool) error {
	if h.bg.At != "sleep" {
		return fmt.Errorf("lab: harness: background is at %q, not asleep", h.bg.At)
	}
	h.failNext = fail
	if err := h.sched.step(h.bg); err != nil {
		return err
	}
	h.failNext = false
	return nil
}

// close stops the background goroutine and the server.
func (h *harness) close() {
	h.cancel()
	if h.bg != nil && h.bg.At == "sleep" {
		_ = h.sched.step(h.bg)
	}
	if h.req != nil && h.req.At != "exit" {
		// Should not happen; let the request run out so the server can close.
		_ = h.sched.runUntil(h.req, "exit")
	}
	h.ts.CloseClientConnections()
	h.ts.Close()
	if h.bg == nil || h.bg.At == "exit" {
		h.srv.Close()
	}
}

// browser is one client of a replay: an HTTP client with a cookie jar, so
// that what a response sets is what its next request sends.
type browser struct {
	name   string // whose browser: "alice", "bob", "" for anonymous
	client *http.Client
}

// newBrowser returns a browser for the harness's server holding token as
// its session cookie (none if "").
func (h *harness) newBrowser(name, token string) (*browser, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(h.ts.URL)
	if err != nil {
		return nil, err
	}
	if token != "" {
		jar.SetCookies(u, []*http.Cookie{{Name: CookieName, Value: token, Path: "/"}})
	}
	c := *h.client
	c.Jar = jar
	return &browser{name: name, client: &c}, nil
}

// sendFrom starts a request from browser b (its cookie jar decides what it
// sends) and waits until the server's request goroutine has entered.
func (h *harness) sendFrom(b *browser, method, path string) error {
	return h.start(b.client, method, path, "", b.name, nil)
}

// drive runs f, a client that may send any number of requests one after
// the other (a DBSC registration or refresh), and lets each request it
// sends run to its end.
func (h *harness) drive(f func() error) error {
	if h.req != nil {
		return errors.New("lab: harness: a request is already in flight")
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	for {
		a, fin, err := h.sched.waitEnterOr("request", done)
		if fin || err != nil {
			return err
		}
		if err := h.sched.runUntil(a, "exit"); err != nil {
			return err
		}
	}
}

// send starts a request as the client holding token (as = its principal)
// and waits until the server's request goroutine has entered.
func (h *harness) send(method, path, token, as string, form url.Values) error {
	return h.start(h.client, method, path, token, as, form)
}

func (h *harness) start(client *http.Client, method, path, token, as string, form url.Values) error {
	if h.req != nil {
		return errors.New("lab: harness: a request is already in flight")
	}
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		return err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	}
	h.as = as
	h.sent++
	what := h.srv.rt.describe(token)
	if client.Jar != nil {
		what = "its browser holds " + h.srv.rt.describe(cookieOf(client.Jar, req.URL, CookieName))
		if bv := cookieOf(client.Jar, req.URL, BoundCookieName); bv != "" {
			what += " and " + h.srv.dbscDescribe(bv)
		}
	}
	h.trace.Note("client", "send", fmt.Sprintf("%s %s as %s (%s)", method, path, orAnon(as), what))
	go func() {
		resp, err := client.Do(req)
		var b []byte
		if err == nil {
			b, err = io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
		}
		h.resp <- clientResult{resp, b, err}
	}()
	a, err := h.sched.waitEnter("request")
	if err != nil {
		return err
	}
	h.req = a
	return nil
}

func cookieOf(jar http.CookieJar, u *url.URL, name string) string {
	for _, c := range jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// finish lets the in-flight request run to its end and reads the response.
func (h *harness) finish() (Observed, error) {
	if h.req == nil {
		return Observed{}, errors.New("lab: harness: no request in flight")
	}
	if err := h.sched.runUntil(h.req, "exit"); err != nil {
		return Observed{}, err
	}
	return h.collect()
}

// collect reads the response of the request that has exited.
func (h *harness) collect() (Observed, error) {
	h.req = nil
	var r clientResult
	select {
	case r = <-h.resp:
	case <-time.After(30 * time.Second):
		return Observed{}, fmt.Errorf("%w: no response", ErrStuck)
	}
	if r.err != nil {
		return Observed{}, fmt.Errorf("lab: request: %w", r.err)
	}
	o, err := observe(h.ctx, h.st, h.as, r.resp, r.body)
	if o.Request == 0 {
		// A response the guard failed closed has no body of ours.
		o.Request = h.sent
	}
	return o, err
}

// observe reads a response the way its client sees it: the status, the
// user the body names and the session cookie set, whose principal the
// investigator looks up in the store.
func observe(ctx context.Context, st store.Store, as string, resp *http.Response, raw []byte) (Observed, error) {
	o := Observed{Status: resp.StatusCode, As: as}
	var b body
	if err := json.Unmarshal(raw, &b); err == nil {
		o.Request = b.Request
		o.Error = b.Error
		if b.Authed {
			o.BodyUser = b.User
		}
	}
	o.Bound = responseCookie(resp, BoundCookieName) != ""
	if v := responseCookie(resp, CookieName); v != "" {
		o.CookieFP = store.Fingerprint(v)
		s, err := st.Find(ctx, store.HashToken(v))
		switch {
		case err == nil:
			o.CookieUser = s.Principal
		case errors.Is(err, store.ErrNotFound):
			o.CookieUser = "?unknown session"
		default:
			return o, fmt.Errorf("lab: observe: %w", err)
		}
	}
	want := o.As
	if o.BodyUser != "" {
		want = o.BodyUser
	}
	o.Leaked = o.CookieFP != "" && o.CookieUser != want
	return o, nil
}
