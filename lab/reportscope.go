package lab

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/cordon-sec/cordon/report"
)

// valueScope is the value-only error context: a handle on a cordon
// report.Scope. report snapshots every value when it is set and refuses
// callbacks; a request scope is sealed when its request ends, and a report
// made through it afterwards is a stale_use event with no request data.
type valueScope struct {
	rt    *rt
	owner string
	s     *report.Scope
	sink  *eventSink
}

func (v *valueScope) Set(key string, x any) {
	if err := v.s.Set(key, x); err != nil {
		v.rt.ev("reporter", "block", fmt.Sprintf("report refused %q: %v", key, err))
	}
}

// Copy returns the same handle: what a report carries is decided by the
// report package when the report is captured, not by who holds the handle.
func (v *valueScope) Copy() errScope { return v }

func (v *valueScope) Capture(err error) Report {
	id := v.s.Capture(err)
	rep := Report{Error: err.Error(), From: v.Describe(), Fields: map[string]string{}}
	e := v.sink.take(id)
	if e == nil {
		return rep
	}
	rep.Error = e.Error
	for _, k := range slices.Sorted(maps.Keys(e.Context)) {
		rep.Fields[k] = fmt.Sprint(e.Context[k])
	}
	if e.Request != nil && e.Request.Principal != "" {
		rep.Fields["user"] = e.Request.Principal
	}
	if e.Task != "" {
		rep.Fields["task"] = e.Task
	}
	if e.Stale != nil {
		rep.Fields["stale"] = "its request had ended: no request data"
	}
	return rep
}

func (v *valueScope) Describe() string {
	return fmt.Sprintf("report scope of %s (values only)", v.owner)
}

// eventSink keeps the events of a report.Reporter until the capturing code
// takes them (Send is synchronous, so the event is there when Capture
// returns).
type eventSink struct {
	mu sync.Mutex
	m  map[string]*report.Event
}

var _ report.Sink = (*eventSink)(nil)

func newEventSink() *eventSink { return &eventSink{m: map[string]*report.Event{}} }

func (k *eventSink) Send(e *report.Event) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.m) > 1000 {
		clear(k.m) // events nobody took (the session manager's) are not kept
	}
	k.m[e.ID] = e.Clone()
	return nil
}

func (k *eventSink) take(id string) *report.Event {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.m[id]
	delete(k.m, id)
	return e
}
