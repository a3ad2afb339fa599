package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// errScope is an error-report context: the fields a report carries.
type errScope interface {
	// Set adds a field.
	Set(key string, v any)
	// Copy returns what a report captures when it is raised.
	Copy() errScope
	// Capture builds the report of err, in the goroutine that processes
	// it: lazy fields run their callbacks here.
	Capture(err error) Report
	// Describe says what the context is, for the trace.
	Describe() string
}

// lazy is a callback field: it is run when a report is processed.
type lazy struct {
	owner string // the object the callback holds ("controller#1")
	f     func() (string, error)
}

// lazyScope is the vulnerable reporter's context: fields may be callbacks
// that hold references to request objects.
type lazyScope struct {
	rt    *rt
	owner string
	mu    sync.Mutex
	m     map[string]any
}

func newLazyScope(r *rt, owner string, fields map[string]any) *lazyScope {
	return &lazyScope{rt: r, owner: owner, m: maps.Clone(fields)}
}

func (s *lazyScope) Set(key string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = v
}

// Copy copies the map: callbacks are copied as references, so the copy
// still reaches the objects the callbacks hold.
func (s *lazyScope) Copy() errScope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &lazyScope{rt: s.rt, owner: s.owner, m: maps.Clone(s.m)}
}

func (s *lazyScope) Capture(err error) Report {
	return Report{Error: err.Error(), From: s.Describe(), Fields: s.resolve()}
}

func (s *lazyScope) resolve() map[string]string {
	s.mu.Lock()
	m := maps.Clone(s.m)
	s.mu.Unlock()
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch v := m[k].(type) {
		case lazy:
			s.rt.ev("reporter", "call", fmt.Sprintf("callback %q registered by %s → %s.CurrentUser", k, s.owner, v.owner))
			x, err := v.f()
			if err != nil {
				out[k] = "error: " + errKind(err)
			} else {
				out[k] = orAnon(x)
			}
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

func (s *lazyScope) Describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.m {
		if _, ok := v.(lazy); ok {
			n++
		}
	}
	return fmt.Sprintf("context of %s: %d fields, %d callback(s)", s.owner, len(s.m), n)
}

// Report is one delivered error report.
type Report struct {
	Error  string            `json:"error"`
	From   string            `json:"from"`
	Fields map[string]string `json:"fields"`
}

// Reporter is an error reporter with one current context per worker, set by
// whichever request the worker is serving: the background goroutine that
// reports without a context of its own copies it.
type Reporter struct {
	rt        *rt
	log       *slog.Logger
	mu        sync.Mutex
	current   errScope
	delivered []Report
}

func newReporter(r *rt, log *slog.Logger) *Reporter { return &Reporter{rt: r, log: log} }

// SetCurrent makes c the current context.
func (r *Reporter) SetCurrent(c errScope) {
	r.mu.Lock()
	r.current = c
	r.mu.Unlock()
	r.rt.ev("reporter", "write", "current context = "+c.Describe())
}

// CopyCurrent returns a copy of the current context, or nil.
func (r *Reporter) CopyCurrent() errScope {
	r.mu.Lock()
	c := r.current
	r.mu.Unlock()
	if c == nil {
		r.rt.ev("reporter", "copy", "no current context")
		return nil
	}
	cp := c.Copy()
	r.rt.ev("reporter", "copy", "copy current context: "+cp.Describe())
	return cp
}

// Process resolves the report's context in the calling goroutine and
// delivers the report.
func (r *Reporter) Process(c errScope, err error) Report {
	rep := Report{Error: err.Error(), Fields: map[string]string{}}
	if c != nil {
		rep = c.Capture(err)
	}
	r.mu.Lock()
	r.delivered = append(r.delivered, rep)
	if len(r.delivered) > 1000 {
		r.delivered = r.delivered[len(r.delivered)-1000:]
	}
	r.mu.Unlock()
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(rep.Fields)) {
		fmt.Fprintf(&b, " %s=%s", k, rep.Fields[k])
	}
	r.rt.ev("reporter", "write", "deliver report "+rep.Error+":"+b.String())
	r.log.LogAttrs(context.Background(), slog.LevelError, "lab: error report", slog.String("error", rep.Error), slog.Any("fields", rep.Fields))
	return rep
}

// Delivered returns the reports delivered so far (the last 1000).
func (r *Reporter) Delivered() []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.delivered)
}

// errQueryTimeout is the refresher's simulated failure.
var errQueryTimeout = errors.New("flags: refresh: query timeout")

// Refresher is the background goroutine that refreshes feature enablement
// on an interval and reports its errors through the worker's reporter.
type Refresher struct {
	rt    *rt
	rep   *Reporter
	every time.Duration
	fail  func() bool
	// own, if set, builds the refresher's own context; otherwise it copies
	// the reporter's current one.
	own func() errScope
}

// run loops until ctx ends (live) or the driver stops it (scheduler).
func (f *Refresher) run(ctx context.Context) {
	a := f.rt.sched.Enter("background", "flag refresher")
	defer f.rt.sched.Exit(a)
	var tick *time.Ticker
	if f.rt.sched == nil {
		tick = time.NewTicker(f.every)
		defer tick.Stop()
	}
	for {
		if f.rt.sched != nil {
			f.rt.sched.Yield("sleep")
			if ctx.Err() != nil {
				return
			}
		} else {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		if !f.fail() {
			f.rt.ev("flags", "read", "refresh feature enablement: ok")
			continue
		}
		f.rt.ev("flags", "read", "refresh feature enablement: "+errQueryTimeout.Error())
		var c errScope
		if f.own != nil {
			c = f.own()
			f.rt.ev("reporter", "copy", "report with the background's own "+c.Describe())
		} else {
			c = f.rep.CopyCurrent()
		}
		f.rt.pause("report.copied")
		f.rep.Process(c, errQueryTimeout)
	}
}
