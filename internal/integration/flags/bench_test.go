package flags_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/flags"
)

func benchFlags(b *testing.B, interval time.Duration) *flags.Flags {
	b.Helper()
	ctx := context.Background()
	f := openFlags(b, openDB(b), flags.Options{Interval: interval, Groups: map[string]func(string) bool{"staff": staff}})
	must(b, f.Enable(ctx, "boolean"))
	for i := range 100 {
		must(b, f.EnableActor(ctx, "actors", fmt.Sprintf("u_%d", i)))
	}
	must(b, f.SetPercentage(ctx, "percentage", 50))
	must(b, f.EnableGroup(ctx, "group", "staff"))
	for i := range 200 { // other flags, so lookups go through a realistic map
		must(b, f.Add(ctx, fmt.Sprintf("filler_%d", i)))
	}
	must(b, f.Refresh(ctx))
	return f
}

// BenchmarkEnabled measures one check per gate kind. Run with
//
//	go test -run '^$' -bench Enabled -benchmem ./internal/integration/flags/
func BenchmarkEnabled(b *testing.B) {
	f := benchFlags(b, time.Hour)
	cases := []struct{ name, flag, actor string }{
		{"boolean", "boolean", "u_42"},
		{"actor_hit", "actors", "u_42"},
		{"actor_miss", "actors", "u_4242"},
		{"percentage", "percentage", "user-8f14e45fceea167a"},
		{"group", "group", "staff_ann"},
		{"unknown_flag", "nope", "u_42"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Enabled(c.flag, c.actor)
			}
		})
	}
}

// BenchmarkEnabledParallel checks from every P while the refresher swaps in
// a new snapshot every 5 ms (each refresh re-reads the table; at 1 ms the
// refresher alone takes much of one of the two CPUs); swaps is reported so
// the run proves swaps happened. The rwmutex case is the design not taken —
// the same snapshot behind a sync.RWMutex, swapped under the write lock at
// the same rate — run side by side for the ratio. Run with
//
//	go test -run '^$' -bench EnabledParallel -benchmem ./internal/integration/flags/
func BenchmarkEnabledParallel(b *testing.B) {
	b.Run("atomic", func(b *testing.B) {
		f := benchFlags(b, 5*time.Millisecond)
		stop := f.Start()
		defer stop()
		gen0 := f.Snapshot().Generation()
		parallelChecks(b, f.Enabled)
		b.ReportMetric(float64(f.Snapshot().Generation()-gen0), "swaps")
	})
	b.Run("rwmutex", func(b *testing.B) {
		f := benchFlags(b, time.Hour)
		var mu sync.RWMutex
		cur := f.Snapshot()
		done := make(chan struct{})
		exited := make(chan struct{})
		var swaps atomic.Int64
		go func() {
			defer close(exited)
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				if err := f.Refresh(context.Background()); err != nil {
					return
				}
				mu.Lock()
				cur = f.Snapshot()
				mu.Unlock()
				swaps.Add(1)
			}
		}()
		parallelChecks(b, func(flag, actor string) bool {
			mu.RLock()
			defer mu.RUnlock()
			return cur.Enabled(flag, actor)
		})
		close(done)
		<-exited
		b.ReportMetric(float64(swaps.Load()), "swaps")
	})
}

func parallelChecks(b *testing.B, enabled func(flag, actor string) bool) {
	var hits atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := int64(0)
		checks := [...][2]string{{"actors", "u_1"}, {"percentage", "user-77"}, {"group", "staff_x"}, {"actors", "u_4242"}}
		i := 0
		for pb.Next() {
			c := checks[i&3]
			i++
			if enabled(c[0], c[1]) {
				n++
			}
		}
		hits.Add(n)
	})
	b.StopTimer()
	if hits.Load() == 0 {
		b.Fatal("no check succeeded")
	}
}
