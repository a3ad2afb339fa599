package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// JSONSink writes each event as one JSON line to an io.Writer. It is safe for
// concurrent use: lines never interleave.
type JSONSink struct {
	mu sync.Mutex
	w  io.Writer
}

var _ Sink = (*JSONSink)(nil)

// NewJSONSink returns a sink writing JSON lines to w.
func NewJSONSink(w io.Writer) *JSONSink { return &JSONSink{w: w} }

// Send writes e as one line.
func (s *JSONSink) Send(e *Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("report: json sink: %w", err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("report: json sink: %w", err)
	}
	return nil
}

// SlogSink logs each event through a *slog.Logger, at LevelError for
// errors and LevelWarn for warnings, with the message "report" and the
// event's fields as attributes (request, context, fields and stale as
// groups).
type SlogSink struct {
	l *slog.Logger
}

var _ Sink = (*SlogSink)(nil)

// NewSlogSink returns a sink logging to l (nil means slog.Default()).
func NewSlogSink(l *slog.Logger) *SlogSink {
	if l == nil {
		l = slog.Default()
	}
	return &SlogSink{l: l}
}

// Send logs e.
func (s *SlogSink) Send(e *Event) error {
	level := slog.LevelError
	if e.Level == "warning" {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("id", e.ID),
		slog.String("event", e.Event),
		slog.String("scope", e.Scope),
	}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("scope_id", e.ScopeID)
	add("task", e.Task)
	add("msg", e.Message)
	add("error", e.Error)
	add("error_type", e.ErrorType)
	if r := e.Request; r != nil {
		attrs = append(attrs, slog.Group("request",
			"method", r.Method, "path", r.Path, "req", r.ID, "sid", r.Session, "uid", r.Principal))
	}
	if len(e.Context) > 0 {
		attrs = append(attrs, slog.Any("context", e.Context))
	}
	if len(e.Fields) > 0 {
		attrs = append(attrs, slog.Any("fields", e.Fields))
	}
	if st := e.Stale; st != nil {
		attrs = append(attrs, slog.Group("stale",
			"event", st.Event, "origin", st.Origin, "ended", st.Ended.UTC().Format(time.RFC3339Nano)))
	}
	s.l.LogAttrs(context.Background(), level, "report", attrs...)
	return nil
}
