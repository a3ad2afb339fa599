package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound the proxy's memory of bindings, so that requests carrying
// cookies nobody issued (a flood of random session values) cost constant
// memory. Zero fields take the defaults; a bound above 1<<30 is taken as
// 1<<30.
type Limits struct {
	// MaxIssued bounds the bindings of sessions the app issued through the
	// proxy (a Set-Cookie of the session cookie) or that were made by Bind
	// without Presented (default 1<<20, about 65 MiB when full; 130 MiB if
	// each session has a device of its own).
	MaxIssued int
	// MaxPresented bounds the bindings of sessions a device presented
	// before the proxy saw the app issue them (default 1<<16, about 4 MiB
	// when full; 9 MiB if each came from a device of its own). Random cookie
	// values land here, and only here: they can push out other
	// presented-only bindings, never an issued one.
	MaxPresented int
	// Idle forgets a binding nobody has used for this long (default 14
	// days), to the second. Set it to the app's session lifetime: a session
	// idle longer than that is dead in the app anyway.
	Idle time.Duration
}

// Default limits.
const (
	DefaultMaxIssued    = 1 << 20
	DefaultMaxPresented = 1 << 16
	DefaultIdle         = 14 * 24 * time.Hour
)

// maxClass is the most entries a class can hold: entries are numbered
// with 32 bits.
const maxClass = 1 << 30

func (l Limits) withDefaults() Limits {
	if l.MaxIssued <= 0 {
		l.MaxIssued = DefaultMaxIssued
	}
	if l.MaxPresented <= 0 {
		l.MaxPresented = DefaultMaxPresented
	}
	l.MaxIssued, l.MaxPresented = min(l.MaxIssued, maxClass), min(l.MaxPresented, maxClass)
	if l.Idle <= 0 {
		l.Idle = DefaultIdle
	}
	return l
}

// The table keeps its bindings where the collector need not look: an
// entry holds no pointer and entries are allocated 4096 at a time, and the
// index from fingerprint to entry is an array of integers. A fingerprint
// (32 hex digits, store.Fingerprint) is kept as its 16 bytes; devices,
// principals and any key of another shape are interned (one copy each,
// counted, found through an index of the same kind). A binding costs about 65 bytes (48 for its entry, the rest
// its index slot), and a large table costs the collector nothing per
// cycle.

// key is a fingerprint as the table keeps it: the 16 bytes of a canonical
// one, or, with interned set, the index of the interned string in its
// first 4 bytes.
type key struct {
	b        [16]byte
	interned bool
}

// entry is one binding: 48 bytes.
type entry struct {
	fp         [16]byte
	created    int64  // unix nanoseconds, 0 if unknown
	epochFlags int64  // the binding's epoch << 2 | flagPresented | flagInterned
	used       uint32 // unix seconds of the last use; atomic
	// refreshed is when (unix seconds) the shared store's expiry was last
	// pushed back (RedisBindings only); atomic.
	refreshed uint32
	dev       uint32 // interned strings
	principal uint32 // of a free entry: the next free entry + 1
}

const (
	flagPresented = 1 << iota // the binding is presented-only
	flagInterned              // fp holds the index of an interned string
	flagBits      = iota
)

func (e *entry) epoch() int64    { return e.epochFlags >> flagBits }
func (e *entry) presented() bool { return e.epochFlags&flagPresented != 0 }
func (e *entry) key() key {
	return key{b: e.fp, interned: e.epochFlags&flagInterned != 0}
}

const chunkBits = 12 // entries are allocated 4096 at a time

// The two classes of bindings, each with its own bound and index.
const (
	issued = iota
	presentedOnly
)

// table holds bindings in two bounded classes: issued and presented-only.
// Get takes a read lock and marks the entry used; a full class makes room
// by evicting the least recently used of a small random sample (as Redis
// approximates LRU), expired entries first.
type table struct {
	lim  Limits
	now  func() time.Time
	seed maphash.Seed

	mu      sync.RWMutex
	classes [2]index
	chunks  [][]entry
	free    uint32 // the first free entry + 1, 0 if none
	inserts int

	// Interned strings: strs[0] is "".
	strs    []string
	refs    []int32
	strIdx  index // by the strings' hash
	strFree []uint32
}

func newTable(l Limits) *table {
	return &table{lim: l.withDefaults(), now: time.Now, seed: maphash.MakeSeed(),
		strs: []string{""}, refs: []int32{0}}
}

