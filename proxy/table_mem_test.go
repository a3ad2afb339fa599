package proxy

import (
	"context"
	"math/rand/v2"
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
	}{{"one device", false, 80}, {"a device each", true, 150}} {
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

// BenchmarkBindingsGet looks up bindings of a full default-sized table in
// random order, as many devices' requests would (most lookups miss the
// processor's caches); BenchmarkBindingsBind binds fresh sessions, as
// GET /login under load does, into a table that is filling up.
//
//	go test -run '^$' -bench 'Bindings(Get|Bind)' -benchmem ./proxy/
func BenchmarkBindingsGet(b *testing.B) {
	const n = DefaultMaxIssued
	bs := NewBindings()
	fps := make([]string, n)
	for i := range fps {
		fps[i] = store.Fingerprint(strconv.Itoa(i))
		bs.Bind(context.Background(), fps[i], Binding{Device: "device", Created: time.Now()})
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(n)
		for pb.Next() {
			i = (i + 7919) % n // a prime stride: every binding, no order the caches could follow
			if _, st := bs.Get(fps[i]); st != Bound {
				b.Fatalf("binding %d: %v", i, st)
			}
		}
	})
}

func BenchmarkBindingsBind(b *testing.B) {
	bs := NewBindings()
	fps := make([]string, b.N)
	for i := range fps {
		fps[i] = store.Fingerprint(strconv.Itoa(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, st, _ := bs.Bind(context.Background(), fps[i], Binding{Device: "device", Created: time.Now()}); st != Bound {
			b.Fatalf("binding %d: %v", i, st)
		}
	}
}
