package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/store"
)

// The planted secrets: if any of them reaches a sink, a test fails.
const (
	plantedToken  = "sess_TOKEN_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	plantedBearer = "bearer_SECRET_0a1b2c3d4e5f"
	plantedOther  = "prefs_COOKIE_value_77665544"
)

// memSink keeps events in memory.
type memSink struct {
	mu     sync.Mutex
	events []*Event
}

func (m *memSink) Send(e *Event) error {
	m.mu.Lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
	return nil
}

func (m *memSink) all() []*Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Event(nil), m.events...)
}

type fixture struct {
	rep  *Reporter
	mem  *memSink
	json *bytes.Buffer
	jmu  *sync.Mutex
}

type lockedBuf struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (l lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{mem: &memSink{}, json: &bytes.Buffer{}, jmu: &sync.Mutex{}}
	f.rep = New(Options{
		Sinks:         []Sink{f.mem, NewJSONSink(lockedBuf{f.jmu, f.json})},
		SessionCookie: "cordon_session",
		RequestID:     func(r *http.Request) string { return r.Header.Get("X-Test-Req") },
		Logger:        slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
	})
	return f
}

// output returns everything the JSON sink wrote, and fails the test if a
// planted secret is anywhere in it.
func (f *fixture) output(t *testing.T) string {
	t.Helper()
	f.jmu.Lock()
	out := f.json.String()
	f.jmu.Unlock()
	for _, s := range []string{plantedToken, plantedBearer, plantedOther} {
		if strings.Contains(out, s) {
			t.Fatalf("a planted secret reached the sink: %s\n%s", s, out)
		}
	}
	return out
}

func plantedRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.AddCookie(&http.Cookie{Name: "cordon_session", Value: plantedToken})
	r.AddCookie(&http.Cookie{Name: "prefs", Value: plantedOther})
	r.Header.Set("Authorization", "Bearer "+plantedBearer)
	r.Header.Set("X-Test-Req", "req-1")
	return r
}

func TestRequestCaptureCarriesPlainRequestInfoAndNoSecrets(t *testing.T) {
	f := newFixture(t)
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		if err := s.SetPrincipal("u_1842"); err != nil {
			t.Error(err)
		}
		must(t, s.Set("plan", "pro"))
		must(t, s.Set("note", "client sent "+plantedToken)) // innocuous key, secret value
		must(t, s.Set("session_token", plantedToken))       // secret-named key
		must(t, s.SetContext(map[string]any{"attempt": 2, "raw": []byte(plantedOther)}))
		if err := s.SetSession(plantedToken); !errors.Is(err, ErrBadFingerprint) {
			t.Errorf("SetSession(token) = %v, want ErrBadFingerprint", err)
		}
		f.rep.Capture(r.Context(), fmt.Errorf("db: bad cookie %q, auth %q", plantedToken, "Bearer "+plantedBearer),
			"cookie_header", r.Header.Get("Cookie"), "echo", plantedOther)
	}))
	h.ServeHTTP(httptest.NewRecorder(), plantedRequest("POST", "/account/settings?token="+plantedToken))

	evs := f.mem.all()
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	e := evs[0]
	want := RequestInfo{Method: "POST", Path: "/account/settings", ID: "req-1",
		Session: store.Fingerprint(plantedToken), Principal: "u_1842"}
	if e.Request == nil || *e.Request != want {
		t.Fatalf("request = %+v, want %+v", e.Request, want)
	}
	if e.Scope != KindRequest || e.Event != EventError || e.Stale != nil {
		t.Fatalf("event = %+v", e)
	}
	if e.Context["plan"] != "pro" || e.Context["attempt"] != int64(2) || e.Context["session_token"] != Redacted {
		t.Fatalf("context = %#v", e.Context)
	}
	if e.Context["note"] != "client sent "+Redacted {
		t.Fatalf("known cookie value not scrubbed from context: %#v", e.Context["note"])
	}
	if !strings.Contains(e.Error, Redacted) {
		t.Fatalf("error = %q", e.Error)
	}
	out := f.output(t)
	if !strings.Contains(out, `"sid":"`+store.Fingerprint(plantedToken)+`"`) {
		t.Fatalf("JSON line lacks the fingerprint: %s", out)
	}
}

