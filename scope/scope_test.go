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
