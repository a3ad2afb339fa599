package forensics

import "hash/maphash"

// fpTable maps fingerprints to state of type V, for the rules' sessions
// and devices. Compared with a Go map of pointers it costs one cache miss
// less per lookup, which is what the rules pay for most with hundreds of
// thousands of live sessions: the index is a flat open-addressing table
// (linear probing) whose slots carry 32 bits of the key's hash beside the
// entry's number, so a lookup reads one index slot and then the one entry
// that holds both the key and its state. The hash comes from the parsing
// workers (keyHash), seeded per scan so that crafted fingerprints cannot
// pile up in one place. Entries live in fixed-size pages that never move,
// so pointers to them stay valid while the table grows.
type fpTable[V any] struct {
	slots []uint64 // hash<<32 | entry+1; 0 is empty
	mask  uint64
	pages [][]fpEntry[V]
	free  []uint32 // entries freed by del, reused first
	next  uint32   // entries handed out from the pages so far
	n     int
}

type fpEntry[V any] struct {
	key  fpKey
	used bool
	v    V
}

const fpPageBits = 10

// keyHash is the hash fpTable uses for k.
func keyHash(seed maphash.Seed, k fpKey) uint64 {
	return maphash.Bytes(seed, k[:])
}

func (t *fpTable[V]) entry(e uint32) *fpEntry[V] {
	return &t.pages[e>>fpPageBits][e&(1<<fpPageBits-1)]
}

// get returns the state of k (h is keyHash of k), or nil.
func (t *fpTable[V]) get(k fpKey, h uint64) *V {
	if t.n == 0 {
		return nil
	}
	tag := h & 0xffffffff
	for i := tag & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			return nil
		}
		if s>>32 == tag {
			if e := t.entry(uint32(s) - 1); e.key == k {
				return &e.v
			}
		}
	}
}

// add inserts k, which must not be in the table, with the zero state and
// returns it.
func (t *fpTable[V]) add(k fpKey, h uint64) *V {
	if (t.n+1)*2 > len(t.slots) {
		t.grow()
	}
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = t.next
		t.next++
		if int(id>>fpPageBits) == len(t.pages) {
			t.pages = append(t.pages, make([]fpEntry[V], 1<<fpPageBits))
		}
	}
	e := t.entry(id)
	*e = fpEntry[V]{key: k, used: true}
	tag := h & 0xffffffff
	i := tag & t.mask
	for t.slots[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = tag<<32 | uint64(id+1)
	t.n++
	return &e.v
}

func (t *fpTable[V]) grow() {
	size := max(len(t.slots)*2, 1024)
	old := t.slots
	t.slots = make([]uint64, size)
	t.mask = uint64(size - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := (s >> 32) & t.mask
		for t.slots[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = s
	}
}

// sweep deletes every entry for which drop returns true.
func (t *fpTable[V]) sweep(drop func(v *V) bool) {
	if t.n == 0 {
		return
	}
	// Clear the slots of dropped entries, then put the remaining slots of
	// each run back where a probe from their home finds them.
	for i, s := range t.slots {
		if s == 0 {
			continue
		}
		id := uint32(s) - 1
		e := t.entry(id)
		if drop(&e.v) {
			*e = fpEntry[V]{}
			t.free = append(t.free, id)
			t.slots[i] = 0
			t.n--
		}
	}
	t.rehash()
}

// rehash reinserts the slots in place after deletions left holes in
// probe runs. A run is a maximal sequence of full slots; starting right
// after an empty slot, each slot is moved to the first free place from
// its home, which is never after where it is.
func (t *fpTable[V]) rehash() {
	n := len(t.slots)
	start := -1
	for i := 0; i < n; i++ {
		if t.slots[i] == 0 {
			start = i
			break
		}
	}
	if start < 0 {
		return // cannot happen: the table is at most half full
	}
	for j := 1; j <= n; j++ {
		i := (start + j) & int(t.mask)
		s := t.slots[i]
		if s == 0 {
			continue
		}
		t.slots[i] = 0
		k := (s >> 32) & t.mask
		for t.slots[k] != 0 {
			k = (k + 1) & t.mask
		}
		t.slots[k] = s
	}
}

// all calls f for every entry.
func (t *fpTable[V]) all(f func(k fpKey, v *V)) {
	for _, s := range t.slots {
		if s != 0 {
			e := t.entry(uint32(s) - 1)
			f(e.key, &e.v)
		}
	}
}
