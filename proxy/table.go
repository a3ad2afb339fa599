package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound the proxy's memory of bindings, so that requests carrying
// cookies nobody issued (a flood of random session values) cost constant
// memory. Zero fields take the defaults.
type Limits struct {
	// MaxIssued bounds the bindings of sessions the app issued through the
	// proxy (a Set-Cookie of the session cookie) or that were made by Bind
	// without Presented (default 1<<20, about 160 MiB when full).
	MaxIssued int
	// MaxPresented bounds the bindings of sessions a device presented
	// before the proxy saw the app issue them (default 1<<16, about 10 MiB
	// when full). Random cookie values land here, and only here: they can
	// push out other presented-only bindings, never an issued one.
	MaxPresented int
	// Idle forgets a binding nobody has used for this long (default 14
	// days). Set it to the app's session lifetime: a session idle longer
	// than that is dead in the app anyway.
	Idle time.Duration
}

// Default limits.
const (
	DefaultMaxIssued    = 1 << 20
	DefaultMaxPresented = 1 << 16
	DefaultIdle         = 14 * 24 * time.Hour
)

func (l Limits) withDefaults() Limits {
	if l.MaxIssued <= 0 {
		l.MaxIssued = DefaultMaxIssued
	}
	if l.MaxPresented <= 0 {
		l.MaxPresented = DefaultMaxPresented
	}
	if l.Idle <= 0 {
		l.Idle = DefaultIdle
	}
	return l
}

// entry is one binding in a table, with when it was last used: 64 bytes.
// Only used and refreshed change once the entry is in a table.
type entry struct {
	dev, principal string
	created        int64        // unix nanoseconds
	epochFlags     int64        // the binding's epoch << 1 | 1 if presented-only
	used           atomic.Int64 // unix nanoseconds of the last use
	// refreshed is when the shared store's expiry was last pushed back
	// (RedisBindings only).
	refreshed atomic.Int64
}

func newEntry(bd Binding, now int64) *entry {
	e := &entry{dev: bd.Device, principal: bd.Principal, epochFlags: bd.epoch << 1}
	if !bd.Created.IsZero() {
		e.created = bd.Created.UnixNano()
	}
	if bd.Presented {
		e.epochFlags |= 1
	}
	e.used.Store(now)
	e.refreshed.Store(now)
	return e
}

func (e *entry) epoch() int64    { return e.epochFlags >> 1 }
func (e *entry) presented() bool { return e.epochFlags&1 != 0 }

// binding returns the entry as a Binding.
func (e *entry) binding() Binding {
	bd := Binding{Device: e.dev, Principal: e.principal, epoch: e.epoch(), Presented: e.presented()}
	if e.created != 0 {
		bd.Created = time.Unix(0, e.created)
	}
	return bd
}

// table holds bindings in two bounded classes: issued and presented-only.
// Get takes a read lock and marks the entry used; a full class makes room
// by evicting the least recently used of a small random sample (as Redis
// approximates LRU), expired entries first.
type table struct {
	lim Limits
	now func() time.Time

	mu        sync.RWMutex
	issued    map[string]*entry
	presented map[string]*entry
	inserts   int
	evicted   atomic.Int64
}

func newTable(l Limits) *table {
	return &table{lim: l.withDefaults(), now: time.Now, issued: map[string]*entry{}, presented: map[string]*entry{}}
}

// evictSample is how many entries a full class looks at to pick the one to
// evict.
const evictSample = 8

// get returns the live entry of fp (nil if none or expired) and marks it
// used at now.
func (t *table) get(fp string, now int64) *entry {
	t.mu.RLock()
	e := t.issued[fp]
	if e == nil {
		e = t.presented[fp]
	}
	t.mu.RUnlock()
	if e == nil {
		return nil
	}
	if now-e.used.Load() > int64(t.lim.Idle) {
		return nil
	}
	// Marking the entry costs a shared cache line; a second's precision is
	// plenty for an idle expiry of hours.
	if now-e.used.Load() > int64(time.Second) {
		e.used.Store(now)
	}
	return e
}

// put stores bd for fp unless a live entry is there. It returns the entry in
// force and whether it is new. A presented entry bound again with
// !bd.Presented is promoted to the issued class (keeping its device: the
// first binding wins).
func (t *table) put(fp string, bd Binding, now int64) (e *entry, fresh, promoted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.issued[fp]; e != nil && now-e.used.Load() <= int64(t.lim.Idle) {
		e.used.Store(now)
		return e, false, false
	}
	if e := t.presented[fp]; e != nil && now-e.used.Load() <= int64(t.lim.Idle) {
		e.used.Store(now)
		if !bd.Presented {
			// A copy, not a change: readers hold e without the lock.
			p := newEntry(e.binding(), now)
			p.epochFlags &^= 1
			p.refreshed.Store(e.refreshed.Load())
			delete(t.presented, fp)
			t.makeRoom(t.issued, t.lim.MaxIssued, now)
			t.issued[fp] = p
			return p, false, true
		}
		return e, false, false
	}
	delete(t.issued, fp)
	delete(t.presented, fp)
	e = newEntry(bd, now)
	m, max := t.issued, t.lim.MaxIssued
	if bd.Presented {
		m, max = t.presented, t.lim.MaxPresented
	}
	t.makeRoom(m, max, now)
	m[fp] = e
	t.inserts++
	if t.inserts%1024 == 0 {
		t.sweep(now)
	}
	return e, true, false
}

// load stores a binding read from a file at startup, if there is room.
func (t *table) load(fp string, bd Binding, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.issued) >= t.lim.MaxIssued {
		return
	}
	t.issued[fp] = newEntry(bd, now)
}

// makeRoom evicts from m until it holds fewer than max entries. Caller
// holds mu.
func (t *table) makeRoom(m map[string]*entry, max int, now int64) {
	for len(m) >= max {
		var victim string
		oldest := int64(0)
		n := 0
		for fp, e := range m { // map iteration starts at a random place
			u := e.used.Load()
			if n == 0 || u < oldest {
				victim, oldest = fp, u
			}
			if n++; n == evictSample || now-u > int64(t.lim.Idle) {
				break
			}
		}
		delete(m, victim)
		t.evicted.Add(1)
	}
}

// sweep drops expired entries from a random stretch of each class, so that
// memory held by sessions nobody uses any more is given back over time.
// Caller holds mu.
func (t *table) sweep(now int64) {
	for _, m := range []map[string]*entry{t.issued, t.presented} {
		n := 0
		for fp, e := range m {
			if now-e.used.Load() > int64(t.lim.Idle) {
				delete(m, fp)
			}
			if n++; n == 256 {
				break
			}
		}
	}
}

// counts returns how many live entries each class holds.
func (t *table) counts() (issued, presented int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.issued), len(t.presented)
}

// each calls f for every entry, under the read lock.
func (t *table) each(f func(fp string, e *entry)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for fp, e := range t.issued {
		f(fp, e)
	}
	for fp, e := range t.presented {
		f(fp, e)
	}
}
