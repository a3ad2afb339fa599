package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/store"
)

func TestStaleHandleRefusesEverything(t *testing.T) {
	kept := make(chan *Session, 1)
	mux := http.NewServeMux()
	mux.Handle("/", app())
	var origin string
	mux.HandleFunc("/keep", func(w http.ResponseWriter, r *http.Request) {
		s, here := From(r), scope.Caller(0)
		origin = here
		kept <- s
		fmt.Fprint(w, "kept")
	})
	f := newFixture(t, mux, Options{})
	f.get(f.c, "/login?u=alice")
	f.get(f.c, "/keep")
	s := <-kept
	ops := map[string]func() error{
		"Principal": func() error { _, err := s.Principal(); return err },
		"Get":       func() error { _, _, err := s.Get("k"); return err },
		"Put":       func() error { return s.Put("k", "v") },
		"Delete":    func() error { return s.Delete("k") },
		"Keys":      func() error { _, err := s.Keys(); return err },
		"Login":     func() error { return s.Login("mallory") },
		"Renew":     func() error { return s.Renew() },
		"Logout":    func() error { return s.Logout() },
		"Fingerprint": func() error {
			_, err := s.Fingerprint()
			return err
		},
	}
	for name, op := range ops {
		err := op()
		if !errors.Is(err, ErrRequestEnded) {
			t.Errorf("%s on a sealed handle = %v, want ErrRequestEnded", name, err)
			continue
		}
		if !strings.Contains(err.Error(), origin) {
			t.Errorf("%s error %q does not name the origin %s", name, err, origin)
		}
	}
	if got := len(f.ev.named(reqlog.EventStaleUse)); got != len(ops) {
		t.Errorf("%d stale_use events, want %d", got, len(ops))
	}
	if ev := f.ev.named(reqlog.EventStaleUse); len(ev) > 0 && ev[0].Origin != origin {
		t.Errorf("stale_use origin %q, want %q", ev[0].Origin, origin)
	}
	// The stale Login did nothing: alice is still alice and no mallory
	// session exists.
	if body, _ := f.get(f.c, "/whoami"); body != "alice" {
		t.Fatalf("after stale calls whoami = %q", body)
	}
	if list, _ := f.m.Sessions(context.Background(), "mallory", 0); len(list) != 0 {
		t.Fatal("a stale Login created a session")
	}
}

func TestSealedOnPanic(t *testing.T) {
	kept := make(chan *Session, 1)
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept <- From(r)
		panic(http.ErrAbortHandler) // net/http's quiet panic
	}), Options{})
	if resp, err := f.c.Get(f.srv.URL); err == nil {
		resp.Body.Close()
	}
	s := <-kept
	if _, err := s.Principal(); !errors.Is(err, ErrRequestEnded) {
		t.Fatalf("after a panic: %v, want ErrRequestEnded", err)
	}
}

func TestSealedOnClientDisconnect(t *testing.T) {
	result := make(chan error, 1)
	started := make(chan struct{})
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		close(started)
		<-r.Context().Done()
		// The handler is still running, but its client is gone.
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := s.Principal()
			if err != nil || time.Now().After(deadline) {
				result <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
	}), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL, nil)
	go func() { <-started; cancel() }()
	if resp, err := f.c.Do(req); err == nil {
		resp.Body.Close()
	}
	if err := <-result; !errors.Is(err, ErrRequestEnded) {
		t.Fatalf("after the client went away: %v, want ErrRequestEnded", err)
	}
}

// issue logs a client in as user and returns its token.
func issue(t *testing.T, f *fixture, user string) string {
	t.Helper()
	c := f.client()
	f.get(c, "/login?u="+user)
	tok := f.cookie(c)
	if tok == "" {
		t.Fatal("no token issued")
	}
	return tok
}

