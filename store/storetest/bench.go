package storetest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// benchSessions is how many sessions Bench loads before measuring reads and
// writes, so look-ups do not all hit one hot row.
const benchSessions = 1000

// Bench measures a backend's per-call cost of Find (serial and parallel),
// Update, Touch and Create, the calls on a request's path. newStore returns
// a fresh, empty store; run with -benchmem to see allocations.
func Bench(b *testing.B, newStore func(b *testing.B) store.Full) {
	b.Helper()
	setup := func(b *testing.B) (store.Full, []*store.Session) {
		b.Helper()
		st := newStore(b)
		ss := make([]*store.Session, benchSessions)
		now := time.Now()
		for i := range ss {
			ss[i] = &store.Session{
				Hash:         store.HashToken("bench-" + strconv.Itoa(i)),
				Principal:    "user" + strconv.Itoa(i%50),
				Data:         []byte(`{"cart":["a","b","c"],"theme":"dark","n":42}`),
				Created:      now,
				LastSeen:     now,
				IdleDeadline: now.Add(time.Hour),
				Expires:      now.Add(12 * time.Hour),
				LastIP:       "192.0.2.1",
				UserAgent:    "Mozilla/5.0 (X11; Linux x86_64) bench",
			}
			if err := st.Create(context.Background(), ss[i]); err != nil {
				b.Fatal(err)
			}
		}
		return st, ss
	}
	// Like a request's context: cancelable, so it has a Done channel.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("Find", func(b *testing.B) {
		st, ss := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := st.Find(ctx, ss[i%len(ss)].Hash); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("FindParallel", func(b *testing.B) {
		st, ss := setup(b)
		var next atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1)
				if _, err := st.Find(ctx, ss[int(i)%len(ss)].Hash); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Update", func(b *testing.B) {
		st, ss := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s := ss[i%len(ss)]
			s.Data[len(s.Data)-2] = byte('0' + i%10)
			if err := st.Update(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Touch", func(b *testing.B) {
		st, ss := setup(b)
		now := time.Now()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s := ss[i%len(ss)]
			if err := st.Touch(ctx, s.Hash, now, now.Add(time.Hour), "192.0.2.9", s.UserAgent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Create", func(b *testing.B) {
		st := newStore(b)
		now := time.Now()
		hashes := make([]store.Hash, b.N)
		for i := range hashes {
			hashes[i] = store.HashToken("create-" + strconv.Itoa(i))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			s := &store.Session{
				Hash:         hashes[i],
				Principal:    "user",
				Data:         []byte(`{"n":1}`),
				Created:      now,
				LastSeen:     now,
				IdleDeadline: now.Add(time.Hour),
				Expires:      now.Add(12 * time.Hour),
				LastIP:       "192.0.2.1",
				UserAgent:    "bench",
			}
			if err := st.Create(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
