package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/report"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/memstore"
)

// flakyStore is a memstore whose every operation fails while down is set.
type flakyStore struct {
	*memstore.Store
	down atomic.Bool
}

var errDown = errors.New("flaky: store down")

func (f *flakyStore) Create(ctx context.Context, s *store.Session) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Create(ctx, s)
}

func (f *flakyStore) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.Find(ctx, h)
}

func (f *flakyStore) Delete(ctx context.Context, h store.Hash) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Delete(ctx, h)
}

func (f *flakyStore) Touch(ctx context.Context, h store.Hash, seen, idle time.Time, ip, ua string) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Touch(ctx, h, seen, idle, ip, ua)
}

func (f *flakyStore) List(ctx context.Context, opt store.ListOptions) ([]*store.Session, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.List(ctx, opt)
}

// With the session store down, nobody is served as anybody: log-ins fail
// with 503 and no cookie, a signed-in user reads as anonymous, and the
// pages that list sessions say they cannot.
func TestStoreDownFailsClosed(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	users, err := OpenUsers(filepath.Join(t.TempDir(), "u.db"), UsersOptions{Hash: testHash})
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	st := &flakyStore{Store: memstore.New(memstore.Options{})}
	m := session.New(st, session.Options{Logger: quiet, Dev: true})
	defer m.Close()
	reports := &lockedBuffer{}
	rep := report.New(report.Options{Sinks: []report.Sink{report.NewJSONSink(reports)}, SessionCookie: "session", Logger: quiet})
	app, err := New(Options{Sessions: m, Users: users, Logger: quiet, Report: rep})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app)
	defer srv.Close()
	e := &env{t: t, srv: srv}

	alice := e.client()
	alice.signup("alice")
	st.down.Store(true)

	if got := alice.whoami(); got != "" {
		t.Fatalf("whoami with the store down = %q, want null", got)
	}
	bob := e.client()
	r := bob.api("POST", "/api/signup", creds("bob", goodPassword))
	if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "session store unavailable") || bob.sessionCookie() != "" {
		t.Fatalf("signup with the store down: %d %s cookie %q", r.code, r.body, bob.sessionCookie())
	}
	r = bob.api("POST", "/api/login", creds("alice", goodPassword))
	if r.code != http.StatusServiceUnavailable || bob.sessionCookie() != "" {
		t.Fatalf("login with the store down: %d %s", r.code, r.body)
	}
	// The failure was reported through the request's scope, without the
	// password.
	var ev struct {
		Error   string `json:"error"`
		Scope   string `json:"scope"`
		Request struct {
			Method, Path string
		} `json:"request"`
	}
	line, _, _ := strings.Cut(reports.String(), "\n")
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("report %q: %v", reports.String(), err)
	}
	if ev.Scope != "request" || ev.Request.Path != "/api/signup" || !strings.Contains(ev.Error, "session login") {
		t.Fatalf("report: %+v", ev)
	}
	if strings.Contains(reports.String(), goodPassword) {
		t.Fatal("a report holds the password")
	}
	if r := alice.get("/profile"); r.code != http.StatusSeeOther {
		t.Fatalf("profile with the store down: %d (want the redirect an anonymous visitor gets)", r.code)
	}
	if r := alice.get("/admin"); r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/login" {
		t.Fatalf("admin with the store down: %d %s (want the redirect an anonymous visitor gets)", r.code, r.hdr.Get("Location"))
	}

	st.down.Store(false)
	if got := alice.whoami(); got != "alice" {
		t.Fatalf("after the store is back, whoami = %q: the session was lost", got)
	}
	// The sign-up that failed left no account behind: trying again works.
	bob.signup("bob")
	if got := bob.whoami(); got != "bob" {
		t.Fatalf("bob after signing up again: %q", got)
	}
}

// lockedBuffer is a bytes.Buffer for a sink that handlers write to while
// the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
