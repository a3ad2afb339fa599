package proxy

import (
	"encoding/binary"
	"encoding/hex"
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
	// without Presented (default 1<<20, about 100 MiB when full).
	MaxIssued int
	// MaxPresented bounds the bindings of sessions a device presented
	// before the proxy saw the app issue them (default 1<<16, about 13 MiB
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

// The table keeps its bindings in memory the collector need not scan: a
// slot holds no pointer, and the maps from fingerprint to slot hold none
// either. A fingerprint (32 hex digits, store.Fingerprint) is kept as its
// 16 bytes; devices, principals and any key of another shape are interned
// (one copy each, counted). A binding costs about 96 bytes, and a large
// table costs the collector nothing per cycle.

// key is a fingerprint as a map key: kindHex and its 16 bytes, or
// kindInterned and the index of the string.
type key [17]byte

const (
	kindHex      = 1
	kindInterned = 2
)

// slot is one binding: 40 bytes.
type slot struct {
	created    int64 // unix nanoseconds, 0 if unknown
	epochFlags int64 // the binding's epoch << 1 | 1 if presented-only
	used       int64 // unix nanoseconds of the last use; atomic
	// refreshed is when the shared store's expiry was last pushed back
	// (RedisBindings only); atomic.
	refreshed int64
	dev       uint32 // interned strings
	principal uint32
}

func (s *slot) epoch() int64    { return s.epochFlags >> 1 }
func (s *slot) presented() bool { return s.epochFlags&1 != 0 }

const chunkBits = 12 // slots are allocated 4096 at a time

// table holds bindings in two bounded classes: issued and presented-only.
// Get takes a read lock and marks the slot used; a full class makes room
// by evicting the least recently used of a small random sample (as Redis
// approximates LRU), expired entries first.
type table struct {
	lim Limits
	now func() time.Time

	mu        sync.RWMutex
	issued    map[key]uint32
	presented map[key]uint32
	chunks    [][]slot
	free      []uint32
	inserts   int
	evicted   atomic.Int64

	// Interned strings: strs[0] is "".
	strs    []string
	refs    []int32
	strIdx  map[string]uint32
	strFree []uint32
}

func newTable(l Limits) *table {
	return &table{lim: l.withDefaults(), now: time.Now, issued: map[key]uint32{}, presented: map[key]uint32{},
		strs: []string{""}, refs: []int32{0}, strIdx: map[string]uint32{}}
}

func (t *table) slot(i uint32) *slot { return &t.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

// hexKey reads a canonical fingerprint: 32 lower-case hex digits.
func hexKey(fp string) (k key, ok bool) {
	if len(fp) != 32 {
		return k, false
	}
	k[0] = kindHex
	for i := 0; i < 16; i++ {
		hi, ok1 := unhex(fp[2*i])
		lo, ok2 := unhex(fp[2*i+1])
		if !ok1 || !ok2 {
			return key{}, false
		}
		k[1+i] = hi<<4 | lo
	}
	return k, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func (t *table) fpString(k key) string {
	if k[0] == kindInterned {
		return t.strs[binary.LittleEndian.Uint32(k[1:])]
	}
	return hex.EncodeToString(k[1:])
}

// lookup returns fp's key if fp can be in the table. Caller holds mu.
func (t *table) lookup(fp string) (key, bool) {
	if k, ok := hexKey(fp); ok {
		return k, true
	}
	i, ok := t.strIdx[fp]
	if !ok {
		return key{}, false
	}
	return internedKey(i), true
}

func internedKey(i uint32) (k key) {
	k[0] = kindInterned
	binary.LittleEndian.PutUint32(k[1:], i)
	return k
}

// keyFor returns fp's key, interning fp if it needs it. Caller holds mu
// for writing; a key interned here is released by drop.
func (t *table) keyFor(fp string) key {
	if k, ok := hexKey(fp); ok {
		return k
	}
	return internedKey(t.intern(fp))
}

// intern returns the index of s, counting one more reference. Caller
// holds mu for writing.
func (t *table) intern(s string) uint32 {
	if s == "" {
		return 0
	}
	if i, ok := t.strIdx[s]; ok {
		t.refs[i]++
		return i
	}
	var i uint32
	if n := len(t.strFree); n > 0 {
		i = t.strFree[n-1]
		t.strFree = t.strFree[:n-1]
		t.strs[i], t.refs[i] = s, 1
	} else {
		i = uint32(len(t.strs))
		t.strs = append(t.strs, s)
		t.refs = append(t.refs, 1)
	}
	t.strIdx[s] = i
	return i
}

// release drops a reference to interned string i. Caller holds mu for
// writing.
func (t *table) release(i uint32) {
	if i == 0 {
		return
	}
	if t.refs[i]--; t.refs[i] == 0 {
		delete(t.strIdx, t.strs[i])
		t.strs[i] = ""
		t.strFree = append(t.strFree, i)
	}
}

// newSlot stores bd in a free slot and returns its index. Caller holds mu
// for writing.
func (t *table) newSlot(bd Binding, now int64) uint32 {
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		i = uint32(len(t.chunks)) << chunkBits
		t.chunks = append(t.chunks, make([]slot, 1<<chunkBits))
		for j := uint32(1<<chunkBits - 1); j > 0; j-- {
			t.free = append(t.free, i+j)
		}
	}
	s := t.slot(i)
	*s = slot{epochFlags: bd.epoch << 1, used: now, refreshed: now,
		dev: t.intern(bd.Device), principal: t.intern(bd.Principal)}
	if !bd.Created.IsZero() {
		s.created = bd.Created.UnixNano()
	}
	if bd.Presented {
		s.epochFlags |= 1
	}
	return i
}

// drop removes k from m and frees its slot. Caller holds mu for writing.
func (t *table) drop(m map[key]uint32, k key, i uint32) {
	delete(m, k)
	s := t.slot(i)
	t.release(s.dev)
	t.release(s.principal)
	if k[0] == kindInterned {
		t.release(binary.LittleEndian.Uint32(k[1:]))
	}
	*s = slot{}
	t.free = append(t.free, i)
}

// binding returns slot s as a Binding. Caller holds mu.
func (t *table) binding(s *slot) Binding {
	bd := Binding{Device: t.strs[s.dev], Principal: t.strs[s.principal], epoch: s.epoch(), Presented: s.presented()}
	if s.created != 0 {
		bd.Created = time.Unix(0, s.created)
	}
	return bd
}

// find returns the index of fp's slot, its class's map and whether that
// is the issued class. Caller holds mu.
func (t *table) find(fp string) (k key, i uint32, m map[key]uint32, issued, ok bool) {
	k, ok = t.lookup(fp)
	if !ok {
		return k, 0, nil, false, false
	}
	if i, ok = t.issued[k]; ok {
		return k, i, t.issued, true, true
	}
	if i, ok = t.presented[k]; ok {
		return k, i, t.presented, false, true
	}
	return k, 0, nil, false, false
}

func (t *table) live(s *slot, now int64) bool {
	return now-atomic.LoadInt64(&s.used) <= int64(t.lim.Idle)
}

// evictSample is how many entries a full class looks at to pick the one to
// evict.
const evictSample = 8

// get returns the live binding of fp, if any, and marks it used at now.
// With refreshEvery (RedisBindings), it also reports whether the shared
// store's expiry of fp is due to be pushed back (refreshEvery(presented)
// nanoseconds since the last push), and if so marks it pushed at now;
// prev is the mark before, for unrefresh.
func (t *table) get(fp string, now int64, refreshEvery func(presented bool) int64) (bd Binding, ok bool, prev int64, due bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, i, _, _, ok := t.find(fp)
	if !ok {
		return Binding{}, false, 0, false
	}
	s := t.slot(i)
	u := atomic.LoadInt64(&s.used)
	if now-u > int64(t.lim.Idle) {
		return Binding{}, false, 0, false
	}
	// Marking the slot costs a shared cache line; a second's precision is
	// plenty for an idle expiry of hours.
	if now-u > int64(time.Second) {
		atomic.StoreInt64(&s.used, now)
	}
	if refreshEvery != nil {
		r := atomic.LoadInt64(&s.refreshed)
		if now-r > refreshEvery(s.presented()) && atomic.CompareAndSwapInt64(&s.refreshed, r, now) {
			prev, due = r, true
		}
	}
	return t.binding(s), true, prev, due
}

// unrefresh puts back the mark get moved, when the push could not
// be queued.
func (t *table) unrefresh(fp string, prev int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if _, i, _, _, ok := t.find(fp); ok {
		atomic.StoreInt64(&t.slot(i).refreshed, prev)
	}
}

// put stores bd for fp unless a live entry is there. It returns the binding
// in force and whether it is new. A presented entry bound again with
// !bd.Presented is promoted to the issued class (keeping its device: the
// first binding wins).
func (t *table) put(fp string, bd Binding, now int64) (cur Binding, fresh, promoted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, i, m, issued, ok := t.find(fp)
	if ok {
		s := t.slot(i)
		if t.live(s, now) {
			atomic.StoreInt64(&s.used, now)
			if issued || bd.Presented {
				return t.binding(s), false, false
			}
			delete(t.presented, k)
			s.epochFlags &^= 1
			t.makeRoom(t.issued, t.lim.MaxIssued, now)
			t.issued[k] = i
			return t.binding(s), false, true
		}
		t.drop(m, k, i)
	}
	m, max := t.issued, t.lim.MaxIssued
	if bd.Presented {
		m, max = t.presented, t.lim.MaxPresented
	}
	t.makeRoom(m, max, now)
	k = t.keyFor(fp)
	i = t.newSlot(bd, now)
	m[k] = i
	t.inserts++
	if t.inserts%1024 == 0 {
		t.sweep(now)
	}
	return t.binding(t.slot(i)), true, false
}

// load stores a binding read from a file at startup, if there is room.
func (t *table) load(fp string, bd Binding, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.issued) >= t.lim.MaxIssued {
		return
	}
	if k, i, m, _, ok := t.find(fp); ok {
		t.drop(m, k, i)
	}
	t.issued[t.keyFor(fp)] = t.newSlot(bd, now)
}

// makeRoom evicts from m until it holds fewer than max entries. Caller
// holds mu.
func (t *table) makeRoom(m map[key]uint32, max int, now int64) {
	for len(m) >= max {
		var victim key
		var vi uint32
		oldest := int64(0)
		n := 0
		for k, i := range m { // map iteration starts at a random place
			u := atomic.LoadInt64(&t.slot(i).used)
			if n == 0 || u < oldest {
				victim, vi, oldest = k, i, u
			}
			if n++; n == evictSample || now-u > int64(t.lim.Idle) {
				break
			}
		}
		t.drop(m, victim, vi)
		t.evicted.Add(1)
	}
}

// sweep drops expired entries from a random stretch of each class, so that
// memory held by sessions nobody uses any more is given back over time.
// Caller holds mu.
func (t *table) sweep(now int64) {
	for _, m := range []map[key]uint32{t.issued, t.presented} {
		n := 0
		for k, i := range m {
			if !t.live(t.slot(i), now) {
				t.drop(m, k, i)
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

// each calls f for every binding, under the read lock.
func (t *table) each(f func(fp string, bd Binding)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, m := range []map[key]uint32{t.issued, t.presented} {
		for k, i := range m {
			f(t.fpString(k), t.binding(t.slot(i)))
		}
	}
}
