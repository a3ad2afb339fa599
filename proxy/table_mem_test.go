package proxy

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// TestBindingsHoldNoObjectPerBinding: a table of many bindings is a few
// large allocations the collector need not scan, not objects per binding.
// It logs the bytes a binding costs, the figures in docs/proxy.md:
//
//	go test -v -run TestBindingsHoldNoObjectPerBinding ./proxy/
func TestBindingsHoldNoObjectPerBinding(t *testing.T) {
	const n = 500_000
	for _, tc := range []struct {
		name     string
		distinct bool // a device of its own for every session (random cookies)
		maxBytes int64
	}{{"one device", false, 128}, {"a device each", true, 256}} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBindingsLimited(Limits{MaxIssued: n})
			dev := store.Fingerprint("device")
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range n {
				d := dev
				if tc.distinct {
					d = store.Fingerprint("device " + strconv.Itoa(i))
				}
				if _, st, err := b.Bind(context.Background(), store.Fingerprint(strconv.Itoa(i)), Binding{Device: d, Created: time.Now()}); st != Bound || err != nil {
					t.Fatalf("bind %d: %v %v", i, st, err)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			objects := int64(after.HeapObjects) - int64(before.HeapObjects)
			bytes := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
			t.Logf("%d bindings, %s: %d heap objects, %d bytes a binding", n, tc.name, objects, bytes)
			perBinding := int64(0) // the table's own: none per binding
			if tc.distinct {
				perBinding = n // each device's interned string
			}
			if objects > perBinding+n/100 {
				t.Errorf("%d heap objects for %d bindings: the table allocates per binding", objects, n)
			}
			if bytes > tc.maxBytes {
				t.Errorf("%d bytes a binding, want at most %d", bytes, tc.maxBytes)
			}
			runtime.KeepAlive(b)
		})
	}
}
