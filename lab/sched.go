package lab

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrStuck is returned by the scheduler when no actor reports within its
// watchdog timeout: the composition is blocked somewhere outside a yield
// point (a bug in the lab, never a result).
var ErrStuck = errors.New("lab: scheduler: no actor reported in time")

// Sched is a deterministic cooperative scheduler. The goroutines of a
// composition (the request goroutine of whichever request the worker is
// serving, and the background goroutine) are its actors: each one runs only
// when the driver resumes it, and runs until it reaches its next yield point
// (Yield) or leaves (Exit). At most one actor runs at a time, so a run is
// fully determined by the driver's sequence of resumptions; the composition
// still runs on real goroutines with real handoffs, exactly as it would
// without the scheduler.
//
// A nil *Sched is valid: every method then does nothing, which is how the
// live servers run the same code at full concurrency.
type Sched struct {
	events  chan event
	timeout time.Duration

	mu      sync.Mutex
	current *Actor
}

// Actor is one goroutine under the scheduler's control.
type Actor struct {
	// Name is the actor's lane: "request" or "background".
	Name   string
	resume chan struct{}
	// At is where the actor is parked ("" while it runs, "exit" once gone).
	At string
	// Label describes what the actor is doing, for the trace ("request #3").
	label string
}

type event struct {
	a    *Actor
	at   string
	exit bool
}

// NewSched returns a scheduler whose driver gives up with ErrStuck when no
// actor reports within timeout (0 means 10 s).
func NewSched(timeout time.Duration) *Sched {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Sched{events: make(chan event), timeout: timeout}
}

// Enter makes the calling goroutine an actor named name and parks it at
// "enter" until the driver resumes it. On a nil Sched it returns nil at once.
func (s *Sched) Enter(name, label string) *Actor {
	if s == nil {
		return nil
	}
	a := &Actor{Name: name, label: label, resume: make(chan struct{})}
	s.events <- event{a: a, at: "enter"}
	<-a.resume
	return a
}

// Yield parks the running actor at the named point until the driver resumes
// it. Callers must not hold locks another actor may need.
func (s *Sched) Yield(at string) {
	if s == nil {
		return
	}
	a := s.Current()
	if a == nil {
		return
	}
	s.events <- event{a: a, at: at}
	<-a.resume
}

// Exit reports that the running actor a has finished; it does not block.
func (s *Sched) Exit(a *Actor) {
	if s == nil || a == nil {
		return
	}
	s.events <- event{a: a, exit: true}
}

// Current returns the actor that is running, or nil.
func (s *Sched) Current() *Actor {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Relabel changes what the running actor is said to be doing.
func (s *Sched) Relabel(label string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.current != nil {
		s.current.label = label
	}
	s.mu.Unlock()
}

// wait receives the next event (driver side).
func (s *Sched) wait() (event, error) {
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case ev := <-s.events:
		if ev.exit {
			ev.a.At = "exit"
		} else {
			ev.a.At = ev.at
		}
		return ev, nil
	case <-t.C:
		return event{}, fmt.Errorf("%w (waited %v)", ErrStuck, s.timeout)
	}
}

// waitEnter waits for a goroutine to call Enter (driver side) and returns it.
func (s *Sched) waitEnter(name string) (*Actor, error) {
	ev, err := s.wait()
	if err != nil {
		return nil, err
	}
	if ev.a.Name != name || ev.at != "enter" {
		return nil, fmt.Errorf("lab: scheduler: expected %s to enter, got %s at %q", name, ev.a.Name, ev.at)
	}
	return ev.a, nil
}

// step resumes a and waits until it parks again or exits (driver side).
func (s *Sched) step(a *Actor) error {
	if a.At == "exit" {
		return nil
	}
	s.mu.Lock()
	s.current = a
	s.mu.Unlock()
	a.At = ""
	a.resume <- struct{}{}
	ev, err := s.wait()
	if err != nil {
		return err
	}
	if ev.a != a {
		return fmt.Errorf("lab: scheduler: resumed %s but %s reported", a.Name, ev.a.Name)
	}
	if ev.exit {
		s.mu.Lock()
		s.current = nil
		s.mu.Unlock()
	}
	return nil
}

// runUntil resumes a until it parks at one of the points or exits. An
// actor that has exited or is already parked at one of the points is left
// alone.
func (s *Sched) runUntil(a *Actor, points ...string) error {
	for a.At != "exit" && !slices.Contains(points, a.At) {
		if err := s.step(a); err != nil {
			return err
		}
		if slices.Contains(points, a.At) {
			return nil
		}
	}
	return nil
}

// waitEnterOr waits for a goroutine to call Enter (driver side), or for
// done: it returns the actor, or fin and done's value.
func (s *Sched) waitEnterOr(name string, done <-chan error) (a *Actor, fin bool, err error) {
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case ev := <-s.events:
		if ev.exit {
			ev.a.At = "exit"
		} else {
			ev.a.At = ev.at
		}
		if ev.a.Name != name || ev.at != "enter" {
			return nil, false, fmt.Errorf("lab: scheduler: expected %s to enter, got %s at %q", name, ev.a.Name, ev.at)
		}
		return ev.a, false, nil
	case err := <-done:
		return nil, true, err
	case <-t.C:
		return nil, false, fmt.Errorf("%w (waited %v)", ErrStuck, s.timeout)
	}
}
