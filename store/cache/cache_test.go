package cache_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
	"github.com/cordon-sec/cordon/store/memstore"
	"github.com/cordon-sec/cordon/store/storetest"
)

// bus is a memstore that behaves like a shared backend with notifications:
// every revocation bumps a counter and is published to every subscriber,
// unless drop is set. down makes every call fail, as if the server were
// unreachable. blockFind, if set, is called inside Find after the read.
type bus struct {
	*memstore.Store
	mu        sync.Mutex
	seq       int64
	subs      map[int]func(cache.Event)
	next      int
	drop      atomic.Bool
	down      atomic.Bool
	blockFind atomic.Pointer[func()]
}

var errDown = errors.New("bus: server down")

func newBus() *bus {
	return &bus{Store: memstore.New(memstore.Options{}), subs: map[int]func(cache.Event){}}
}

func (b *bus) publish(ev cache.Event) {
	b.mu.Lock()
	b.seq++
	ev.Seq = b.seq
	ev.At = time.Now()
	var fns []func(cache.Event)
	if !b.drop.Load() {
		for _, fn := range b.subs {
			fns = append(fns, fn)
		}
	}
	b.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

func (b *bus) Subscribe(ctx context.Context, fn func(cache.Event)) error {
	b.mu.Lock()
	id := b.next
	b.next++
	b.subs[id] = fn
	b.mu.Unlock()
	fn(cache.Event{Kind: cache.KindFlush})
	<-ctx.Done()
	b.mu.Lock()
	delete(b.subs, id)
	b.mu.Unlock()
	return ctx.Err()
}

func (b *bus) RevocationSeq(ctx context.Context) (int64, error) {
	if b.down.Load() {
		return 0, errDown
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq, nil
}

func (b *bus) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	if b.down.Load() {
		return nil, errDown
	}
	s, err := b.Store.Find(ctx, h)
	if f := b.blockFind.Load(); f != nil {
		(*f)()
	}
	return s, err
}

func (b *bus) Delete(ctx context.Context, h store.Hash) error {
	if err := b.Store.Delete(ctx, h); err != nil {
		return err
	}
	b.publish(cache.Event{Kind: cache.KindSessions, Fingerprints: []string{h.Fingerprint()}})
	return nil
}

func (b *bus) RevokeFingerprints(ctx context.Context, fps []string) (int, error) {
	n, err := b.Store.RevokeFingerprints(ctx, fps)
	if err == nil {
		b.publish(cache.Event{Kind: cache.KindSessions, Fingerprints: fps})
	}
	return n, err
}

func (b *bus) RevokePrincipal(ctx context.Context, p string) error {
	err := b.Store.RevokePrincipal(ctx, p)
	if err == nil {
		b.publish(cache.Event{Kind: cache.KindPrincipal, Principal: p})
	}
	return err
}

func (b *bus) RevokeAll(ctx context.Context) error {
	err := b.Store.RevokeAll(ctx)
	if err == nil {
		b.publish(cache.Event{Kind: cache.KindAll})
	}
	return err
}

func newCache(t testing.TB, backend store.Full, opt cache.Options) *cache.Cache {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	c := cache.New(backend, opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// waitReady waits until c has checked the revocation counter once (before
// that it serves nothing from memory).
func waitReady(t testing.TB, c *cache.Cache, s *store.Session) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		before := c.Stats().Hits
		if _, err := c.Find(context.Background(), s.Hash); err != nil {
			t.Fatal(err)
		}
		if c.Stats().Hits > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("cache never served from memory")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func session(t testing.TB, principal string) *store.Session {
	if t != nil {
		t.Helper()
	}
	var b [32]byte
	rand.Read(b[:])
	now := time.Now()
	return &store.Session{
		Hash: store.HashToken(base64.RawURLEncoding.EncodeToString(b[:])), Principal: principal,
		Data: []byte("data"), Created: now, LastSeen: now,
		IdleDeadline: now.Add(time.Hour), Expires: now.Add(2 * time.Hour),
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Full {
		return newCache(t, newBus(), cache.Options{})
	}, storetest.WithRawBytes(func(t *testing.T, s store.Full) []byte {
		// The cache's storage is its map; the backend's is memstore's
		// (covered by memstore's own run of the suite), shown here through
		// List.
		c := s.(*cache.Cache)
		var buf bytes.Buffer
		for _, b := range c.Dump() {
			buf.Write(b)
			buf.WriteByte(0)
		}
		all, err := c.Backend().List(context.Background(), store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range all {
			buf.Write(x.Hash[:])
			buf.Write(x.Data)
		}
		return buf.Bytes()
	}), storetest.WithCount(func(t *testing.T, s store.Full) int {
		return s.(*cache.Cache).Backend().(*bus).Len()
	}))
}

func TestHitMissAndCopies(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, newBus(), cache.Options{})
	s := session(t, "alice")
	if err := c.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitReady(t, c, s)
	st := c.Stats()
	got, err := c.Find(ctx, s.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stats().Hits != st.Hits+1 || c.Stats().Misses != st.Misses {
		t.Fatalf("second find was not a hit: %+v then %+v", st, c.Stats())
	}
	got.Data[0] = 'X'
	again, _ := c.Find(ctx, s.Hash)
	if string(again.Data) != "data" {
		t.Fatalf("a caller's change reached the cache: %q", again.Data)
	}
	if _, err := c.Find(ctx, session(t, "bob").Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
}

// nodes returns n caches over one backend, each serving s from memory.
func nodes(t testing.TB, backend store.Full, n int, s *store.Session, opt cache.Options) []*cache.Cache {
	t.Helper()
	var out []*cache.Cache
	for i := 0; i < n; i++ {
		c := newCache(t, backend, opt)
		waitReady(t, c, s)
		out = append(out, c)
	}
	return out
}

func TestNotificationEvicts(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		revoke func(c *cache.Cache, s *store.Session) error
	}{
		{"fingerprint", func(c *cache.Cache, s *store.Session) error {
			_, err := c.RevokeFingerprints(ctx, []string{s.Fingerprint()})
			return err
		}},
		{"principal", func(c *cache.Cache, s *store.Session) error { return c.RevokePrincipal(ctx, s.Principal) }},
		{"all", func(c *cache.Cache, s *store.Session) error { return c.RevokeAll(ctx) }},
		{"logout", func(c *cache.Cache, s *store.Session) error { return c.Delete(ctx, s.Hash) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBus()
			s := session(t, "alice")
			if err := b.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			// A long bound: only the notification can evict in time.
			ns := nodes(t, b, 3, s, cache.Options{Bound: time.Hour, TTL: time.Hour})
			if err := tc.revoke(ns[0], s); err != nil {
				t.Fatal(err)
			}
			for i, c := range ns {
				if _, err := c.Find(ctx, s.Hash); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("node %d after the revocation: %v, want ErrNotFound", i+1, err)
				}
			}
			if got := ns[1].Stats().Notifications; got != 1 {
				t.Fatalf("node 2 applied %d notifications, want 1", got)
			}
		})
	}
}

func TestMissedNotificationWithinBound(t *testing.T) {
	ctx := context.Background()
	b := newBus()
	s := session(t, "alice")
	other := session(t, "bob")
	for _, x := range []*store.Session{s, other} {
		if err := b.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	const bound = 200 * time.Millisecond
	ns := nodes(t, b, 2, s, cache.Options{Bound: bound, TTL: time.Hour})
	b.drop.Store(true) // every notification is lost
	if _, err := ns[0].RevokeFingerprints(ctx, []string{s.Fingerprint()}); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	// By construction node 2 may serve the revoked session from memory
	// only until its last counter check is a bound old.
	time.Sleep(time.Until(revoked.Add(bound)))
	if _, err := ns[1].Find(ctx, s.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("node 2 still serves the session a bound after a revocation whose notification was lost: %v", err)
	}
	if ns[1].Stats().Flushes == 0 {
		t.Fatal("node 2 never dropped its cache")
	}
	if _, err := ns[1].Find(ctx, other.Hash); err != nil {
		t.Fatalf("unrevoked session lost: %v", err)
	}
}

func TestBackendDownFailsClosed(t *testing.T) {
	ctx := context.Background()
	b := newBus()
	s := session(t, "alice")
	if err := b.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	const bound = 200 * time.Millisecond
	c := nodes(t, b, 1, s, cache.Options{Bound: bound, TTL: time.Hour})[0]
	b.down.Store(true)
	time.Sleep(bound)
	if got, err := c.Find(ctx, s.Hash); !errors.Is(err, errDown) {
		t.Fatalf("with the backend down for a bound, Find = %v, %v; want the backend's error", got, err)
	}
	b.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Hits == 0 || !servedFromMemory(t, c, s) {
		if time.Now().After(deadline) {
			t.Fatal("cache did not recover after the backend came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func servedFromMemory(t *testing.T, c *cache.Cache, s *store.Session) bool {
	before := c.Stats().Hits
	if _, err := c.Find(context.Background(), s.Hash); err != nil {
		t.Fatal(err)
	}
	return c.Stats().Hits > before
}

func TestInflightFindNotCached(t *testing.T) {
	ctx := context.Background()
	b := newBus()
	s := session(t, "alice")
	if err := b.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	x := session(t, "x")
	if err := b.Create(ctx, x); err != nil {
		t.Fatal(err)
	}
	ns := nodes(t, b, 2, x, cache.Options{Bound: time.Hour, TTL: time.Hour})
	// Find on node 2 reads the live session, then stalls before returning
	// while node 1 revokes it.
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	block := func() { once.Do(func() { close(entered); <-release }) }
	b.blockFind.Store(&block)
	done := make(chan error)
	go func() {
		_, err := ns[1].Find(ctx, s.Hash)
		done <- err
	}()
	<-entered
	b.blockFind.Store(nil)
	if _, err := ns[0].RevokeFingerprints(ctx, []string{s.Fingerprint()}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the stalled find: %v (it read the session before the revocation)", err)
	}
	if _, err := ns[1].Find(ctx, s.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a find that raced with the revocation left the session cached: %v", err)
	}
}

func TestConflictEvicts(t *testing.T) {
	ctx := context.Background()
	b := newBus()
	s := session(t, "alice")
	if err := b.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	ns := nodes(t, b, 2, s, cache.Options{Bound: time.Hour, TTL: time.Hour})
	a, _ := ns[0].Find(ctx, s.Hash)
	a.Data = []byte("from node 1")
	if err := ns[0].Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, _ := ns[0].Find(ctx, s.Hash); string(got.Data) != "from node 1" || got.Version != 2 {
		t.Fatalf("node 1 serves %q v%d after its own update", got.Data, got.Version)
	}
	stale, _ := ns[1].Find(ctx, s.Hash) // node 2 still has version 1
	stale.Data = []byte("from node 2")
	if err := ns[1].Update(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if got, _ := ns[1].Find(ctx, s.Hash); string(got.Data) != "from node 1" || got.Version != 2 {
		t.Fatalf("node 2 after the conflict serves %q v%d, want node 1's v2", got.Data, got.Version)
	}
}

func TestTTLAndSizeWithoutNotifier(t *testing.T) {
	ctx := context.Background()
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	m := memstore.New(memstore.Options{})
	c := newCache(t, m, cache.Options{Size: 2, TTL: time.Hour, Bound: time.Second, Now: now})
	var ss []*store.Session
	for i := 0; i < 3; i++ {
		s := session(t, "alice")
		if err := m.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Find(ctx, s.Hash); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	if n := c.Stats().Entries; n != 2 {
		t.Fatalf("cache holds %d entries, want its size 2", n)
	}
	// Without notifications an entry lives at most Bound, whatever the TTL.
	last := ss[2]
	if !servedFromMemory(t, c, last) {
		t.Fatal("fresh entry not served from memory")
	}
	mu.Lock()
	clock = clock.Add(time.Second)
	mu.Unlock()
	if servedFromMemory(t, c, last) {
		t.Fatal("entry served from memory a bound after it was validated, with a backend that cannot notify")
	}
}

// TestConcurrentUse runs finds, updates, touches and revocations at once
// (for the race detector) and checks that no Find returns a session other
// than the one asked for.
func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	b := newBus()
	var ss []*store.Session
	for i := 0; i < 20; i++ {
		s := session(t, "user"+string(rune('a'+i%5)))
		if err := b.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	ns := nodes(t, b, 2, ss[0], cache.Options{Bound: 100 * time.Millisecond, Size: 8})
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ns[w%2]
			for i := 0; i < 300; i++ {
				s := ss[(i*7+w)%len(ss)]
				got, err := c.Find(ctx, s.Hash)
				if err == nil && (got.Hash != s.Hash || got.Principal != s.Principal) {
					wrong.Add(1)
				}
				switch i % 10 {
				case 3:
					if err == nil {
						got.Data = []byte("w")
						c.Update(ctx, got)
					}
				case 5:
					c.Touch(ctx, s.Hash, time.Now(), time.Now().Add(time.Hour), "192.0.2.9", "ua")
				case 9:
					if w == 0 && i%30 == 9 {
						c.RevokePrincipal(ctx, s.Principal)
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d finds returned another session", n)
	}
}
