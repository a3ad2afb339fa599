package ctxvalue

import (
	"context"
	"errors"
	"testing"
	"time"
)

type key struct{}
type other struct{}

// TestContextCarriesValue: the value under its key type, the parent's
// values under any other, and the parent's deadline and cancellation, seen
// by a context derived from it.
func TestContextCarriesValue(t *testing.T) {
	parent, cancel := context.WithTimeout(context.WithValue(context.Background(), other{}, "parent's"), time.Hour)
	c := &Context[key, string]{Context: parent, V: "mine"}
	if c.Value(key{}) != "mine" || c.Value(other{}) != "parent's" {
		t.Fatalf("values %v, %v", c.Value(key{}), c.Value(other{}))
	}
	if _, ok := c.Deadline(); !ok {
		t.Fatal("the parent's deadline is not there")
	}
	child, stop := context.WithCancel(c)
	defer stop()
	cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived from it did not end with the parent")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("err %v", c.Err())
	}
}
