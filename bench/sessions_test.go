// Package bench compares cordon's per-request cost with the session
// libraries Go users pick today, on the same handler. It is a module of its
// own so that the cordon library never depends on its peers.
//
// Run it with:
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 5 | tee out.txt
package bench

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/alexedwards/scs/sqlite3store"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/gorilla/sessions"
	_ "github.com/mattn/go-sqlite3"

	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
	cmem "github.com/cordon-sec/cordon/store/memstore"
	"github.com/cordon-sec/cordon/store/sqlitestore"
)

// contender is one session library wired around the same handler: it reads
// the value "greeting", and (unless read-only) writes a counter that changes
// on every request, so that no library can skip the write as a no-op.
type contender struct {
	name string
	// setup returns the handler through the library's full middleware and
	// a request that carries a valid session cookie holding "hello".
	setup func(tb testing.TB, readOnly bool) (http.Handler, *http.Request)
}

var quiet = slog.New(slog.DiscardHandler)

func cordonWith(newStore func(tb testing.TB) store.Store) func(testing.TB, bool) (http.Handler, *http.Request) {
	return func(tb testing.TB, readOnly bool) (http.Handler, *http.Request) {
		m := session.New(newStore(tb), session.Options{Logger: quiet})
		tb.Cleanup(func() { m.Close() })
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := session.From(r)
			v, err := s.GetString("greeting")
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if !readOnly {
				n, _ := s.GetInt64("n")
				if err := s.Put("n", n+1); err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
			}
			w.Write([]byte(v))
		}))
		login := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := session.From(r)
			if err := s.Login("alice"); err != nil {
				tb.Fatal(err)
			}
			if err := s.Put("greeting", "hello"); err != nil {
				tb.Fatal(err)
			}
		}))
		return h, withCookie(tb, login)
	}
}

func scsWith(newStore func(tb testing.TB) scs.Store) func(testing.TB, bool) (http.Handler, *http.Request) {
	return func(tb testing.TB, readOnly bool) (http.Handler, *http.Request) {
		sm := scs.New()
		sm.Store = newStore(tb)
		h := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := sm.GetString(r.Context(), "greeting")
			if !readOnly {
				sm.Put(r.Context(), "n", sm.GetInt(r.Context(), "n")+1)
			}
			w.Write([]byte(v))
		}))
		login := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := sm.RenewToken(r.Context()); err != nil {
				tb.Fatal(err)
			}
			sm.Put(r.Context(), "user", "alice")
			sm.Put(r.Context(), "greeting", "hello")
		}))
		return h, withCookie(tb, login)
	}
}

func gorillaCookie(tb testing.TB, readOnly bool) (http.Handler, *http.Request) {
	cs := sessions.NewCookieStore([]byte("0123456789abcdef0123456789abcdef"), []byte("0123456789abcdef0123456789abcdef"))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := cs.Get(r, "session")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		v, _ := s.Values["greeting"].(string)
		if !readOnly {
			n, _ := s.Values["n"].(int)
			s.Values["n"] = n + 1
			if err := s.Save(r, w); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		w.Write([]byte(v))
	})
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := cs.Get(r, "session")
		s.Values["user"] = "alice"
		s.Values["greeting"] = "hello"
		if err := s.Save(r, w); err != nil {
			tb.Fatal(err)
		}
	})
	return h, withCookie(tb, login)
}

func bare(tb testing.TB, readOnly bool) (http.Handler, *http.Request) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }),
		httptest.NewRequest("GET", "https://example.com/", nil)
}

// withCookie runs login once and returns a request carrying the cookies it
// set.
func withCookie(tb testing.TB, login http.Handler) *http.Request {
	tb.Helper()
	rec := httptest.NewRecorder()
	login.ServeHTTP(rec, httptest.NewRequest("GET", "https://example.com/login", nil))
	cookies := rec.Result().Cookies()
	if len(cookies) == 0 {
		tb.Fatal("login set no cookie")
	}
	req := httptest.NewRequest("GET", "https://example.com/", nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return req
}

func scsSQLite(tb testing.TB) scs.Store {
	db, err := sql.Open("sqlite3", filepath.Join(tb.TempDir(), "scs.db")+"?_journal_mode=WAL")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	for _, q := range []string{
		`PRAGMA journal_mode=WAL`,
		`CREATE TABLE sessions (token TEXT PRIMARY KEY, data BLOB NOT NULL, expiry REAL NOT NULL)`,
		`CREATE INDEX sessions_expiry_idx ON sessions(expiry)`,
	} {
		if _, err := db.Exec(q); err != nil {
			tb.Fatal(err)
		}
	}
	st := sqlite3store.NewWithCleanupInterval(db, 0)
	return st
}

func cordonSQLite(tb testing.TB) store.Store {
	st, err := sqlitestore.Open(filepath.Join(tb.TempDir(), "cordon.db"), sqlitestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

var contenders = []contender{
	{"bare", bare},
	{"cordon+memstore", cordonWith(func(testing.TB) store.Store { return cmem.New(cmem.Options{}) })},
	{"cordon+sqlitestore", cordonWith(cordonSQLite)},
	{"cordon+sqlitestore+cache", cordonWith(func(tb testing.TB) store.Store {
		c := cache.New(cordonSQLite(tb).(store.Full), cache.Options{})
		tb.Cleanup(func() { c.Close() })
		return c
	})},
	{"scs+memstore", scsWith(func(testing.TB) scs.Store { return memstore.NewWithCleanupInterval(0) })},
	{"scs+sqlite3store-wal", scsWith(scsSQLite)},
	{"gorilla+cookiestore", gorillaCookie},
}

// TestContendersReadWhatWasWritten makes sure every contender really runs
// its session machinery: the value written at login comes back.
func TestContendersReadWhatWasWritten(t *testing.T) {
	for _, c := range contenders {
		for _, ro := range []bool{false, true} {
			h, req := c.setup(t, ro)
			for range 3 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req.Clone(context.Background()))
				if rec.Code != 200 || rec.Body.String() != "hello" {
					t.Fatalf("%s (read-only %v): %d %q", c.name, ro, rec.Code, rec.Body)
				}
			}
		}
	}
}

func run(b *testing.B, readOnly bool, only map[string]bool) {
	for _, c := range contenders {
		if only != nil && !only[c.name] {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			h, req := c.setup(b, readOnly)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkReadWrite: a request with a valid session cookie that reads one
// value and writes one value, through each library's full middleware.
func BenchmarkReadWrite(b *testing.B) { run(b, false, nil) }

// BenchmarkReadOnly: the same request without the write.
func BenchmarkReadOnly(b *testing.B) {
	run(b, true, map[string]bool{"bare": true, "cordon+memstore": true, "cordon+sqlitestore": true, "cordon+sqlitestore+cache": true, "scs+memstore": true, "scs+sqlite3store-wal": true})
}
