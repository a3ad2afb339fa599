// Package cache keeps validated sessions in process, in front of a shared
// store, so that most requests on a node need no round trip to the
// database, while revocation still reaches every node within a bound.
//
// A Cache wraps a store.Full and is itself a store.Full. Find serves a
// session from memory when it was validated by the backend less than TTL
// ago and has not passed its deadline; otherwise it asks the backend.
// Create, Update, Touch, Delete and the revocations go to the backend
// first; a failed or conflicting Update evicts.
//
// # Revocation bound
//
// When the backend implements Notifier (pgstore, redisstore), a revocation
// made on any node must stop every node's cache from serving the session
// within Bound (default 1 s). Two mechanisms give that:
//
//   - Notifications: the backend publishes each revocation (PostgreSQL
//     NOTIFY, Redis PUBLISH) in the transaction that revokes, and every
//     cache evicts what it names as soon as it arrives (typically within a
//     millisecond or two).
//   - The revocation counter: every revocation increments it in the same
//     transaction. Every Bound/2 the cache reads it; if it moved past
//     values the cache has not seen as notifications (a notification was
//     lost: a dropped connection, a restart), the cache drops everything.
//     The cache serves from memory only while its last successful check
//     started less than Bound ago, so even if the backend cannot be reached
//     at all the cache stops answering from memory after Bound: it fails
//     closed, and Find returns the backend's error.
//
// A Find that raced with an invalidation never puts its (possibly stale)
// result into the cache: every invalidation bumps a generation counter and
// a result is cached only if the generation did not move during the call.
//
// When the backend is not a Notifier, entries live at most Bound, which
// gives the same guarantee without notifications.
//
// What a cache may serve stale, within TTL, is a session's Data, Version
// and LastSeen as changed by another node: never its Principal (fixed at
// Create), and never past a revocation (within Bound) or its deadline. A
// stale Version makes the next Update fail with store.ErrConflict, which
// evicts, so writes are never lost.
//
// The package imports nothing outside the standard library and store.
package cache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-sec/cordon/store"
)

var _ store.Full = (*Cache)(nil)

// Observer receives the cache's measurements; the metrics package turns
// them into Prometheus series. Methods must be cheap and safe for
// concurrent use.
type Observer interface {
	// Hit records a Find served from memory.
	Hit()
	// Miss records a Find that went to the backend.
	Miss()
	// Revoked records a revocation notification applied by this cache and
	// how long after its publication it was applied (0 if unknown).
	Revoked(kind Kind, lag time.Duration)
	// Flushed records that the cache dropped everything because it could
	// not be sure it had seen every revocation.
	Flushed()
}

// Options configure a Cache. The zero value is usable.
type Options struct {
	// Size caps the number of cached sessions; default 10000.
	Size int
	// TTL caps how long a validated session is served from memory; default
	// 5 s. Without a Notifier backend it is further capped at Bound.
	TTL time.Duration
	// Bound is the longest a revocation may take to stop this cache from
	// serving the session; default 1 s.
	Bound time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives notes about lost notifications; default
	// slog.Default().
	Logger *slog.Logger
	// Observer, if set, receives hits, misses and revocation lags.
	Observer Observer
}

// Stats are the cache's counters since New.
type Stats struct {
	// Hits counts Finds answered from memory; Misses, Finds that went to
	// the backend.
	Hits, Misses int64
	// Notifications counts revocation notifications applied.
	Notifications int64
	// Flushes counts times everything was dropped (resubscription, a
	// revocation seen only by the counter, RevokeAll).
	Flushes int64
	// Entries is the number of cached sessions now.
	Entries int
}

type entry struct {
	sess  *store.Session
	until time.Time
}

type key [16]byte

