package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// tuneGCUnlessSet keeps the collector's heap goal at about 8 MiB over the
// live heap while ctx lasts, unless GOGC is set in the environment (which
// then decides alone). A server whose live heap is a few MiB and whose
// allocations are nearly all per-request garbage would otherwise collect
// at the runtime's smallest goal, 4 MiB: a hundred times a second and
// more under load, each collection's fixed cost paid every few thousand
// requests. A higher GOGC alone would multiply a large live heap instead.
func tuneGCUnlessSet(ctx context.Context) {
	if os.Getenv("GOGC") == "" {
		go tuneGC(ctx)
	}
}

// gcPercent is the collector's percentage for a live heap of live bytes
// (at least 1 MiB): about 8 MiB of growth, at least a quarter of the live
// heap and at most 8 times it. The runtime's smallest heap goal is 4 MiB
// times GOGC/100, so a high percentage on a small heap would let it grow
// far past live + 8 MiB: that bound applies too.
func gcPercent(live int64) int {
	const headroom = 8 << 20
	return int(min(800, max(25, headroom*100/live), (live+headroom)*100/(4<<20)))
}

// tuneGC sets the collector's percentage from the live heap (gcPercent)
// every second until ctx is done.
func tuneGC(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := -1
	for {
		metrics.Read(sample)
		live := int64(1 << 20)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			live = max(live, int64(sample[0].Value.Uint64()))
		}
		if pct := gcPercent(live); pct != last {
			debug.SetGCPercent(pct)
			last = pct
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
