package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store/memstore"
)

// TestRequestMemoryIsPerRequest: the first handle and the context that
// carries the state come with the request's own memory. Handles of one
// request are distinct, all die with it, and the next request's handle
// is new memory; the context still ends when the request's does.
func TestRequestMemoryIsPerRequest(t *testing.T) {
	m := New(memstore.New(memstore.Options{}), Options{Logger: quiet, Dev: true, CleanupInterval: -1})
	t.Cleanup(func() { m.Close() })
	var kept []*Session
	var ctxDone bool
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Cancel") != "" {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			<-ctx.Done() // the request's context ends: so does one derived from it
			ctxDone = errors.Is(context.Cause(ctx), context.Canceled)
			return
		}
		a, b, c := From(r), FromContext(r.Context()), From(r) // c: past the request's own memory
		if a == b || b == c || a == c {
			t.Error("two From calls returned the same handle")
		}
		if v, err := c.GetString("k"); err != nil || v != "" {
			t.Errorf("third handle before the Put reads %q, %v", v, err)
		}
		if err := a.Put("k", "v"); err != nil {
			t.Error(err)
		}
		if v, err := b.GetString("k"); err != nil || v != "v" {
			t.Errorf("second handle reads %q, %v", v, err)
		}
		if v, err := c.GetString("k"); err != nil || v != "v" {
			t.Errorf("third handle reads %q, %v", v, err)
		}
		kept = append(kept, a, b, c)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://127.0.0.1/", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://127.0.0.1/", nil))
	if len(kept) != 6 {
		t.Fatalf("%d handles kept", len(kept))
	}
	for _, a := range kept[:3] {
		for _, b := range kept[3:] {
			if a == b {
				t.Fatalf("a later request reused a handle's memory: %p", a)
			}
		}
	}
	for i, s := range kept {
		if _, err := s.GetString("k"); !errors.Is(err, ErrRequestEnded) {
			t.Errorf("handle %d after its request: %v", i, err)
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "http://127.0.0.1/", nil).WithContext(rctx)
	req.Header.Set("X-Cancel", "1")
	cancel()
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !ctxDone {
		t.Error("a context derived in the handler did not end with the request's")
	}
}

// TestReadOnlyAllocations guards what a read-only request costs on
// memstore beyond the handler: the request's memory (with its first two
// handles: a middleware's and the handler's), net/http's WithContext, the
// store's copy and the value read, and no more.
func TestReadOnlyAllocations(t *testing.T) {
	m, req := signedIn(t, func(s *Session) error { return s.Put("greeting", "hello") })
	var got string
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := From(r).Principal(); err != nil { // as a middleware looks
			t.Error(err)
		}
		got, _ = From(r).GetString("greeting")
	}))
	w := &nullWriter{h: http.Header{}}
	n := testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, req)
	})
	if got != "hello" {
		t.Fatalf("read %q", got)
	}
	t.Logf("%.0f allocations", n)
	if n > 4 {
		t.Errorf("a read-only request allocates %.0f times in the middleware; want at most 4", n)
	}
}

// signedIn returns a manager on memstore and a request carrying the cookie
// of alice's session, in which put stored its values.
func signedIn(t *testing.T, put func(s *Session) error) (*Manager, *http.Request) {
	t.Helper()
	m := New(memstore.New(memstore.Options{}), Options{Logger: quiet, Dev: true, CleanupInterval: -1})
	t.Cleanup(func() { m.Close() })
	login := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		if err := s.Login("alice"); err != nil {
			t.Fatal(err)
		}
		if err := put(s); err != nil {
			t.Fatal(err)
		}
	}))
	rec := httptest.NewRecorder()
	login.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/login", nil))
	req := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	return m, req
}

type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(int)             {}

// TestCommitContext: a commit's context keeps the request's values, not its
// cancellation; it ends at its deadline (seen by contexts derived from it)
// and when stopped, whether or not anything asked for Done first.
func TestCommitContext(t *testing.T) {
	type key struct{}
	rctx, cancelReq := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	cancelReq() // the client went away: the commit must still run
	c := &commitCtx{values: context.WithoutCancel(rctx), deadline: time.Now().Add(20 * time.Millisecond)}
	if c.Value(key{}) != "v" || c.Err() != nil {
		t.Fatalf("value %v, err %v", c.Value(key{}), c.Err())
	}
	if d, ok := c.Deadline(); !ok || d != c.deadline {
		t.Fatal("no deadline")
	}
	child, cancel := context.WithCancel(c)
	defer cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived from the commit's did not end at its deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(child), context.DeadlineExceeded) {
		t.Fatalf("err %v, child's cause %v", c.Err(), context.Cause(child))
	}
	c.stop()

	unused := &commitCtx{values: context.Background(), deadline: time.Now().Add(time.Hour)}
	unused.stop()
	select {
	case <-unused.Done():
	default:
		t.Fatal("a stopped commit context is not done")
	}
	if !errors.Is(unused.Err(), context.Canceled) {
		t.Fatalf("stopped: %v", unused.Err())
	}
	past := &commitCtx{values: context.Background(), deadline: time.Now().Add(-time.Millisecond)}
	if !errors.Is(past.Err(), context.DeadlineExceeded) {
		t.Fatalf("past its deadline, never asked for Done: %v", past.Err())
	}
	<-past.Done()
	past.stop()
	asked := &commitCtx{values: context.Background(), deadline: time.Now().Add(time.Hour)}
	if asked.Err() != nil || asked.started.Load() {
		t.Fatal("Err before the deadline started the timer or reported an end")
	}
	asked.stop()
	used := &commitCtx{values: context.Background(), deadline: time.Now().Add(time.Hour)}
	done := used.Done()
	used.stop()
	<-done
}

// TestManyReadsDecodeOnce: the first values are read from the stored
// encoding; past maxRawReads the request decodes them all once, and every
// read, typed or not, sees the stored value either way.
func TestManyReadsDecodeOnce(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "e", "f", "g"}
	m, req := signedIn(t, func(s *Session) error {
		for i, k := range keys {
			if err := errors.Join(s.Put(k, k+"-value"), s.Put("n"+k, i)); err != nil {
				return err
			}
		}
		return nil
	})
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		for i, k := range keys {
			if decoded := s.st.values != nil; decoded != (3*i > maxRawReads) { // three reads a round
				t.Errorf("before read %d: decoded %v", i, decoded)
			}
			if v, err := s.GetString(k); err != nil || v != k+"-value" {
				t.Errorf("GetString(%q) = %q, %v", k, v, err)
			}
			if v, err := s.GetInt64("n" + k); err != nil || v != int64(i) {
				t.Errorf("GetInt64(n%s) = %d, %v", k, v, err)
			}
			if _, err := s.GetInt64(k); !errors.Is(err, ErrWrongType) {
				t.Errorf("GetInt64 of a string: %v", err)
			}
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), req)
}