func TestStaleHandleRefusesAndReportsStaleUse(t *testing.T) {
	f := newFixture(t)
	var kept *Scope
	var keptCtx context.Context
	var line int
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _, line, _ = runtime.Caller(0)
		kept = FromContext(r.Context()) // the line after Caller(0)
		keptCtx = r.Context()
		must(t, kept.Set("secret_plan", "x"))
		must(t, kept.Set("visible", "only-during-request"))
		must(t, kept.SetPrincipal("u_1"))
	}))
	h.ServeHTTP(httptest.NewRecorder(), plantedRequest("GET", "/"))

	err := kept.Set("late", "value")
	if !errors.Is(err, scope.ErrRequestEnded) {
		t.Fatalf("Set after the request = %v, want ErrRequestEnded", err)
	}
	origin := fmt.Sprintf("report_test.go:%d", line+1)
	if !strings.Contains(err.Error(), origin) {
		t.Fatalf("error %q does not name where the handle was obtained (%s)", err, origin)
	}
	for name, err := range map[string]error{
		"SetPrincipal": kept.SetPrincipal("u_2"),
		"SetSession":   kept.SetSession(store.Fingerprint("x")),
		"AddSecret":    kept.AddSecret("some-long-secret"),
		"SetContext":   kept.SetContext(map[string]any{"a": 1}),
	} {
		if !errors.Is(err, scope.ErrRequestEnded) {
			t.Errorf("%s after the request = %v", name, err)
		}
	}

	kept.Capture(errors.New("late failure mentioning " + plantedToken))
	f.rep.Hook()(keptCtx, EventGuardBlock, "late guard", nil)
	evs := f.mem.all()
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	for i, e := range evs {
		if e.Event != EventStaleUse || e.Stale == nil {
			t.Fatalf("event %d = %+v, want stale_use", i, e)
		}
		if e.Request != nil || e.Context != nil {
			t.Fatalf("stale event %d carries request data: %+v %+v", i, e.Request, e.Context)
		}
		if e.Stale.Ended.IsZero() || !strings.Contains(e.Stale.Origin, "report_test.go:") {
			t.Fatalf("stale = %+v", e.Stale)
		}
	}
	if evs[0].Stale.Event != EventError || evs[1].Stale.Event != EventGuardBlock {
		t.Fatalf("stale events lost what they meant to report: %q %q", evs[0].Stale.Event, evs[1].Stale.Event)
	}
	if !strings.Contains(evs[0].Stale.Origin, origin) {
		t.Fatalf("origin %q, want %s", evs[0].Stale.Origin, origin)
	}
	out := f.output(t)
	if strings.Contains(out, "only-during-request") || strings.Contains(out, "u_1") {
		t.Fatalf("stale report leaked request data: %s", out)
	}
}

// TestBackgroundNeverSeesRequestValues replays the 2021 shape: a request has
// set its context (and is still running) when a background task reports an
// error. The background event must hold nothing of the request.
func TestBackgroundNeverSeesRequestValues(t *testing.T) {
	f := newFixture(t)
	bg := f.rep.Background("flags.refresh")
	must(t, bg.Set("interval", "1s"))
	inRequest := make(chan struct{})
	reported := make(chan struct{})
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		must(t, s.SetPrincipal("u_request"))
		must(t, s.Set("controller", "request-1-controller"))
		// A background scope put into a request's context shadows the
		// request scope: still nothing of the request.
		f.rep.Capture(NewContext(r.Context(), bg), errors.New("from a request goroutine"))
		close(inRequest)
		<-reported
	}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), plantedRequest("GET", "/issues"))
	}()
	<-inRequest
	bg.Capture(errors.New("query timeout"), "table", "flags")
	f.rep.Capture(NewContext(context.Background(), bg), errors.New("again"))
	close(reported)
	<-done

	if err := bg.SetPrincipal("u_x"); err == nil {
		t.Fatal("a background scope accepted a principal")
	}
	evs := f.mem.all()
	if len(evs) != 3 {
		t.Fatalf("got %d events", len(evs))
	}
	for _, e := range evs {
		if e.Scope != KindBackground || e.Task != "flags.refresh" || e.Request != nil {
			t.Fatalf("background event = %+v", e)
		}
		if _, ok := e.Context["controller"]; ok || len(e.Context) != 1 || e.Context["interval"] != "1s" {
			t.Fatalf("background event context = %#v", e.Context)
		}
	}
	out := f.output(t)
	if strings.Contains(out, "u_request") || strings.Contains(out, "request-1-controller") || strings.Contains(out, "/issues") {
		t.Fatalf("background report carries request data: %s", out)
	}
}

func TestHookInsideRequest(t *testing.T) {
	f := newFixture(t)
	hook := f.rep.Hook()
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		must(t, FromContext(r.Context()).SetPrincipal("u_7"))
		hook(r.Context(), EventGuardBlock, "cookie of u_8 in response of u_7", errors.New("guard: principal mismatch"))
	}))
	h.ServeHTTP(httptest.NewRecorder(), plantedRequest("GET", "/x"))
	hook(context.Background(), "custom", "no scope", nil)
	evs := f.mem.all()
	if len(evs) != 2 {
		t.Fatalf("got %d events", len(evs))
	}
	e := evs[0]
	if e.Event != EventGuardBlock || e.Level != "error" || e.Request == nil || e.Request.Principal != "u_7" ||
		e.Message != "cookie of u_8 in response of u_7" || e.Error != "guard: principal mismatch" {
		t.Fatalf("guard event = %+v", e)
	}
	if e := evs[1]; e.Scope != KindNone || e.Request != nil || e.Level != "warning" {
		t.Fatalf("unscoped event = %+v", e)
	}
	f.output(t)
}