// Cache is a store.Full that serves validated sessions from memory. Create
// it with New and stop it with Close.
type Cache struct {
	backend  store.Full
	notifier Notifier
	size     int
	ttl      time.Duration
	bound    time.Duration
	now      func() time.Time
	log      *slog.Logger
	obs      Observer

	mu         sync.Mutex
	entries    map[key]*entry
	gen        uint64         // bumped by every invalidation
	verifiedAt time.Time      // start of the last successful counter check
	knownSeq   int64          // counter value as of verifiedAt
	received   map[int64]bool // counter values seen as notifications after knownSeq
	seqValid   bool           // knownSeq has been read at least once

	hits, misses, notes, flushes atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a cache in front of backend. If backend implements Notifier
// it starts two goroutines (the subscription and the counter check) that
// run until Close.
func New(backend store.Full, opt Options) *Cache {
	if backend == nil {
		panic("cordon/cache: nil backend")
	}
	if opt.Size <= 0 {
		opt.Size = 10000
	}
	if opt.Bound <= 0 {
		opt.Bound = time.Second
	}
	if opt.TTL <= 0 {
		opt.TTL = 5 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	c := &Cache{
		backend:  backend,
		size:     opt.Size,
		ttl:      opt.TTL,
		bound:    opt.Bound,
		now:      opt.Now,
		log:      opt.Logger,
		obs:      opt.Observer,
		entries:  make(map[key]*entry),
		received: make(map[int64]bool),
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	if n, ok := backend.(Notifier); ok {
		c.notifier = n
		c.wg.Add(2)
		go func() {
			defer c.wg.Done()
			n.Subscribe(ctx, c.apply)
		}()
		go func() {
			defer c.wg.Done()
			c.pollLoop(ctx)
		}()
	} else if c.ttl > c.bound {
		c.ttl = c.bound
	}
	return c
}

// Close stops the cache's goroutines and empties it. It does not close the
// backend.
func (c *Cache) Close() error {
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	c.entries = make(map[key]*entry)
	c.gen++
	c.verifiedAt = time.Time{}
	c.mu.Unlock()
	return nil
}

// Backend returns the wrapped store.
func (c *Cache) Backend() store.Full { return c.backend }

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Notifications: c.notes.Load(), Flushes: c.flushes.Load(), Entries: n}
}

func keyOf(h store.Hash) key {
	var k key
	copy(k[:], h[:16])
	return k
}

// fresh reports whether the cache may serve from memory at now. c.mu must
// be held.
func (c *Cache) fresh(now time.Time) bool {
	if c.notifier == nil {
		return true
	}
	return !c.verifiedAt.IsZero() && now.Sub(c.verifiedAt) < c.bound
}

// Find returns the live session with hash h, from memory if it was
// validated recently enough, else from the backend.
func (c *Cache) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("cache: find %s: %w", h.Fingerprint(), err)
	}
	now := c.now()
	k := keyOf(h)
	c.mu.Lock()
	if e, ok := c.entries[k]; ok {
		if e.sess.Hash == h && now.Before(e.until) && c.fresh(now) && !e.sess.Expired(now) {
			s := e.sess.Clone()
			c.mu.Unlock()
			c.hits.Add(1)
			if c.obs != nil {
				c.obs.Hit()
			}
			return s, nil
		}
		delete(c.entries, k)
	}
	gen := c.gen
	c.mu.Unlock()
	c.misses.Add(1)
	if c.obs != nil {
		c.obs.Miss()
	}
	s, err := c.backend.Find(ctx, h)
	if err != nil {
		return nil, err
	}
	c.put(gen, now, s)
	return s, nil
}

