package main

import (
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// TestGCPercent: the heap goal the percentage gives (the runtime's: the
// larger of live*(1+GOGC/100) and 4 MiB*GOGC/100) lets a small heap grow
// by about 8 MiB, not to the runtime's 32 MiB minimum at GOGC=800, and a
// large one by a quarter.
func TestGCPercent(t *testing.T) {
	const mib = 1 << 20
	for _, live := range []int64{1 * mib, 2 * mib, 4 * mib, 8 * mib, 16 * mib, 32 * mib, 100 * mib, 1 << 30} {
		pct := int64(gcPercent(live))
		goal := max(live*(100+pct)/100, 4*mib*pct/100)
		growth := goal - live
		if pct < 25 || pct > 800 {
			t.Errorf("live %d MiB: GOGC %d out of 25..800", live/mib, pct)
		}
		if growth > max(8*mib, live/4)+mib/8 {
			t.Errorf("live %d MiB: GOGC %d lets the heap grow %d MiB", live/mib, pct, growth/mib)
		}
		if growth < min(8*mib, live/4)-mib/8 && live <= 32*mib {
			t.Errorf("live %d MiB: GOGC %d leaves only %d MiB of growth", live/mib, pct, growth/mib)
		}
	}
}

// TestDemoTunesTheCollector: `cordon demo` sets the collector's
// percentage from its live heap (gcPercent never gives more than 800),
// unless GOGC is set in the environment, which then decides alone.
func TestDemoTunesTheCollector(t *testing.T) {
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	const marker = 9999 // a percentage gcPercent never gives
	prev := debug.SetGCPercent(marker)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	for _, env := range []string{"", "100"} {
		t.Run("GOGC="+env, func(t *testing.T) {
			t.Setenv("GOGC", env)
			debug.SetGCPercent(marker)
			dir := t.TempDir()
			d := startDemo(t, "-db", filepath.Join(dir, "demo.db"), "-log", filepath.Join(dir, "requests.log"))
			deadline := time.Now().Add(3 * time.Second)
			for gogc() == marker && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			got := gogc()
			d.stop(t)
			switch tuned := got != marker; {
			case env == "" && (!tuned || got > 800):
				t.Errorf("without GOGC the demo left the percentage at %d", got)
			case env != "" && tuned:
				t.Errorf("with GOGC=%s the demo set the percentage to %d", env, got)
			}
		})
	}
}