func TestClientDisconnectSealsScope(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		must(t, s.Set("before", 1))
		ended := make(chan struct{})
		scope.FromContext(r.Context()).OnEnd(func() { close(ended) })
		cancel() // the client goes away while the handler still runs
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Error("the scope's end functions did not run within 5 s of the client going away")
		}
		result <- s.Set("after", 2)
	}))
	h.ServeHTTP(httptest.NewRecorder(), plantedRequest("GET", "/slow").WithContext(ctx))
	if err := <-result; !errors.Is(err, scope.ErrRequestEnded) {
		t.Fatalf("Set after disconnect = %v", err)
	}
}

func TestPanicIsReportedThenSealed(t *testing.T) {
	f := newFixture(t)
	var kept *Scope
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = FromContext(r.Context())
		must(t, kept.SetPrincipal("u_p"))
		panic("handler bug with " + plantedToken)
	}))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("panic was swallowed")
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), plantedRequest("GET", "/boom"))
	}()
	if err := kept.Set("x", 1); !errors.Is(err, scope.ErrRequestEnded) {
		t.Fatalf("Set after panic = %v", err)
	}
	evs := f.mem.all()
	if len(evs) != 1 || evs[0].Event != EventPanic || evs[0].Request == nil || evs[0].Request.Principal != "u_p" {
		t.Fatalf("events = %+v", evs)
	}
	f.output(t)
}

func TestOuterScopeIsShared(t *testing.T) {
	f := newFixture(t)
	life := scope.New(nil)
	var kept *Scope
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = FromContext(r.Context())
	}))
	r := plantedRequest("GET", "/")
	h.ServeHTTP(httptest.NewRecorder(), r.WithContext(scope.NewContext(r.Context(), life)))
	if err := kept.Set("a", 1); err != nil {
		t.Fatalf("scope ended before its owner ended it: %v", err)
	}
	life.End()
	if err := kept.Set("a", 1); !errors.Is(err, scope.ErrRequestEnded) {
		t.Fatalf("Set after owner ended = %v", err)
	}
}

func TestSetRefusesCallbacks(t *testing.T) {
	f := newFixture(t)
	bg := f.rep.Background("t")
	if err := bg.Set("user", func() string { return "lazy" }); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Set(func) = %v", err)
	}
	err := bg.SetContext(map[string]any{"ok": 1, "cb": make(chan int)})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("SetContext(chan) = %v", err)
	}
	bg.Capture(errors.New("e"), "fn", func() {}, "odd")
	e := f.mem.all()[0]
	if len(e.Context) != 0 {
		t.Fatalf("a refused SetContext stored part of its values: %#v", e.Context)
	}
	if s, _ := e.Fields["fn"].(string); !strings.HasPrefix(s, "[unsupported:") {
		t.Fatalf("fields = %#v", e.Fields)
	}
	var nilScope *Scope
	if nilScope.Set("a", 1) == nil || nilScope.Capture(errors.New("x")) != "" {
		t.Fatal("nil scope accepted a call")
	}
}

func TestSlogSink(t *testing.T) {
	var buf bytes.Buffer
	rep := New(Options{Sinks: []Sink{NewSlogSink(slog.New(slog.NewJSONHandler(&buf, nil)))}, SessionCookie: "cordon_session"})
	h := rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		must(t, FromContext(r.Context()).Set("k", "v"))
		rep.Capture(r.Context(), errors.New("boom "+plantedToken))
	}))
	h.ServeHTTP(httptest.NewRecorder(), plantedRequest("GET", "/p?q=1"))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	req, _ := line["request"].(map[string]any)
	ctx, _ := line["context"].(map[string]any)
	if line["level"] != "ERROR" || line["event"] != "error" || req["path"] != "/p" || ctx["k"] != "v" ||
		req["sid"] != store.Fingerprint(plantedToken) {
		t.Fatalf("slog line = %s", buf.String())
	}
	if strings.Contains(buf.String(), plantedToken) {
		t.Fatalf("token in slog output: %s", buf.String())
	}
}

type scopedSink struct {
	mu     sync.Mutex
	opened []ScopeInfo
	got    map[string]int
}

type perScope struct {
	parent *scopedSink
	info   ScopeInfo
}