// put caches a copy of s, read from the backend after now, unless an
// invalidation happened since gen was read.
func (c *Cache) put(gen uint64, now time.Time, s *store.Session) {
	until := now.Add(c.ttl)
	if d := s.Deadline(); d.Before(until) {
		until = d
	}
	k := keyOf(s.Hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || !c.fresh(now) {
		// Whatever is cached for k may be older than s: drop it.
		delete(c.entries, k)
		return
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.size {
		for old := range c.entries { // drop an arbitrary entry
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = &entry{sess: s.Clone(), until: until}
}

func (c *Cache) evict(h store.Hash) {
	c.mu.Lock()
	delete(c.entries, keyOf(h))
	c.gen++
	c.mu.Unlock()
}

// Create creates the session in the backend and caches it.
func (c *Cache) Create(ctx context.Context, s *store.Session) error {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	now := c.now()
	if err := c.backend.Create(ctx, s); err != nil {
		return err
	}
	c.put(gen, now, s)
	return nil
}

// Update updates the session in the backend. On success the cache holds
// the new version; on any error (a conflict included) the session is
// evicted.
func (c *Cache) Update(ctx context.Context, s *store.Session) error {
	c.mu.Lock()
	gen := c.gen
	var up *store.Session
	if e, ok := c.entries[keyOf(s.Hash)]; ok && e.sess.Hash == s.Hash {
		up = e.sess.Clone()
	}
	c.mu.Unlock()
	now := c.now()
	if err := c.backend.Update(ctx, s); err != nil {
		c.evict(s.Hash)
		return err
	}
	if up == nil {
		// A Find in flight may have read the version before this update.
		c.evict(s.Hash)
		return nil
	}
	// The stored session is the cached one with Update's fields replaced.
	up.Data = append([]byte(nil), s.Data...)
	up.IdleDeadline, up.LastSeen, up.LastIP, up.UserAgent, up.Version = s.IdleDeadline, s.LastSeen, s.LastIP, s.UserAgent, s.Version
	c.put(gen, now, up)
	// Finds in flight may have read the version before this update; the
	// bump keeps them from caching it.
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
	return nil
}

// Touch records a use in the backend and in the cached copy.
func (c *Cache) Touch(ctx context.Context, h store.Hash, seen, idleDeadline time.Time, ip, userAgent string) error {
	if err := c.backend.Touch(ctx, h, seen, idleDeadline, ip, userAgent); err != nil {
		c.evict(h)
		return err
	}
	c.mu.Lock()
	if e, ok := c.entries[keyOf(h)]; ok && e.sess.Hash == h {
		if idleDeadline.After(e.sess.Expires) {
			idleDeadline = e.sess.Expires
		}
		e.sess.LastSeen, e.sess.IdleDeadline, e.sess.LastIP, e.sess.UserAgent = seen, idleDeadline, ip, userAgent
	}
	c.mu.Unlock()
	return nil
}

// Delete evicts the session and deletes it from the backend.
func (c *Cache) Delete(ctx context.Context, h store.Hash) error {
	c.evict(h)
	return c.backend.Delete(ctx, h)
}

// RevokeFingerprints revokes in the backend, then evicts the sessions here
// (other nodes hear of it through the backend).
func (c *Cache) RevokeFingerprints(ctx context.Context, fps []string) (int, error) {
	n, err := c.backend.RevokeFingerprints(ctx, fps)
	c.evictFingerprints(fps)
	return n, err
}

// RevokePrincipal revokes in the backend, then evicts the principal's
// sessions here.
func (c *Cache) RevokePrincipal(ctx context.Context, principal string) error {
	err := c.backend.RevokePrincipal(ctx, principal)
	c.evictPrincipal(principal)
	return err
}

// RevokeAll revokes in the backend, then empties the cache.
func (c *Cache) RevokeAll(ctx context.Context) error {
	err := c.backend.RevokeAll(ctx)
	c.flush()
	return err
}

// List asks the backend.
func (c *Cache) List(ctx context.Context, opt store.ListOptions) ([]*store.Session, error) {
	return c.backend.List(ctx, opt)
}

// DeleteExpired asks the backend; the cache never serves expired sessions.
func (c *Cache) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	return c.backend.DeleteExpired(ctx, now)
}

func (c *Cache) evictFingerprints(fps []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, fp := range fps {
		var k key
		if !store.ValidFingerprint(fp) {
			continue
		}
		if _, err := hex.Decode(k[:], []byte(fp)); err == nil {
			delete(c.entries, k)
		}
	}
}

func (c *Cache) evictPrincipal(p string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.entries {
		if e.sess.Principal == p {
			delete(c.entries, k)
		}
	}
}

func (c *Cache) flush() {
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
}

func (c *Cache) flushLocked() {
	c.gen++
	clear(c.entries)
	c.flushes.Add(1)
	if c.obs != nil {
		c.obs.Flushed()
	}
}

// apply handles one notification from the backend.
func (c *Cache) apply(ev Event) {
	switch ev.Kind {
	case KindSessions:
		c.evictFingerprints(ev.Fingerprints)
	case KindPrincipal:
		c.evictPrincipal(ev.Principal)
	default: // KindAll, KindFlush
		c.flush()
	}
	if ev.Seq > 0 {
		c.mu.Lock()
		if !c.seqValid || ev.Seq > c.knownSeq {
			c.received[ev.Seq] = true
		}
		c.mu.Unlock()
	}
	if ev.Kind != KindFlush || ev.Seq > 0 {
		c.notes.Add(1)
		if c.obs != nil {
			var lag time.Duration
			if !ev.At.IsZero() {
				lag = max(time.Since(ev.At), 0)
			}
			c.obs.Revoked(ev.Kind, lag)
		}
	}
}

func (c *Cache) pollLoop(ctx context.Context) {
	t := time.NewTicker(c.bound / 2)
	defer t.Stop()
	for {
		c.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check reads the revocation counter and drops everything if it moved past
// values not seen as notifications.
func (c *Cache) check(ctx context.Context) {
	start := c.now()
	cctx, cancel := context.WithTimeout(ctx, c.bound)
	seq, err := c.notifier.RevocationSeq(cctx)
	cancel()
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			c.log.Warn("cache: cannot read the revocation counter; serving from the backend only", "err", err)
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	missed := !c.seqValid || seq < c.knownSeq
	if !missed {
		for s := c.knownSeq + 1; s <= seq; s++ {
			if !c.received[s] {
				missed = true
				break
			}
		}
	}
	if missed && c.seqValid {
		c.log.Info("cache: revocation seen by the counter before its notification; dropping the cache", "seq", seq)
	}
	if missed {
		c.flushLocked()
	}
	for s := range c.received {
		if s <= seq {
			delete(c.received, s)
		}
	}
	c.knownSeq, c.seqValid = seq, true
	if start.After(c.verifiedAt) {
		c.verifiedAt = start
	}
}
