package forensics

import (
	"hash/maphash"
	"math/rand/v2"
	"testing"
)

// TestFPTableMatchesMap drives the table and a Go map with the same random
// adds, lookups and sweeps (with a small key space, so that probe runs
// collide and wrap) and checks they agree after every step.
func TestFPTableMatchesMap(t *testing.T) {
	seed := maphash.MakeSeed()
	rng := rand.New(rand.NewPCG(1, 2))
	var tab fpTable[int]
	ref := map[fpKey]int{}
	key := func() fpKey {
		var k fpKey
		k[0], k[15] = byte(rng.IntN(64)), byte(rng.IntN(64))
		return k
	}
	for step := 0; step < 200000; step++ {
		k := key()
		h := keyHash(seed, k)
		if step%7 == 0 {
			// A weak hash for some keys: collisions on the tag bits.
			h &= 0xff
		}
		switch op := rng.IntN(100); {
		case op < 60:
			v := tab.get(k, keyHash(seed, k))
			if v == nil {
				v = tab.get(k, keyHash(seed, k)&0xff)
			}
			want, ok := ref[k]
			if (v != nil) != ok || (ok && *v != want) {
				t.Fatalf("step %d: get %v = %v, want %v %v", step, k, v, want, ok)
			}
			if v == nil {
				*tab.add(k, h) = step
				ref[k] = step
			} else {
				*v, ref[k] = step, step
			}
		case op < 61:
			cut := step - rng.IntN(3000)
			tab.sweep(func(v *int) bool { return *v < cut })
			for k, v := range ref {
				if v < cut {
					delete(ref, k)
				}
			}
		}
		if tab.n != len(ref) {
			t.Fatalf("step %d: %d entries, want %d", step, tab.n, len(ref))
		}
	}
	n := 0
	tab.all(func(k fpKey, v *int) {
		n++
		if ref[k] != *v {
			t.Fatalf("all: %v = %d, want %d", k, *v, ref[k])
		}
	})
	if n != len(ref) {
		t.Fatalf("all visited %d, want %d", n, len(ref))
	}
}