func TestGuardBlocksForeignCookieOnEveryPath(t *testing.T) {
	var foreign string
	inject := func(w http.ResponseWriter) {
		w.Header().Add("Set-Cookie", "other=1; Path=/")
		w.Header().Add("Set-Cookie", "session="+foreign+"; Path=/; HttpOnly")
	}
	paths := map[string]http.HandlerFunc{
		"WriteHeader": func(w http.ResponseWriter, r *http.Request) {
			inject(w)
			w.WriteHeader(200)
			io.WriteString(w, "body for alice")
		},
		"Write": func(w http.ResponseWriter, r *http.Request) { inject(w); io.WriteString(w, "body for alice") },
		"Flush": func(w http.ResponseWriter, r *http.Request) {
			inject(w)
			w.(http.Flusher).Flush()
			io.WriteString(w, "body for alice")
		},
		"ResponseController": func(w http.ResponseWriter, r *http.Request) {
			inject(w)
			if err := http.NewResponseController(w).Flush(); err == nil {
				t.Error("ResponseController.Flush on a blocked response returned no error")
			}
		},
		"ServeContent": func(w http.ResponseWriter, r *http.Request) {
			inject(w)
			http.ServeContent(w, r, "x.txt", time.Time{}, bytes.NewReader([]byte("body for alice")))
		},
		"Informational": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Set-Cookie", "session="+foreign+"; Path=/")
			w.Header().Add("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Set-Cookie")
			io.WriteString(w, "body for alice")
		},
		"Late goroutine": func(w http.ResponseWriter, r *http.Request) {
			// Code that writes the cookie jar directly, from another
			// goroutine, before the handler answers.
			done := make(chan struct{})
			go func() { inject(w); close(done) }()
			<-done
			io.WriteString(w, "body for alice")
		},
	}
	for name, h := range paths {
		t.Run(name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle("/", app())
			mux.Handle("/x", h)
			f := newFixture(t, mux, Options{})
			foreign = issue(t, f, "bob")
			c := f.client()
			f.get(c, "/login?u=alice")
			mine := f.cookie(c)
			var early []string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				early = append(early, h.Values("Set-Cookie")...)
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", f.srv.URL+"/x", nil)
			req.AddCookie(&http.Cookie{Name: "session", Value: mine})
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 500 {
				t.Errorf("status %d, want 500", resp.StatusCode)
			}
			if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("blocked response carried Set-Cookie %q", sc)
			}
			if strings.Contains(string(body), "alice") {
				t.Errorf("blocked response carried the handler's body %q", body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Error("blocked response is cacheable")
			}
			if len(early) != 0 {
				t.Errorf("an informational response carried Set-Cookie %q", early)
			}
			evs := f.ev.named(reqlog.EventGuardBlock)
			if len(evs) == 0 {
				t.Fatal("no guard_block event")
			}
			if name != "Informational" && evs[0].Fingerprint != store.Fingerprint(foreign) {
				t.Errorf("guard_block fingerprint %q, want the foreign session's", evs[0].Fingerprint)
			}
		})
	}
}

func TestGuardReportModePassesAndRecords(t *testing.T) {
	var foreign string
	mux := http.NewServeMux()
	mux.Handle("/", app())
	mux.HandleFunc("/x", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "session="+foreign+"; Path=/")
		io.WriteString(w, "ok")
	})
	f := newFixture(t, mux, Options{Guard: GuardReport})
	foreign = issue(t, f, "bob")
	body, resp := f.get(f.client(), "/x")
	if resp.StatusCode != 200 || body != "ok" || !strings.Contains(resp.Header.Get("Set-Cookie"), foreign) {
		t.Fatalf("report mode changed the response: %d %q %q", resp.StatusCode, body, resp.Header.Get("Set-Cookie"))
	}
	evs := f.ev.named(reqlog.EventGuardBlock)
	if len(evs) != 1 || evs[0].Detail != "report:foreign_cookie" {
		t.Fatalf("report mode events %+v", evs)
	}
}

// TestGuardCarriesOutHandWrittenDeletion: a deletion of the session cookie
// written by hand, even one with attributes that would not delete the
// browser's cookie (another Path, no Secure), is dropped and carried out
// properly: the guard clears the cookie with its own attributes and the
// session is destroyed. It is not a guard_block.
func TestGuardCarriesOutHandWrittenDeletion(t *testing.T) {
	for _, line := range []string{
		"session=; Path=/; Max-Age=0",
		"session=x; Path=/elsewhere; Max-Age=-1",
		"session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
		"SESSION=\"\"",
	} {
		t.Run(line, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle("/", app())
			mux.HandleFunc("/x", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("Set-Cookie", line)
				io.WriteString(w, "ok")
			})
			f := newFixture(t, mux, Options{})
			f.get(f.c, "/login?u=alice")
			tok := f.cookie(f.c)
			body, resp := f.get(f.c, "/x")
			sc := resp.Header.Values("Set-Cookie")
			if resp.StatusCode != 200 || body != "ok" || len(sc) != 1 || sc[0] != f.m.cookieHeader(f.m.spec, "") {
				t.Fatalf("deletion: %d %q %q", resp.StatusCode, body, sc)
			}
			if len(f.ev.named(reqlog.EventGuardBlock)) != 0 {
				t.Fatal("a hand-written deletion counted as a block")
			}
			if f.cookie(f.c) != "" {
				t.Fatal("the browser kept the session cookie")
			}
			if _, err := f.st.Find(context.Background(), store.HashToken(tok)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the session outlived its hand-written deletion: %v", err)
			}
		})
	}
}

