package sentryreport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/cordon-sec/cordon/report"
	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/store"
)

const planted = "sess_PLANTED_9a8b7c6d5e4f30211203f4e5d6c7b8a9"

// memTransport is a sentry.Transport that keeps events in memory: no
// network.
type memTransport struct {
	mu     sync.Mutex
	events []*sentry.Event
}

func (m *memTransport) Configure(sentry.ClientOptions)        {}
func (m *memTransport) Flush(time.Duration) bool              { return true }
func (m *memTransport) FlushWithContext(context.Context) bool { return true }
func (m *memTransport) Close()                                {}
func (m *memTransport) SendEvent(e *sentry.Event) {
	m.mu.Lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
}
func (m *memTransport) all() []*sentry.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*sentry.Event(nil), m.events...)
}

func setup(t *testing.T) (*report.Reporter, *memTransport, *sentry.Hub) {
	t.Helper()
	tr := &memTransport{}
	client, err := sentry.NewClient(sentry.ClientOptions{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	base := sentry.NewHub(client, sentry.NewScope())
	// What an application (or the 2021 reporter) might leave on a shared
	// hub: none of it may reach a cordon event.
	base.ConfigureScope(func(sc *sentry.Scope) {
		sc.SetUser(sentry.User{ID: "base-user", IPAddress: "203.0.113.7"})
		sc.SetTag("leaked_tag", "from-base")
		sc.SetContext("leaked", sentry.Context{"cookie": planted})
	})
	base.AddBreadcrumb(&sentry.Breadcrumb{Message: "breadcrumb " + planted}, nil)
	rep := report.New(report.Options{Sinks: []report.Sink{New(base)}, SessionCookie: "cordon_session"})
	return rep, tr, base
}

func encode(t *testing.T, e *sentry.Event) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, bad := range []string{planted, "base-user", "from-base", "203.0.113.7", "leaked"} {
		if strings.Contains(s, bad) {
			t.Fatalf("sentry event carries %q: %s", bad, s)
		}
	}
	return s
}

func TestRequestBackgroundAndStaleEvents(t *testing.T) {
	rep, tr, _ := setup(t)
	bg := rep.Background("flags.refresh")
	if err := bg.Set("interval", "30s"); err != nil {
		t.Fatal(err)
	}
	var kept *report.Scope
	h := rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = report.FromContext(r.Context())
		if err := kept.SetPrincipal("u_1842"); err != nil {
			t.Error(err)
		}
		if err := kept.Set("plan", "pro"); err != nil {
			t.Error(err)
		}
		rep.Capture(r.Context(), errors.New("db timeout for cookie "+planted), "attempt", 2)
		bg.Capture(errors.New("query timeout")) // while the request is in flight
		rep.Capture(r.Context(), errors.New("second"))
	}))
	req := httptest.NewRequest("GET", "/notifications?token="+planted, nil)
	req.AddCookie(&http.Cookie{Name: "cordon_session", Value: planted})
	req.Header.Set("Authorization", "Bearer "+planted)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if err := kept.Set("late", 1); !errors.Is(err, scope.ErrRequestEnded) {
		t.Fatalf("stale Set = %v", err)
	}
	kept.Capture(errors.New("late"))

	evs := tr.all()
	if len(evs) != 4 {
		t.Fatalf("got %d sentry events, want 4", len(evs))
	}
	reqEv, bgEv, second, stale := evs[0], evs[1], evs[2], evs[3]
	for _, e := range evs {
		encode(t, e)
	}

	if reqEv.Request == nil || reqEv.Request.Method != "GET" || reqEv.Request.URL != "/notifications" ||
		len(reqEv.Request.Headers) != 0 || reqEv.Request.Cookies != "" || reqEv.Request.QueryString != "" {
		t.Fatalf("request = %+v", reqEv.Request)
	}
	if reqEv.User.ID != "u_1842" || reqEv.Level != sentry.LevelError || reqEv.Tags["cordon.scope"] != report.KindRequest {
		t.Fatalf("request event = %+v", reqEv)
	}
	if got := reqEv.Contexts["cordon.request"]["sid"]; got != store.Fingerprint(planted) {
		t.Fatalf("sid = %v", got)
	}
	if reqEv.Contexts["cordon.context"]["plan"] != "pro" || reqEv.Contexts["cordon.fields"]["attempt"] != int64(2) {
		t.Fatalf("contexts = %+v", reqEv.Contexts)
	}
	if len(reqEv.Exception) != 1 || !strings.Contains(reqEv.Exception[0].Value, report.Redacted) {
		t.Fatalf("exception = %+v", reqEv.Exception)
	}
	if len(reqEv.Breadcrumbs) != 0 {
		t.Fatalf("base hub breadcrumbs reached the event: %+v", reqEv.Breadcrumbs)
	}

	if bgEv.Request != nil || bgEv.User.ID != "" || bgEv.Tags["cordon.task"] != "flags.refresh" ||
		bgEv.Tags["cordon.scope"] != report.KindBackground || bgEv.Contexts["cordon.context"]["interval"] != "30s" {
		t.Fatalf("background event = %+v", bgEv)
	}
	if _, ok := bgEv.Contexts["cordon.request"]; ok {
		t.Fatal("background event has request context")
	}
	if reqEv.Tags["cordon.scope_id"] == bgEv.Tags["cordon.scope_id"] || reqEv.Tags["cordon.scope_id"] != second.Tags["cordon.scope_id"] {
		t.Fatalf("scope ids: request %s, background %s, second %s",
			reqEv.Tags["cordon.scope_id"], bgEv.Tags["cordon.scope_id"], second.Tags["cordon.scope_id"])
	}

	if stale.Tags["cordon.event"] != report.EventStaleUse || stale.Request != nil || stale.User.ID != "" ||
		stale.Contexts["cordon.stale"]["event"] != report.EventError {
		t.Fatalf("stale event = %+v", stale)
	}
	if origin, _ := stale.Contexts["cordon.stale"]["origin"].(string); !strings.Contains(origin, "sentryreport_test.go:") {
		t.Fatalf("stale origin = %q", origin)
	}
}

