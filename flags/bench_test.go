package flags

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func benchFlags(b *testing.B, interval time.Duration) *Flags {
	b.Helper()
	ctx := context.Background()
	f := openFlags(b, openDB(b), Options{Interval: interval, Groups: map[string]func(string) bool{"staff": staff}})
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
//	go test -run '^$' -bench Enabled -benchmem ./flags/
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
// a new snapshot every millisecond; swaps/op is reported so the run proves
// swaps happened.
func BenchmarkEnabledParallel(b *testing.B) {
	f := benchFlags(b, time.Millisecond)
	stop := f.Start()
	defer stop()
	gen0 := f.Snapshot().Generation()
	var hits atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := int64(0)
		actors := [...]string{"u_1", "u_4242", "staff_x", "user-77"}
		i := 0
		for pb.Next() {
			a := actors[i&3]
			i++
			if f.Enabled("actors", a) || f.Enabled("percentage", a) {
				n++
			}
		}
		hits.Add(n)
	})
	b.StopTimer()
	b.ReportMetric(float64(f.Snapshot().Generation()-gen0), "swaps")
	if hits.Load() == 0 {
		b.Fatal("no check succeeded")
	}
}