// swappingStore answers Find for sessions created while swap is on with
// another principal, as a corrupted or confused store might.
type swappingStore struct {
	store.Full
	mu      sync.Mutex
	swap    bool
	swapped map[store.Hash]bool
}

func (s *swappingStore) Create(ctx context.Context, ss *store.Session) error {
	s.mu.Lock()
	if s.swap {
		s.swapped[ss.Hash] = true
	}
	s.mu.Unlock()
	return s.Full.Create(ctx, ss)
}

func (s *swappingStore) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	got, err := s.Full.Find(ctx, h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.swapped[h] {
		got.Principal = "somebody-else"
	}
	return got, err
}

func TestGuardChecksOwnCookieAgainstStore(t *testing.T) {
	clk := newClock()
	ss := &swappingStore{Full: newMemStore(t, clk.Now), swapped: map[store.Hash]bool{}}
	ev := &events{}
	m := New(ss, Options{Now: clk.Now, OnEvent: ev.on, Logger: quiet, Dev: true})
	defer m.Close()
	srv := httptest.NewServer(m.Middleware(app()))
	defer srv.Close()
	f := &fixture{t: t, srv: srv}
	c := f.client()
	f.get(c, "/login?u=alice")
	ss.mu.Lock()
	ss.swap = true
	ss.mu.Unlock()
	body, resp := f.get(c, "/renew")
	if resp.StatusCode != 500 || resp.Header.Get("Set-Cookie") != "" || body == "ok" {
		t.Fatalf("a cookie the store says is somebody else's left: %d %q %q", resp.StatusCode, body, resp.Header.Get("Set-Cookie"))
	}
	evs := ev.named(reqlog.EventGuardBlock)
	if len(evs) != 1 || evs[0].Detail != "principal_mismatch" {
		t.Fatalf("events %+v, want one principal_mismatch", evs)
	}
}

func TestPutAfterHeadersOnNewSession(t *testing.T) {
	var err error
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "early")
		err = From(r).Put("k", "v")
	}), Options{})
	f.get(f.c, "/")
	if !errors.Is(err, ErrHeadersSent) {
		t.Fatalf("Put needing a cookie after headers = %v, want ErrHeadersSent", err)
	}
}

func TestPutAfterHeadersOnExistingSessionIsSaved(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/", app())
	mux.HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "early")
		if err := From(r).Put("k", "late"); err != nil {
			t.Error(err)
		}
	})
	f := newFixture(t, mux, Options{})
	f.get(f.c, "/login?u=alice")
	f.get(f.c, "/late")
	if body, _ := f.get(f.c, "/get?k=k"); body != "late" {
		t.Fatalf("late put lost: %q", body)
	}
}

// TestStaleUseInRequestLog: a sealed handle used late leaves a stale_use
// line in the request log, naming the handle's origin and its request.
func TestStaleUseInRequestLog(t *testing.T) {
	var buf safeBuffer
	lw := reqlog.NewWriter(&buf, reqlog.WriterOptions{})
	kept := make(chan *Session, 1)
	mux := http.NewServeMux()
	mux.Handle("/", app())
	var origin string
	mux.HandleFunc("/keep", func(w http.ResponseWriter, r *http.Request) {
		s, here := From(r), scope.Caller(0)
		origin = here
		kept <- s
	})
	clk := newClock()
	m := New(newMemStore(t, clk.Now), Options{Now: clk.Now, Logger: quiet, Dev: true})
	defer m.Close()
	srv := httptest.NewServer(reqlog.Middleware(lw, reqlog.Options{})(m.Middleware(mux)))
	defer srv.Close()
	f := &fixture{t: t, srv: srv}
	c := f.client()
	f.get(c, "/login?u=alice")
	f.get(c, "/keep")
	if err := (<-kept).Put("k", "v"); err == nil {
		t.Fatal("stale Put succeeded")
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	lines, err := reqlog.ReadLines(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want login, keep and the stale use", len(lines))
	}
	keep, late := lines[1], lines[2]
	if late.Event != reqlog.EventStaleUse || !strings.Contains(late.Detail, origin) || !strings.Contains(late.Detail, "req="+keep.Req) {
		t.Fatalf("stale line %+v (origin %s, request %s)", late, origin, keep.Req)
	}
	if late.Req == keep.Req || late.SidIn != keep.SidIn || late.UidIn != "alice" || late.Path != "/keep" {
		t.Fatalf("stale line does not carry the ended request's context: %+v", late)
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
