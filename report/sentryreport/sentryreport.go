// Package sentryreport sends cordon's error reports to Sentry through
// github.com/getsentry/sentry-go. It lives in a module of its own so that
// cordon's core never pulls in the Sentry SDK.
//
// A *Sink is a report.ScopedSink: every report scope (one per request, one
// per background task) gets a hub of its own, cloned from the base hub when
// the scope first reports, with its Sentry scope cleared so nothing set on
// the base hub — by the application or by anything running in another
// request — can ride along. Events are built from the report.Event alone:
// the snapshot values captured by cordon's report package, already redacted
// and scrubbed of the request's cookies and Authorization header. No hub
// ever sees an *http.Request, headers or cookies, and no callback or event
// processor of this package reads request state later.
//
// Wiring:
//
//	client, _ := sentry.NewClient(sentry.ClientOptions{Dsn: dsn})
//	rep := report.New(report.Options{
//		Sinks:         []report.Sink{sentryreport.New(sentry.NewHub(client, sentry.NewScope()))},
//		SessionCookie: "cordon_session",
//	})
package sentryreport

import (
	"time"

	"github.com/getsentry/sentry-go"

	"github.com/cordon-sec/cordon/report"
)

// Sink sends report events to Sentry, through one hub per report scope.
type Sink struct {
	base *sentry.Hub
}

var _ report.ScopedSink = (*Sink)(nil)

// New returns a sink whose per-scope hubs are clones of base (nil means
// sentry.CurrentHub()).
func New(base *sentry.Hub) *Sink {
	if base == nil {
		base = sentry.CurrentHub()
	}
	return &Sink{base: base}
}

// Open returns the sink for one report scope: a clone of the base hub with a
// cleared Sentry scope, tagged with the report scope's kind, id and task.
func (s *Sink) Open(info report.ScopeInfo) report.Sink {
	hub := s.base.Clone()
	hub.ConfigureScope(func(sc *sentry.Scope) {
		sc.Clear()
		sc.SetTag("cordon.scope", info.Kind)
		sc.SetTag("cordon.scope_id", info.ID)
		if info.Task != "" {
			sc.SetTag("cordon.task", info.Task)
		}
	})
	return &scopeSink{hub: hub}
}

// Send sends an event that arrived without a scope, through a fresh clone.
func (s *Sink) Send(e *report.Event) error {
	return s.Open(report.ScopeInfo{ID: e.ScopeID, Kind: e.Scope, Task: e.Task}).Send(e)
}

// Flush waits up to timeout for buffered events to be sent, and reports
// whether they all were.
func (s *Sink) Flush(timeout time.Duration) bool { return s.base.Flush(timeout) }

type scopeSink struct {
	hub *sentry.Hub
}

// Send captures e on the scope's hub. An event the client drops (sampling,
// BeforeSend) is not an error.
func (ss *scopeSink) Send(e *report.Event) error {
	ss.hub.CaptureEvent(Event(e))
	return nil
}

// Event converts a report event into a Sentry event holding only its
// values: the message and error text, tags for the event kind, scope and
// request id, the principal as the Sentry user id, the request's method and
// path (no query, headers or cookies), and the report's context, fields,
// request and stale information as Sentry contexts.
func Event(e *report.Event) *sentry.Event {
	ev := sentry.NewEvent()
	if isEventID(e.ID) {
		ev.EventID = sentry.EventID(e.ID)
	}
	ev.Timestamp = e.Time
	ev.Level = sentry.LevelError
	if e.Level == "warning" {
		ev.Level = sentry.LevelWarning
	}
	ev.Message = e.Message
	if ev.Message == "" {
		ev.Message = e.Error
	}
	if e.Error != "" {
		ev.Exception = []sentry.Exception{{Type: e.ErrorType, Value: e.Error}}
	}
	ev.Tags = map[string]string{"cordon.event": e.Event, "cordon.scope": e.Scope}
	if e.Task != "" {
		ev.Tags["cordon.task"] = e.Task
	}
	if r := e.Request; r != nil {
		ev.Request = &sentry.Request{Method: r.Method, URL: r.Path}
		ev.User = sentry.User{ID: r.Principal}
		if r.ID != "" {
			ev.Tags["req"] = r.ID
		}
		ev.Contexts["cordon.request"] = sentry.Context{
			"method": r.Method, "path": r.Path, "req": r.ID, "sid": r.Session, "uid": r.Principal,
		}
	}
	if len(e.Context) > 0 {
		ev.Contexts["cordon.context"] = sentry.Context(e.Context)
	}
	if len(e.Fields) > 0 {
		ev.Contexts["cordon.fields"] = sentry.Context(e.Fields)
	}
	if st := e.Stale; st != nil {
		ev.Contexts["cordon.stale"] = sentry.Context{
			"event": st.Event, "origin": st.Origin, "ended": st.Ended.UTC().Format(time.RFC3339Nano),
		}
	}
	return ev
}

func isEventID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
