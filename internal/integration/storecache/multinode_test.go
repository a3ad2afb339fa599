package storecache_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
	"github.com/cordon-sec/cordon/store/pgstore"
	"github.com/cordon-sec/cordon/store/redisstore"
)

// backend opens stores that share one database (fresh per test): each call
// of open is one more node's connection.
type backend struct {
	name string
	open func(t testing.TB) store.Full
}

func randName() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func envOrFail(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the tests with ./test.sh, which starts PostgreSQL and Redis", name)
	}
	return v
}

func pgBackend(t testing.TB) backend {
	url := envOrFail(t, "CORDON_TEST_POSTGRES")
	schema := "t_" + randName()
	return backend{"postgres", func(t testing.TB) store.Full {
		st, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			st.Pool().Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			st.Close()
		})
		return st
	}}
}

func redisBackend(t testing.TB) backend {
	url := envOrFail(t, "CORDON_TEST_REDIS")
	prefix := "t" + randName() + ":"
	return backend{"redis", func(t testing.TB) store.Full {
		st, err := redisstore.Open(context.Background(), url, redisstore.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx := context.Background()
			iter := st.Client().Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				st.Client().Del(ctx, iter.Val())
			}
			st.Close()
		})
		return st
	}}
}

// lagObserver collects revocation lags.
type lagObserver struct {
	mu   sync.Mutex
	lags []time.Duration
}

func (o *lagObserver) Hit()     {}
func (o *lagObserver) Miss()    {}
func (o *lagObserver) Flushed() {}
func (o *lagObserver) Revoked(_ cache.Kind, lag time.Duration) {
	o.mu.Lock()
	o.lags = append(o.lags, lag)
	o.mu.Unlock()
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

// TestPropagation runs three nodes (each its own connections and cache)
// over one PostgreSQL, then one Redis; revokes sessions through one node
// and measures until the other two refuse them.
func TestPropagation(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{pgBackend, redisBackend} {
		be := mk(t)
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			testPropagation(t, be)
		})
	}
}

func testPropagation(t *testing.T, be backend) {
	const rounds = 30
	lags, notified := measurePropagation(t, be, rounds)
	t.Logf("%s: revocation until 2 other nodes refuse, %d rounds: p50 %v, p99 %v, max %v (bound %v)",
		be.name, rounds, percentile(lags, 0.5), percentile(lags, 0.99), slices.Max(lags), time.Second)
	if len(notified) > 0 {
		t.Logf("%s: publish-to-eviction lag seen by the observer, %d notifications: p50 %v, p99 %v",
			be.name, len(notified), percentile(notified, 0.5), percentile(notified, 0.99))
	}
	if len(notified) < rounds {
		t.Errorf("%s: observers saw %d notifications for %d revocations on two nodes", be.name, len(notified), 2*rounds)
	}
}

// measurePropagation starts three nodes over be and revokes rounds
// sessions, alternately by fingerprint and by user, each through one node.
// It returns, per revocation, the time from the start of the revoking call
// until both other nodes refuse the session (failing if that exceeds the
// 1 s bound), and the publish-to-eviction lags the other nodes observed.
func measurePropagation(t testing.TB, be backend, rounds int) (lags, notified []time.Duration) {
	ctx := context.Background()
	const bound = time.Second
	obs := &lagObserver{}
	var ns []*cache.Cache
	for i := 0; i < 3; i++ {
		opt := cache.Options{Bound: bound, TTL: time.Minute}
		if i > 0 {
			opt.Observer = obs
		}
		ns = append(ns, newCache(t, be.open(t), opt))
	}
	for i := 0; i < rounds; i++ {
		s := session(t, fmt.Sprintf("user%d", i))
		if err := ns[i%3].Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		for _, c := range ns {
			waitReady(t, c, s)
		}
		from := ns[i%3]
		start := time.Now()
		var err error
		if i%2 == 0 {
			_, err = from.RevokeFingerprints(ctx, []string{s.Fingerprint()})
		} else {
			err = from.RevokePrincipal(ctx, s.Principal)
		}
		if err != nil {
			t.Fatal(err)
		}
		for j, c := range ns {
			if c == from {
				continue
			}
			for {
				_, err := c.Find(ctx, s.Hash)
				if errors.Is(err, store.ErrNotFound) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if time.Since(start) > bound {
					t.Fatalf("node %d still serves session %s %v after it was revoked on node %d", j+1, s.Fingerprint(), time.Since(start), i%3+1)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		lags = append(lags, time.Since(start))
	}
	obs.mu.Lock()
	notified = slices.Clone(obs.lags)
	obs.mu.Unlock()
	return lags, notified
}

// BenchmarkPropagation reports, per backend, the p50 and p99 of the time
// from a revocation on one of three nodes until the other two refuse the
// session (each op is one revocation).
//
//	go test -run '^$' -bench BenchmarkPropagation ./internal/integration/storecache/
func BenchmarkPropagation(b *testing.B) {
	for _, mk := range []func(testing.TB) backend{pgBackend, redisBackend} {
		be := mk(b)
		b.Run(be.name, func(b *testing.B) {
			lags, _ := measurePropagation(b, be, b.N)
			b.ReportMetric(float64(percentile(lags, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lags, 0.99).Microseconds())/1000, "p99-ms")
		})
	}
}

// TestNodesAgree checks that two nodes over one real backend see each
// other's sessions, and that a logout on one reaches the other.
func TestNodesAgree(t *testing.T) {
	for _, mk := range []func(testing.TB) backend{pgBackend, redisBackend} {
		be := mk(t)
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			a := newCache(t, be.open(t), cache.Options{})
			b := newCache(t, be.open(t), cache.Options{})
			s := session(t, "alice")
			if err := a.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			got, err := b.Find(ctx, s.Hash)
			if err != nil || got.Principal != "alice" {
				t.Fatalf("node 2 find: %v, %v", got, err)
			}
			if err := b.Delete(ctx, s.Hash); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Second)
			for {
				if _, err := a.Find(ctx, s.Hash); errors.Is(err, store.ErrNotFound) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("node 1 still serves a session logged out on node 2 after 1 s")
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// BenchmarkFind measures a validated Find on one node per backend, with a
// cache hit and with a cache miss (every Find goes to the backend), and,
// for reference, the in-process bus.
//
//	go test -run '^$' -bench BenchmarkFind -benchmem ./internal/integration/storecache/
func BenchmarkFind(b *testing.B) {
	for _, mk := range []func(testing.TB) backend{pgBackend, redisBackend} {
		be := mk(b)
		for _, mode := range []string{"hit", "miss"} {
			b.Run(be.name+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				st := be.open(b)
				opt := cache.Options{}
				if mode == "miss" {
					opt.TTL = time.Nanosecond
				}
				c := cache.New(st, opt)
				defer c.Close()
				s := session(b, "alice")
				if err := c.Create(ctx, s); err != nil {
					b.Fatal(err)
				}
				if mode == "hit" {
					waitReady(b, c, s) // the first counter check
				}
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := c.Find(ctx, s.Hash); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				stats := c.Stats()
				if mode == "hit" && stats.Misses > int64(b.N)/100+2 {
					b.Fatalf("hit benchmark missed %d of %d", stats.Misses, b.N)
				}
				if mode == "miss" && stats.Hits > 0 {
					b.Fatalf("miss benchmark hit %d times", stats.Hits)
				}
			})
		}
	}
}
