package scope

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func obtain(s *Scope) Seal { return s.Seal("session", 1) }

func TestSealFailsAfterEnd(t *testing.T) {
	end := time.Date(2021, 3, 2, 17, 4, 5, 0, time.UTC)
	s := New(func() time.Time { return end })
	sl, here := obtain(s), Caller(0) // the origin must name this line
	if err := sl.Check(); err != nil {
		t.Fatalf("open scope: Check = %v", err)
	}
	s.End()
	err := sl.Check()
	if !errors.Is(err, ErrRequestEnded) {
		t.Fatalf("Check after End = %v, want ErrRequestEnded", err)
	}
	var ee *EndedError
	if !errors.As(err, &ee) {
		t.Fatalf("not an *EndedError: %T", err)
	}
	if ee.Origin != here || !strings.Contains(here, "scope_test.go:") {
		t.Errorf("origin = %q, want %q", ee.Origin, here)
	}
	if !ee.Ended.Equal(end) {
		t.Errorf("ended = %v, want %v", ee.Ended, end)
	}
	if !strings.Contains(err.Error(), "2021-03-02T17:04:05Z") {
		t.Errorf("message %q lacks the end time", err)
	}
}

func TestEndRunsHooksOnceInReverse(t *testing.T) {
	s := New(nil)
	var got []int
	s.OnEnd(func() { got = append(got, 1) })
	s.OnEnd(func() { got = append(got, 2) })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); s.End() }()
	}
	wg.Wait()
	if len(got) != 2 || got[0] != 2 || got[1] != 1 {
		t.Fatalf("hooks ran %v, want [2 1]", got)
	}
	ran := false
	s.OnEnd(func() { ran = true })
	if !ran {
		t.Fatal("OnEnd after End did not run at once")
	}
}

func TestZeroSealFails(t *testing.T) {
	var sl Seal
	if !errors.Is(sl.Check(), ErrRequestEnded) {
		t.Fatal("the zero seal must refuse")
	}
}

type key struct{}

func TestDetachKeepsNothing(t *testing.T) {
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), key{}, "secret"), time.Hour)
	parent = NewContext(parent, New(nil))
	d := Detach(parent)
	cancel()
	if d.Value(key{}) != nil || FromContext(d) != nil {
		t.Fatal("detached context kept a request value")
	}
	if d.Err() != nil {
		t.Fatal("detached context was cancelled with its request")
	}
	if _, ok := d.Deadline(); ok {
		t.Fatal("detached context kept the request's deadline")
	}
}

// TestEndOnDoneSealsAtOnce: once the context given to EndOnDone is done,
// the very next Check fails, with nothing running in the background (no
// OnEnd hook was registered, so no watch exists), and the end time is the
// clock's when the end was seen.
func TestEndOnDoneSealsAtOnce(t *testing.T) {
	seen := time.Date(2021, 3, 2, 17, 4, 5, 0, time.UTC)
	s := New(func() time.Time { return seen })
	ctx, cancel := context.WithCancel(context.Background())
	s.EndOnDone(ctx)
	sl := obtain(s)
	if err := sl.Check(); err != nil || s.Ended() || !s.EndedAt().IsZero() {
		t.Fatalf("before the context is done: Check %v, Ended %v, EndedAt %v", err, s.Ended(), s.EndedAt())
	}
	if s.stop != nil {
		t.Fatal("a scope with no OnEnd hook watches its context")
	}
	cancel()
	var ee *EndedError
	if err := sl.Check(); !errors.As(err, &ee) || !errors.Is(err, ErrRequestEnded) {
		t.Fatalf("Check right after the context is done = %v", err)
	}
	if !ee.Ended.Equal(seen) || !s.Ended() || !s.EndedAt().Equal(seen) {
		t.Fatalf("ended %v, Ended %v, EndedAt %v; want %v", ee.Ended, s.Ended(), s.EndedAt(), seen)
	}
	if later := obtain(s); later.Check() == nil {
		t.Fatal("a seal taken after the context was done passes")
	}
}

// TestEndOnDoneRunsHooks: an OnEnd hook runs when the context is done
// though nothing looks at the scope, exactly once, not on the goroutine of
// a Check that saw the end first; End stops the watch.
func TestEndOnDoneRunsHooks(t *testing.T) {
	s := New(nil)
	ctx, cancel := context.WithCancel(context.Background())
	s.EndOnDone(ctx)
	ran := make(chan struct{}, 2)
	s.OnEnd(func() { ran <- struct{}{} })
	cancel()
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the hook did not run when the context was done")
	}
	if !s.Ended() {
		t.Fatal("the hook ran on an open scope")
	}
	s.End()
	if len(ran) != 0 {
		t.Fatal("End ran the hook again")
	}

	// A Check that sees the end first leaves the hook to the watch.
	s = New(nil)
	ctx, cancel = context.WithCancel(context.Background())
	s.EndOnDone(ctx)
	block := make(chan struct{})
	s.OnEnd(func() { <-block; ran <- struct{}{} })
	sl := obtain(s)
	cancel()
	if sl.Check() == nil { // would hang here if the hook ran on this goroutine
		t.Fatal("Check passed after the context was done")
	}
	close(block)
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the hook did not run after a Check saw the end")
	}

	// End before the context is done: the hook runs once, from End, and
	// the watch is stopped.
	s = New(nil)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	s.EndOnDone(ctx)
	s.OnEnd(func() { ran <- struct{}{} })
	s.End()
	cancel()
	time.Sleep(10 * time.Millisecond)
	if len(ran) != 1 || s.stop != nil {
		t.Fatalf("hook ran %d times after End then cancel, watch %v", len(ran), s.stop != nil)
	}
}

// TestContextCarriesScope: a Context in a caller's memory carries the
// scope as NewContext's does, and everything else of its parent: values,
// deadline, cancellation.
func TestContextCarriesScope(t *testing.T) {
	s := New(nil)
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), key{}, "v"), time.Hour)
	var c Context
	c.Init(parent, s)
	if FromContext(&c) != s || FromContext(NewContext(parent, s)) != s || c.Value(key{}) != "v" {
		t.Fatal("the scope or the parent's value is not there")
	}
	if d, ok := c.Deadline(); !ok || d.IsZero() {
		t.Fatal("the parent's deadline is not there")
	}
	cancel()
	if !errors.Is(c.Err(), context.Canceled) || c.Done() != parent.Done() {
		t.Fatalf("err %v", c.Err())
	}
}
