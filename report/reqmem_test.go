package report

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cordon-sec/cordon/scope"
)

// TestClientDisconnectSealsAtOnce: when the client goes away, the very
// next use of the scope refuses, though nothing has watched the request's
// context (no OnEnd hook): Set fails, and a capture or a session hook
// through the request's handle or context is a stale_use without request
// data.
func TestClientDisconnectSealsAtOnce(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var setErr error
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		must(t, s.SetPrincipal("u_gone"))
		must(t, s.Set("visible", "before-disconnect"))
		cancel() // the client goes away while the handler still runs
		setErr = s.Set("after", 2)
		s.Capture(errors.New("after disconnect"))
		f.rep.Hook()(r.Context(), EventGuardBlock, "after disconnect", nil)
		if late := FromContext(r.Context()); late.SetPrincipal("u_other") == nil {
			t.Error("a handle taken after the disconnect accepts SetPrincipal")
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), plantedRequest("GET", "/gone").WithContext(ctx))
	if !errors.Is(setErr, scope.ErrRequestEnded) {
		t.Fatalf("Set right after the disconnect = %v", setErr)
	}
	evs := f.mem.all()
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	for i, e := range evs {
		if e.Event != EventStaleUse || e.Stale == nil || e.Request != nil || e.Context != nil || e.Stale.Ended.IsZero() {
			t.Fatalf("event %d after the disconnect = %+v", i, e)
		}
	}
	if out := f.output(t); strings.Contains(out, "before-disconnect") || strings.Contains(out, "u_gone") {
		t.Fatalf("a report after the disconnect carries request data: %s", out)
	}
}

// TestRequestMemoryIsPerRequest: each request's scope lives in memory of
// its own, never reused. A handle kept from one request, used during the
// next, refuses to set and reports nothing of either request; the next
// request's events carry only its own values and secrets, and its
// lifetime is not the kept one's.
func TestRequestMemoryIsPerRequest(t *testing.T) {
	f := newFixture(t)
	var handles []*Scope
	var lives []*scope.Scope
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid := r.Header.Get("X-Test-Req")
		s := FromContext(r.Context())
		must(t, s.SetPrincipal(uid))
		must(t, s.Set("owner", uid))
		if len(handles) > 0 {
			kept := handles[0]
			if err := kept.Set("owner", "overwritten"); !errors.Is(err, scope.ErrRequestEnded) {
				t.Errorf("kept handle's Set during the next request = %v", err)
			}
			kept.Capture(errors.New("kept"))
		}
		s.Capture(errors.New("own"))
		handles = append(handles, s)
		lives = append(lives, scope.FromContext(r.Context()))
	}))
	for _, uid := range []string{"u_first", "u_second"} {
		r := plantedRequest("GET", "/"+uid)
		r.Header.Set("X-Test-Req", uid)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if handles[0].st == handles[1].st || lives[0] == lives[1] || !lives[0].Ended() || !lives[1].Ended() {
		t.Fatal("two requests share a scope's state or lifetime, or one did not end")
	}
	evs := f.mem.all()
	if len(evs) != 3 {
		t.Fatalf("got %d events, want 3", len(evs))
	}
	own1, kept, own2 := evs[0], evs[1], evs[2]
	if own1.Request.Principal != "u_first" || own1.Context["owner"] != "u_first" {
		t.Fatalf("first request's event = %+v", own1)
	}
	if kept.Event != EventStaleUse || kept.Request != nil || kept.Context != nil {
		t.Fatalf("kept handle's event = %+v", kept)
	}
	if own2.Request.Principal != "u_second" || own2.Context["owner"] != "u_second" || own2.ScopeID == own1.ScopeID {
		t.Fatalf("second request's event = %+v", own2)
	}
	f.output(t)
}

// TestCookieLinesAreCopies: the scope keeps copies of the request's
// Cookie and Authorization lines, however many there are, taken when the
// request starts: a handler that rewrites the header does not stop the
// original values from being scrubbed from its reports.
func TestCookieLinesAreCopies(t *testing.T) {
	f := newFixture(t)
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"Cookie", "Authorization"} {
			for i := range r.Header[k] {
				r.Header[k][i] = "rewritten=1"
			}
		}
		f.rep.Capture(r.Context(), errors.New("mentions "+plantedToken+" "+plantedOther+" "+plantedBearer+" extra_cookie_value_123"))
	}))
	r := plantedRequest("GET", "/")
	r.Header.Add("Cookie", "second=1")
	r.Header.Add("Cookie", "third=extra_cookie_value_123") // more lines than the scope has room for
	if n := len(r.Header["Cookie"]); n != 3 {
		t.Fatalf("%d Cookie lines", n)
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	evs := f.mem.all()
	if len(evs) != 1 || strings.Contains(evs[0].Error, "extra_cookie_value_123") || strings.Count(evs[0].Error, Redacted) != 4 {
		t.Fatalf("events = %+v", evs)
	}
	f.output(t)
}

// TestMiddlewareAllocations guards what a request scope costs when nothing
// is reported: its memory and net/http's WithContext, and no watch of the
// request's context.
func TestMiddlewareAllocations(t *testing.T) {
	f := newFixture(t)
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := plantedRequest("GET", "/").WithContext(ctx)
	w := httptest.NewRecorder()
	n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, req) })
	if n > 2 {
		t.Errorf("a request scope allocates %.0f times; want at most 2", n)
	}
}
