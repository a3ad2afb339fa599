package proxy

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// TestBindingsHoldNoObjectPerBinding: a table of many bindings (one
// device, as most sessions share theirs) is a few large allocations the
// collector need not scan, not objects per binding, and about 96 bytes a
// binding (the figure in docs/proxy.md).
func TestBindingsHoldNoObjectPerBinding(t *testing.T) {
	const n = 100_000
	b := NewBindings()
	dev := store.Fingerprint("device")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		if _, st, err := b.Bind(context.Background(), store.Fingerprint(strconv.Itoa(i)), Binding{Device: dev, Created: time.Now()}); st != Bound || err != nil {
			t.Fatalf("bind %d: %v %v", i, st, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	objects := int64(after.HeapObjects) - int64(before.HeapObjects)
	bytes := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d bindings: %d heap objects, %d bytes each", n, objects, bytes/n)
	if objects > n/100 {
		t.Errorf("%d heap objects for %d bindings: the table allocates per binding", objects, n)
	}
	if bytes/n > 128 {
		t.Errorf("%d bytes per binding, want about 96", bytes/n)
	}
	runtime.KeepAlive(b)
}