func (s *scopedSink) Send(*Event) error { return errors.New("the parent sink must not receive events") }
func (s *scopedSink) Open(info ScopeInfo) Sink {
	s.mu.Lock()
	s.opened = append(s.opened, info)
	s.mu.Unlock()
	return perScope{s, info}
}
func (p perScope) Send(e *Event) error {
	if e.ScopeID != p.info.ID {
		return fmt.Errorf("event of scope %s sent to scope %s", e.ScopeID, p.info.ID)
	}
	p.parent.mu.Lock()
	p.parent.got[p.info.ID]++
	p.parent.mu.Unlock()
	return nil
}

func TestScopedSinkOpensOncePerScope(t *testing.T) {
	ss := &scopedSink{got: map[string]int{}}
	var logs bytes.Buffer
	rep := New(Options{Sinks: []Sink{ss}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	bg := rep.Background("b")
	bg.Capture(errors.New("1"))
	bg.Capture(errors.New("2"))
	rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep.Capture(r.Context(), errors.New("3"))
		rep.Capture(r.Context(), errors.New("4"))
	})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if len(ss.opened) != 2 || ss.opened[0].Kind != KindBackground || ss.opened[1].Kind != KindRequest {
		t.Fatalf("opened = %+v", ss.opened)
	}
	for _, info := range ss.opened {
		if ss.got[info.ID] != 2 {
			t.Fatalf("scope %+v got %d events", info, ss.got[info.ID])
		}
	}
	if logs.Len() != 0 {
		t.Fatalf("sink errors: %s", logs.String())
	}
}

// TestConcurrentUse runs requests, their late goroutines and a background
// task at once under the race detector; every event must belong to the
// scope that captured it.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t)
	bg := f.rep.Background("worker")
	var wg sync.WaitGroup
	var late []*Scope
	var lateMu sync.Mutex
	h := f.rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := FromContext(r.Context())
		uid := r.Header.Get("X-Test-Req")
		must(t, s.SetPrincipal(uid))
		var inner sync.WaitGroup
		for i := range 4 {
			inner.Add(1)
			go func() {
				defer inner.Done()
				_ = s.Set(fmt.Sprintf("k%d", i), uid)
				f.rep.Capture(r.Context(), errors.New("in request"), "uid", uid)
			}()
		}
		inner.Wait()
		lateMu.Lock()
		late = append(late, s)
		lateMu.Unlock()
	}))
	for i := range 16 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r := plantedRequest("GET", "/c")
			r.Header.Set("X-Test-Req", fmt.Sprintf("u%d", i))
			h.ServeHTTP(httptest.NewRecorder(), r)
		}()
		go func() {
			defer wg.Done()
			_ = bg.Set("n", i)
			bg.Capture(errors.New("bg"))
			lateMu.Lock()
			ls := append([]*Scope(nil), late...)
			lateMu.Unlock()
			for _, s := range ls {
				if err := s.Set("late", 1); !errors.Is(err, scope.ErrRequestEnded) {
					t.Errorf("late Set = %v", err)
				}
				s.Capture(errors.New("late"))
			}
		}()
	}
	wg.Wait()
	for _, e := range f.mem.all() {
		switch {
		case e.Scope == KindBackground:
			if e.Request != nil || len(e.Context) > 1 {
				t.Fatalf("background event = %+v", e)
			}
		case e.Event == EventStaleUse:
			if e.Request != nil || e.Context != nil {
				t.Fatalf("stale event = %+v", e)
			}
		default:
			uid := e.Request.Principal
			if e.Request.ID != uid || e.Fields["uid"] != uid {
				t.Fatalf("event of %s carries %+v", uid, e)
			}
			for k, v := range e.Context {
				if v != uid {
					t.Fatalf("event of %s has context %s=%v", uid, k, v)
				}
			}
		}
	}
	f.output(t)
}

func TestBrokenRandStillReports(t *testing.T) {
	mem := &memSink{}
	rep := New(Options{Sinks: []Sink{mem}, Rand: bytes.NewReader(nil), Now: func() time.Time { return time.Unix(5, 0) }})
	if id := rep.Background("x").Capture(errors.New("e")); id == "" || len(mem.all()) != 1 {
		t.Fatalf("id %q, events %d", id, len(mem.all()))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}

type panicSink struct{}

func (panicSink) Send(*Event) error { panic("sink bug") }

func TestPanickingSinkDoesNotStopDelivery(t *testing.T) {
	mem := &memSink{}
	var logs bytes.Buffer
	rep := New(Options{Sinks: []Sink{panicSink{}, mem}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rep.Background("b").Capture(errors.New("e"))
	if len(mem.all()) != 1 || !strings.Contains(logs.String(), "sink panicked") {
		t.Fatalf("events %d, logs %q", len(mem.all()), logs.String())
	}
}
