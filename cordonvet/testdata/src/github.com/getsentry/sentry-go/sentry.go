// Package sentry is a minimal stand-in for an error reporter shaped like
// github.com/getsentry/sentry-go.
package sentry

import (
	"context"
	"net/http"
)

type Event struct{ Message string }
type EventHint struct{}
type EventProcessor func(e *Event, h *EventHint) *Event

type Scope struct{}

func (s *Scope) AddEventProcessor(p EventProcessor) {}
func (s *Scope) SetRequest(r *http.Request)         {}
func (s *Scope) SetTag(k, v string)                 {}
func (s *Scope) SetContext(k string, v any)         {}

type Hub struct{ scope *Scope }

func CurrentHub() *Hub                           { return &Hub{} }
func GetHubFromContext(ctx context.Context) *Hub { return &Hub{} }
func (h *Hub) Scope() *Scope                     { return h.scope }
func (h *Hub) Clone() *Hub                       { return &Hub{} }
func (h *Hub) CaptureMessage(m string)           {}

func ConfigureScope(f func(s *Scope))          {}
func WithScope(f func(s *Scope))               {}
func AddGlobalEventProcessor(p EventProcessor) {}
func CaptureException(err error)               {}