func TestHubPerScope(t *testing.T) {
	_, _, base := setup(t)
	s := New(base)
	a := s.Open(report.ScopeInfo{ID: "a", Kind: report.KindRequest}).(*scopeSink)
	b := s.Open(report.ScopeInfo{ID: "b", Kind: report.KindBackground, Task: "t"}).(*scopeSink)
	if a.hub == b.hub || a.hub == base || b.hub == base {
		t.Fatal("scopes share a hub")
	}
	// Changing one scope's hub changes neither the other nor the base.
	a.hub.Scope().SetTag("only", "a")
	ev := sentry.NewEvent()
	b.hub.Scope().ApplyToEvent(ev, nil, nil)
	if _, ok := ev.Tags["only"]; ok || ev.Tags["cordon.task"] != "t" {
		t.Fatalf("tags of b = %v", ev.Tags)
	}
}

func TestEventIDIsKept(t *testing.T) {
	e := &report.Event{ID: "0123456789abcdef0123456789abcdef", Event: "guard_block", Level: "error", Scope: report.KindNone}
	if got := Event(e).EventID; got != sentry.EventID(e.ID) {
		t.Fatalf("EventID = %q", got)
	}
	e.ID = "t123"
	if got := Event(e).EventID; got != "" {
		t.Fatalf("bad id passed through: %q", got)
	}
}

func TestUnscopedSend(t *testing.T) {
	rep, tr, _ := setup(t)
	rep.CaptureEvent(context.Background(), report.EventGuardBlock, "blocked", nil)
	evs := tr.all()
	if len(evs) != 1 || evs[0].Tags["cordon.scope"] != report.KindNone || evs[0].Level != sentry.LevelError {
		t.Fatalf("events = %+v", evs)
	}
	encode(t, evs[0])
}
