package sqlitestore

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// fillExpired inserts n sessions that expired an hour ago, in one
// transaction, the way a store looks after a burst of log-ins nobody came
// back to.
func fillExpired(tb testing.TB, st *Store, n int) {
	tb.Helper()
	past := micros(time.Now().Add(-time.Hour))
	_, err := st.writer.Exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?1)
	INSERT INTO sessions (hash, principal, data, version, created, last_seen, idle_deadline, expires,
		last_ip, user_agent, global_epoch, principal_epoch)
	SELECT randomblob(32), 'user' || (i % 1000), zeroblob(200), 1, ?2, ?2, ?2, ?2 + 3600000000,
		'192.0.2.1', 'Mozilla/5.0 (X11; Linux x86_64)', 0, 0 FROM c`, n, past)
	if err != nil {
		tb.Fatal(err)
	}
}

func liveSession(tb testing.TB) *store.Session {
	var tok [32]byte
	rand.Read(tok[:])
	now := time.Now()
	return &store.Session{Hash: store.HashToken(string(tok[:])), Principal: "alice", Data: []byte("d"),
		Created: now, LastSeen: now, IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
}

// BenchmarkCreateDuringSweep measures how long a log-in (Create) waits
// while DeleteExpired sweeps 400,000 expired sessions: Creates run back to
// back for the whole sweep, and the benchmark reports the slowest and the
// 99th percentile. "batched" is the store as it is; "one-statement" sets
// SweepBatch past the table's size, which is the single DELETE the store
// used to run.
func BenchmarkCreateDuringSweep(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch int
	}{{"batched", 0}, {"one-statement", 1 << 40}} {
		b.Run(bc.name, func(b *testing.B) {
			var worst, p99s, p50s, sweeps []time.Duration
			creates := 0
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				st, _ := openTemp(b, Options{SweepBatch: bc.batch})
				fillExpired(b, st, 400_000)
				ctx := context.Background()
				b.StartTimer()
				done := make(chan time.Duration)
				start := time.Now()
				go func() {
					n, err := st.DeleteExpired(ctx, time.Now())
					if err != nil || n != 400_000 {
						b.Errorf("DeleteExpired = %d, %v; want 400000", n, err)
					}
					done <- time.Since(start)
				}()
				var lat []time.Duration
				var sweep time.Duration
			loop:
				for {
					select {
					case sweep = <-done:
						break loop
					default:
					}
					t0 := time.Now()
					if err := st.Create(ctx, liveSession(b)); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				slices.Sort(lat)
				if len(lat) == 0 {
					lat = []time.Duration{0}
				}
				creates += len(lat)
				worst = append(worst, lat[len(lat)-1])
				p99s = append(p99s, lat[len(lat)*99/100])
				p50s = append(p50s, lat[len(lat)/2])
				sweeps = append(sweeps, sweep)
				st.Close()
			}
			ms := func(ds []time.Duration) float64 { return float64(slices.Max(ds)) / float64(time.Millisecond) }
			b.ReportMetric(ms(worst), "max-create-ms")
			b.ReportMetric(ms(p99s), "p99-create-ms")
			b.ReportMetric(ms(p50s), "p50-create-ms")
			b.ReportMetric(ms(sweeps), "sweep-ms")
			b.ReportMetric(float64(creates)/float64(b.N), "creates/sweep")
		})
	}
}

// DeleteExpired removes every dead session whatever the batch size, and
// only those, across batch boundaries and gaps in the rowids.
func TestDeleteExpiredBatches(t *testing.T) {
	for _, batch := range []int{1, 7, 0} {
		st, _ := openTemp(t, Options{SweepBatch: batch})
		ctx := context.Background()
		fillExpired(t, st, 50)
		var keep []*store.Session
		for i := 0; i < 10; i++ {
			s := liveSession(t)
			if err := st.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			keep = append(keep, s)
		}
		fillExpired(t, st, 30)
		// A gap in the rowids.
		if _, err := st.writer.Exec(`DELETE FROM sessions WHERE rowid BETWEEN 20 AND 40`); err != nil {
			t.Fatal(err)
		}
		n, err := st.DeleteExpired(ctx, time.Now())
		if err != nil || n != 80-21 {
			t.Fatalf("batch %d: DeleteExpired = %d, %v; want %d", batch, n, err, 80-21)
		}
		if got, _ := st.Len(ctx); got != len(keep) {
			t.Fatalf("batch %d: %d sessions left, want %d", batch, got, len(keep))
		}
		for _, s := range keep {
			if _, err := st.Find(ctx, s.Hash); err != nil {
				t.Fatalf("batch %d: a live session was swept: %v", batch, err)
			}
		}
		// Enough rows for the adaptive batch size to change on the way.
		fillExpired(t, st, 5000)
		if n, err := st.DeleteExpired(ctx, time.Now()); err != nil || n != 5000 {
			t.Fatalf("batch %d: DeleteExpired of 5000 = %d, %v", batch, n, err)
		}
		// A canceled sweep stops with an error.
		fillExpired(t, st, 10)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := st.DeleteExpired(cctx, time.Now()); err == nil {
			t.Fatalf("batch %d: DeleteExpired with a canceled context succeeded", batch)
		}
	}
}