func (t *table) entry(i uint32) *entry { return &t.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

// tag is the half of k's hash the index keeps. The hash is seeded per
// table, so that nobody can choose cookie values that crowd one stretch of
// the index.
func (t *table) tag(k key) uint32 {
	h := maphash.Bytes(t.seed, k.b[:])
	if k.interned {
		h = ^h
	}
	return uint32(h >> 32)
}

// secs is a unix-nanosecond time in the entries' unix seconds.
func secs(ns int64) uint32 {
	return uint32(min(max(ns/int64(time.Second), 0), math.MaxUint32))
}

// hexKey reads a canonical fingerprint: 32 lower-case hex digits.
func hexKey(fp string) (k key, ok bool) {
	if len(fp) != 32 {
		return k, false
	}
	for i := 0; i < 16; i++ {
		hi, ok1 := unhex(fp[2*i])
		lo, ok2 := unhex(fp[2*i+1])
		if !ok1 || !ok2 {
			return key{}, false
		}
		k.b[i] = hi<<4 | lo
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
	if k.interned {
		return t.strs[binary.LittleEndian.Uint32(k.b[:])]
	}
	return hex.EncodeToString(k.b[:])
}

func internedKey(i uint32) (k key) {
	k.interned = true
	binary.LittleEndian.PutUint32(k.b[:], i)
	return k
}

// lookup returns fp's key if fp can be in the table. Caller holds mu.
func (t *table) lookup(fp string) (key, bool) {
	if k, ok := hexKey(fp); ok {
		return k, true
	}
	_, i, ok := t.findString(fp)
	if !ok {
		return key{}, false
	}
	return internedKey(i), true
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
	if _, i, ok := t.findString(s); ok {
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
	t.strIdx.insert(t.strTag(s), i)
	return i
}

func (t *table) strTag(s string) uint32 { return uint32(maphash.String(t.seed, s) >> 32) }

// findString returns the slot and index of interned string s.
func (t *table) findString(s string) (pos int, i uint32, ok bool) {
	return t.strIdx.find(t.strTag(s), func(i uint32) bool { return t.strs[i] == s })
}

// release drops a reference to interned string i. Caller holds mu for
// writing.
func (t *table) release(i uint32) {
	if i == 0 {
		return
	}
	if t.refs[i]--; t.refs[i] == 0 {
		if pos, _, ok := t.strIdx.find(t.strTag(t.strs[i]), func(j uint32) bool { return j == i }); ok {
			t.strIdx.remove(pos)
		}
		t.strs[i] = ""
		t.strFree = append(t.strFree, i)
	}
}

// newEntry stores bd under k in a free entry and returns its number.
// Caller holds mu for writing.
func (t *table) newEntry(k key, bd Binding, now uint32) uint32 {
	if t.free == 0 {
		base := uint32(len(t.chunks)) << chunkBits
		t.chunks = append(t.chunks, make([]entry, 1<<chunkBits))
		for j := uint32(1<<chunkBits - 1); ; j-- {
			t.entry(base + j).principal = t.free
			t.free = base + j + 1
			if j == 0 {
				break
			}
		}
	}
	i := t.free - 1
	e := t.entry(i)
	t.free = e.principal
	*e = entry{fp: k.b, epochFlags: bd.epoch << flagBits, used: now, refreshed: now,
		dev: t.intern(bd.Device), principal: t.intern(bd.Principal)}
	if !bd.Created.IsZero() {
		e.created = bd.Created.UnixNano()
	}
	if bd.Presented {
		e.epochFlags |= flagPresented
	}
	if k.interned {
		e.epochFlags |= flagInterned
	}
	return i
}

// hit is where find found a key: its class, its index slot and its entry.
type hit struct {
	class int
	pos   int
	e     uint32
}

// find returns fp's key and where it is. Caller holds mu.
func (t *table) find(fp string) (k key, h hit, ok bool) {
	k, ok = t.lookup(fp)
	if !ok {
		return k, h, false
	}
	h, ok = t.findKey(k)
	return k, h, ok
}

func (t *table) findKey(k key) (hit, bool) {
	tag := t.tag(k)
	for c := range t.classes {
		if pos, e, ok := t.probe(&t.classes[c], k, tag); ok {
			return hit{c, pos, e}, true
		}
	}
	return hit{}, false
}

// probe returns k's slot in x and its entry.
func (t *table) probe(x *index, k key, tag uint32) (pos int, e uint32, ok bool) {
	return x.find(tag, func(e uint32) bool { return t.entry(e).key() == k })
}

// drop removes the binding at h and frees its entry. Caller holds mu for
// writing.
func (t *table) drop(h hit) {
	t.classes[h.class].remove(h.pos)
	e := t.entry(h.e)
	t.release(e.dev)
	t.release(e.principal)
	if e.epochFlags&flagInterned != 0 {
		t.release(binary.LittleEndian.Uint32(e.fp[:]))
	}
	*e = entry{principal: t.free}
	t.free = h.e + 1
}

// binding returns entry e as a Binding. Caller holds mu.
func (t *table) binding(e *entry) Binding {
	bd := Binding{Device: t.strs[e.dev], Principal: t.strs[e.principal], epoch: e.epoch(), Presented: e.presented()}
	if e.created != 0 {
		bd.Created = time.Unix(0, e.created)
	}
	return bd
}

// idle reports whether a binding last used at used is expired at now.
func (t *table) idle(used, now uint32) bool {
	return int64(now)-int64(used) > int64(t.lim.Idle/time.Second)
}

// evictSample is how many entries a full class looks at to pick the one to
// evict.
const evictSample = 8

// get returns the live binding of fp, if any, and marks it used at now.
// With refreshEvery (RedisBindings), it also reports whether the shared
// store's expiry of fp is due to be pushed back (refreshEvery(presented)
// nanoseconds since the last push), and if so marks it pushed at now;
// prev is the mark before, for unrefresh.
func (t *table) get(fp string, now int64, refreshEvery func(presented bool) int64) (bd Binding, ok bool, prev uint32, due bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, h, ok := t.find(fp)
	if !ok {
		return Binding{}, false, 0, false
	}
	e := t.entry(h.e)
	s := secs(now)
	u := atomic.LoadUint32(&e.used)
	if t.idle(u, s) {
		return Binding{}, false, 0, false
	}
	// Marking the entry costs a shared cache line; a second's precision
	// is plenty for an idle expiry of hours.
	if s > u {
		atomic.StoreUint32(&e.used, s)
	}
	if refreshEvery != nil {
		r := atomic.LoadUint32(&e.refreshed)
		if (int64(s)-int64(r))*int64(time.Second) > refreshEvery(e.presented()) && atomic.CompareAndSwapUint32(&e.refreshed, r, s) {
			prev, due = r, true
		}
	}
	return t.binding(e), true, prev, due
}

// unrefresh puts back the mark get moved, when the push could not
// be queued.
func (t *table) unrefresh(fp string, prev uint32) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if _, h, ok := t.find(fp); ok {
		atomic.StoreUint32(&t.entry(h.e).refreshed, prev)
	}
}

// put stores bd for fp unless a live entry is there. It returns the binding
// in force and whether it is new. A presented entry bound again with
// !bd.Presented is promoted to the issued class (keeping its device: the
// first binding wins).
func (t *table) put(fp string, bd Binding, now int64) (cur Binding, fresh, promoted bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := secs(now)
	k, h, ok := t.find(fp)
	if ok {
		e := t.entry(h.e)
		if !t.idle(atomic.LoadUint32(&e.used), s) {
			atomic.StoreUint32(&e.used, s)
			if h.class == issued || bd.Presented {
				return t.binding(e), false, false
			}
			t.classes[presentedOnly].remove(h.pos)
			e.epochFlags &^= flagPresented
			t.makeRoom(issued, s)
			t.classes[issued].insert(t.tag(k), h.e)
			return t.binding(e), false, true
		}
		t.drop(h)
	}
	c := issued
	if bd.Presented {
		c = presentedOnly
	}
	t.makeRoom(c, s)
	i := t.insert(c, fp, bd, s)
	if t.inserts++; t.inserts%1024 == 0 {
		t.sweep(s)
	}
	return t.binding(t.entry(i)), true, false
}

// insert stores bd for fp, which the table does not hold, in class c and
// returns its entry. Caller holds mu for writing.
func (t *table) insert(c int, fp string, bd Binding, now uint32) uint32 {
	k := t.keyFor(fp)
	i := t.newEntry(k, bd, now)
	t.classes[c].insert(t.tag(k), i)
	return i
}

// load stores a binding read from a file at startup, if there is room.
func (t *table) load(fp string, bd Binding, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.classes[issued].n >= t.lim.MaxIssued {
		return
	}
	if _, h, ok := t.find(fp); ok {
		t.drop(h)
	}
	t.insert(issued, fp, bd, secs(now))
}

func (t *table) max(c int) int {
	if c == issued {
		return t.lim.MaxIssued
	}
	return t.lim.MaxPresented
}

// makeRoom evicts from class c until it holds fewer entries than its
// bound. Caller holds mu for writing.
func (t *table) makeRoom(c int, now uint32) {
	x := &t.classes[c]
	for x.n >= t.max(c) {
		var victim hit
		oldest := uint32(0)
		n := 0
		mask := len(x.slots) - 1
		for i := rand.IntN(len(x.slots)); ; i = (i + 1) & mask {
			s := x.slots[i]
			if s == 0 {
				continue
			}
			e := uint32(s) - 1
			u := atomic.LoadUint32(&t.entry(e).used)
			if n == 0 || u < oldest {
				victim, oldest = hit{c, i, e}, u
			}
			if n++; n == evictSample || t.idle(u, now) {
				break
			}
		}
		t.drop(victim)
	}
}

// sweep drops expired entries from a random stretch of each class, so that
// entries held by sessions nobody uses any more are free for new ones.
// Caller holds mu for writing.
func (t *table) sweep(now uint32) {
	var expired []key
	for c := range t.classes {
		x := &t.classes[c]
		if x.n == 0 {
			continue
		}
		mask := len(x.slots) - 1
		start := rand.IntN(len(x.slots))
		for j := 0; j < 256 && j <= mask; j++ {
			if s := x.slots[(start+j)&mask]; s != 0 {
				if e := t.entry(uint32(s) - 1); t.idle(atomic.LoadUint32(&e.used), now) {
					expired = append(expired, e.key())
				}
			}
		}
	}
	// Dropping moves other slots, so each is looked up again.
	for _, k := range expired {
		if h, ok := t.findKey(k); ok {
			t.drop(h)
		}
	}
}

// counts returns how many live entries each class holds.
func (t *table) counts() (issuedN, presentedN int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.classes[issued].n, t.classes[presentedOnly].n
}

// each calls f for every binding, under the read lock.
func (t *table) each(f func(fp string, bd Binding)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for c := range t.classes {
		for _, s := range t.classes[c].slots {
			if s != 0 {
				e := t.entry(uint32(s) - 1)
				f(t.fpString(e.key()), t.binding(e))
			}
		}
	}
}

// index maps keys to numbered entries by open addressing with linear
// probing: the table's bindings and its interned strings. A
// slot is 0 (empty) or tag<<32 | entry+1, where tag is half of the key's
// hash; a key's first slot is its tag's top bits, so growing reads no
// entry.
type index struct {
	slots []uint64
	shift uint // 32 - log2(len(slots))
	n     int
}

func (x *index) home(tag uint32) int { return int(tag >> x.shift) }

// find returns the slot and the entry under tag for which is reports
// true.
func (x *index) find(tag uint32, is func(e uint32) bool) (pos int, e uint32, ok bool) {
	if x.n == 0 {
		return 0, 0, false
	}
	mask := len(x.slots) - 1
	for i := x.home(tag); ; i = (i + 1) & mask {
		s := x.slots[i]
		if s == 0 {
			return 0, 0, false
		}
		if uint32(s>>32) == tag && is(uint32(s)-1) {
			return i, uint32(s) - 1, true
		}
	}
}

// insert adds entry e under tag; the key must not be there.
func (x *index) insert(tag uint32, e uint32) {
	if (x.n+1)*5 > len(x.slots)*4 { // at most 80% full
		x.grow()
	}
	x.place(uint64(tag)<<32 | uint64(e+1))
	x.n++
}

func (x *index) place(s uint64) {
	mask := len(x.slots) - 1
	i := x.home(uint32(s >> 32))
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = s
}

func (x *index) grow() {
	old := x.slots
	size := max(2*len(old), 16)
	x.slots = make([]uint64, size)
	x.shift = 32
	for ; size > 1; size >>= 1 {
		x.shift--
	}
	for _, s := range old {
		if s != 0 {
			x.place(s)
		}
	}
}

// remove empties slot pos, moving back the slots after it that would
// otherwise no longer be found (no tombstones).
func (x *index) remove(pos int) {
	mask := len(x.slots) - 1
	i := pos
	for j := (i + 1) & mask; x.slots[j] != 0; j = (j + 1) & mask {
		// The slot at j may move to i unless its home lies in (i, j].
		if h := x.home(uint32(x.slots[j] >> 32)); (j-h)&mask >= (j-i)&mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}
