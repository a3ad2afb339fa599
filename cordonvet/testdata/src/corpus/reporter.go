package corpus

import (
	"errors"
	"net/http"

	"github.com/getsentry/sentry-go"
)

// BugSentryProcessorIncident is the 2021 incident's shape: a lazy callback
// that reads the request is put into the shared error context, and runs
// when a later request's error is reported.
func BugSentryProcessorIncident(w http.ResponseWriter, r *http.Request) {
	sentry.ConfigureScope(func(s *sentry.Scope) {
		s.AddEventProcessor(func(e *sentry.Event, h *sentry.EventHint) *sentry.Event {
			if c, err := r.Cookie("session"); err == nil {
				e.Message += " user=" + c.Name
			}
			return e
		})
	})
}

// BugSentryGlobalSetRequest attaches the request to the process-wide scope.
func BugSentryGlobalSetRequest(w http.ResponseWriter, r *http.Request) {
	sentry.CurrentHub().Scope().SetRequest(r)
	sentry.CaptureException(errors.New("boom"))
}

// SafeSentryCloneHub uses a hub cloned for this request.
func SafeSentryCloneHub(w http.ResponseWriter, r *http.Request) {
	hub := sentry.CurrentHub().Clone()
	hub.Scope().SetRequest(r)
	hub.CaptureMessage("handled")
}

// SafeSentryWithScope reports with a temporary scope, popped after the
// call.
func SafeSentryWithScope(w http.ResponseWriter, r *http.Request) {
	sentry.WithScope(func(s *sentry.Scope) {
		s.SetRequest(r)
		sentry.CaptureException(errors.New("boom"))
	})
}
