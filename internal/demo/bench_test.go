package demo

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/report"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
	"github.com/cordon-sec/cordon/store/memstore"
	"github.com/cordon-sec/cordon/store/sqlitestore"
)

// benchApp returns the full app as `cordon demo` wires it (request log
// to io.Discard, error reporter, session middleware, cross-origin check,
// routes) over st, and the session cookie of a signed-in user.
func benchApp(b testing.TB, st store.Store) (*App, *http.Cookie) {
	b.Helper()
	return newBenchApp(b, st, true)
}

// benchAppNoReport is benchApp without the error reporter.
func benchAppNoReport(b testing.TB, st store.Store) (*App, *http.Cookie) {
	b.Helper()
	return newBenchApp(b, st, false)
}

func newBenchApp(b testing.TB, st store.Store, reporter bool) (*App, *http.Cookie) {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	users, err := OpenUsers(filepath.Join(b.TempDir(), "users.db"), UsersOptions{Hash: testHash})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { users.Close() })
	m := session.New(st, session.Options{Logger: quiet})
	b.Cleanup(func() { m.Close() })
	lw := reqlog.NewWriter(io.Discard, reqlog.WriterOptions{Logger: quiet})
	b.Cleanup(func() { lw.Close() })
	// The error reporter, as `cordon demo` wires it (its middleware runs
	// on every request).
	opt := Options{Sessions: m, Users: users, Log: lw, Logger: quiet}
	if reporter {
		opt.Report = report.New(report.Options{Sinks: []report.Sink{report.NewSlogSink(quiet)}, Logger: quiet})
	}
	app, err := New(opt)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/api/signup", strings.NewReader(`{"user":"bench","password":"`+goodPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	app.ServeHTTP(rec, req)
	if rec.Code != 201 || len(rec.Result().Cookies()) != 1 {
		b.Fatalf("signup: %d %s", rec.Code, rec.Body)
	}
	return app, rec.Result().Cookies()[0]
}

// BenchmarkWhoami is one signed-in GET /api/whoami through the whole app:
// request log, session load, cross-origin check, handler, JSON answer.
func BenchmarkWhoami(b *testing.B) {
	stores := map[string]func(b *testing.B) store.Store{
		"memstore": func(*testing.B) store.Store { return memstore.New(memstore.Options{}) },
		"sqlitestore": func(b *testing.B) store.Store {
			st, err := sqlitestore.Open(filepath.Join(b.TempDir(), "s.db"), sqlitestore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		},
		// `cordon demo`'s defaults: SQLite behind the in-process cache.
		"sqlite+cache": func(b *testing.B) store.Store { return cachedSQLite(b) },
	}
	for _, name := range []string{"memstore", "sqlitestore", "sqlite+cache"} {
		b.Run(name, func(b *testing.B) {
			app, cookie := benchApp(b, stores[name](b))
			req := httptest.NewRequest("GET", "/api/whoami", nil)
			req.AddCookie(cookie)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				app.ServeHTTP(rec, req)
				if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"bench"`) {
					b.Fatalf("whoami: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkAuthenticate is the password check with the production cost
// (DefaultHashParams): a known user, and an unknown one (the dummy hash).
func BenchmarkAuthenticate(b *testing.B) {
	u, err := OpenUsers(filepath.Join(b.TempDir(), "u.db"), UsersOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer u.Close()
	ctx := context.Background()
	if err := u.Create(ctx, "alice", goodPassword); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"alice", "nobody"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := u.Authenticate(ctx, name, "a wrong password, long enough"); err != ErrBadCredentials {
					b.Fatal(err)
				}
			}
		})
	}
}

// cachedSQLite is `cordon demo`'s default session store: a SQLite file
// behind the in-process cache (store/cache) with a one-second bound.
func cachedSQLite(tb testing.TB) store.Store {
	tb.Helper()
	st, err := sqlitestore.Open(filepath.Join(tb.TempDir(), "s.db"), sqlitestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ca := cache.New(st, cache.Options{Bound: time.Second})
	tb.Cleanup(func() { ca.Close(); st.Close() })
	return ca
}

// discardWriter is a ResponseWriter that keeps the status and drops the
// body, allocating nothing itself, so that allocations counted around
// the app are the app's.
type discardWriter struct {
	h    http.Header
	code int
	body []byte
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.body = append(w.body[:0], p...)
	return len(p), nil
}

// BenchmarkWhoamiApp is BenchmarkWhoami on `cordon demo`'s default store
// with a ResponseWriter that costs nothing: allocs/op is what the app
// (request log, error reporter, session middleware, headers, handler)
// costs per request, plus the benchmark's own 3 allocations (about 400 B):
// each request gets a cancellable context and a copy of the request
// carrying it, as net/http gives each one (the reporter's scope ends
// when that context does). reporter=off is the same app without
// Options.Report.
func BenchmarkWhoamiApp(b *testing.B) {
	for _, name := range []string{"reporter=on", "reporter=off"} {
		b.Run(name, func(b *testing.B) {
			var app *App
			var cookie *http.Cookie
			if name == "reporter=on" {
				app, cookie = benchApp(b, cachedSQLite(b))
			} else {
				app, cookie = benchAppNoReport(b, cachedSQLite(b))
			}
			req := httptest.NewRequest("GET", "/api/whoami", nil)
			req.AddCookie(cookie)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.code = 0
				ctx, cancel := context.WithCancel(context.Background())
				app.ServeHTTP(w, req.WithContext(ctx))
				cancel()
				if w.code != 200 || !bytes.Contains(w.body, []byte(`"bench"`)) {
					b.Fatalf("whoami: %d %s", w.code, w.body)
				}
			}
		})
	}
}
