package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/memstore"
)

// quiet discards the manager's log; tests assert on events instead.
var quiet = slog.New(slog.DiscardHandler)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 2, 17, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newMemStore(t *testing.T, now func() time.Time) store.Full {
	t.Helper()
	return memstore.New(memstore.Options{Now: now})
}

// events collects the manager's events.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) on(_ context.Context, ev Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) named(name string) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.evs {
		if ev.Name == name {
			out = append(out, ev)
		}
	}
	return out
}

// fixture is a manager over a memstore served by an httptest server, with
// a client that keeps cookies.
type fixture struct {
	t   *testing.T
	m   *Manager
	st  store.Full
	clk *clock
	ev  *events
	srv *httptest.Server
	c   *http.Client
}

// newFixture serves h behind a manager in development mode (the test
// server is plain HTTP); see TestDevModeIsExplicit for the secure default.
func newFixture(t *testing.T, h http.Handler, opt Options) *fixture {
	t.Helper()
	opt.Dev = true
	f := &fixture{t: t, clk: newClock(), ev: &events{}}
	if opt.Now == nil {
		opt.Now = f.clk.Now
	}
	f.st = newMemStore(t, opt.Now)
	if opt.Logger == nil {
		opt.Logger = quiet
	}
	if opt.OnEvent == nil {
		opt.OnEvent = f.ev.on
	}
	f.m = New(f.st, opt)
	t.Cleanup(func() { f.m.Close() })
	f.srv = httptest.NewServer(f.m.Middleware(h))
	t.Cleanup(f.srv.Close)
	f.c = f.client()
	return f
}

func (f *fixture) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// get requests path with client c and returns the body and response.
func (f *fixture) get(c *http.Client, path string) (string, *http.Response) {
	f.t.Helper()
	resp, err := c.Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("GET %s: read: %v", path, err)
	}
	return string(b), resp
}

// getCookie requests path with value as the session cookie and no jar,
// and returns the body and response. t is the test (or subtest) asking.
func (f *fixture) getCookie(t *testing.T, path, value string) (string, *http.Response) {
	t.Helper()
	req, err := http.NewRequest("GET", f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", "session="+value)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", path, err)
	}
	return string(b), resp
}

// cookie returns the session cookie value c holds, "" if none.
func (f *fixture) cookie(c *http.Client) string {
	u, _ := url.Parse(f.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "session" || ck.Name == DefaultCookieName {
			return ck.Value
		}
	}
	return ""
}

// failingStore wraps a store and fails every call while down is set.
type failingStore struct {
	store.Full
	mu   sync.Mutex
	down bool
}

var errDown = errors.New("store is down")

func (s *failingStore) setDown(d bool) { s.mu.Lock(); s.down = d; s.mu.Unlock() }
func (s *failingStore) isDown() bool   { s.mu.Lock(); defer s.mu.Unlock(); return s.down }

func (s *failingStore) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	if s.isDown() {
		return nil, errDown
	}
	return s.Full.Find(ctx, h)
}

func (s *failingStore) Create(ctx context.Context, ss *store.Session) error {
	if s.isDown() {
		return errDown
	}
	return s.Full.Create(ctx, ss)
}

func (s *failingStore) Update(ctx context.Context, ss *store.Session) error {
	if s.isDown() {
		return errDown
	}
	return s.Full.Update(ctx, ss)
}
