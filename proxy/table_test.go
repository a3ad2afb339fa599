package proxy

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The table against a model of what it may hold: random binds, renewals,
// lookups and idle gaps on small bounds, over keys of both shapes (hex
// fingerprints and interned others). After every step each binding the
// table lists is one that was put under that key (never another key's),
// each is found by a lookup, the classes keep their bounds, and the
// interned strings are exactly those still referenced.
func TestTableAgainstAModel(t *testing.T) {
	type modelBinding struct {
		dev, principal string
		presented      bool
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const maxIssued, maxPresented = 40, 15
	tab := newTable(Limits{MaxIssued: maxIssued, MaxPresented: maxPresented, Idle: time.Hour})
	now := time.Unix(1e9, 0).UnixNano()
	model := map[string]modelBinding{}
	fps := make([]string, 200)
	for i := range fps {
		if i%5 == 0 {
			fps[i] = fmt.Sprintf("odd key %d", i) // not a canonical fingerprint: interned
		} else {
			fps[i] = fpOf(i)
		}
	}
	for step := range 20_000 {
		fp := fps[rng.IntN(len(fps))]
		switch op := rng.IntN(10); {
		case op < 6:
			bd := Binding{Device: fmt.Sprintf("dev%d", rng.IntN(6)), Principal: fmt.Sprintf("user%d", rng.IntN(4)),
				Presented: rng.IntN(2) == 0, Created: time.Unix(0, now)}
			cur, fresh, promoted := tab.put(fp, bd, now)
			m, had := model[fp]
			switch {
			case fresh:
				model[fp] = modelBinding{bd.Device, bd.Principal, bd.Presented}
			case !had:
				t.Fatalf("step %d: put %q found a binding never made: %+v", step, fp, cur)
			case promoted:
				if !m.presented || bd.Presented {
					t.Fatalf("step %d: promoted %q from %+v by %+v", step, fp, m, bd)
				}
				m.presented = false
				model[fp] = m
			}
			if got := model[fp]; cur.Device != got.dev || cur.Principal != got.principal || cur.Presented != got.presented {
				t.Fatalf("step %d: put %q answered %+v, want %+v", step, fp, cur, got)
			}
		case op < 9:
			bd, ok, _, _ := tab.get(fp, now, nil)
			if m, had := model[fp]; ok && (!had || bd.Device != m.dev || bd.Principal != m.principal || bd.Presented != m.presented) {
				t.Fatalf("step %d: get %q = %+v, model %+v (%v)", step, fp, bd, m, had)
			}
		default:
			now += int64(rng.IntN(40)) * int64(time.Minute)
		}

		listed := map[string]Binding{}
		tab.each(func(fp string, bd Binding) {
			if _, dup := listed[fp]; dup {
				t.Fatalf("step %d: %q listed twice", step, fp)
			}
			listed[fp] = bd
		})
		strs := map[string]bool{}
		issuedN, presentedN := 0, 0
		for fp, bd := range listed {
			m, had := model[fp]
			if !had || bd.Device != m.dev || bd.Principal != m.principal || bd.Presented != m.presented {
				t.Fatalf("step %d: the table holds %q as %+v, model %+v (%v)", step, fp, bd, m, had)
			}
			if _, h, ok := tab.find(fp); !ok || tab.binding(tab.entry(h.e)) != bd {
				t.Fatalf("step %d: %q is listed but not found", step, fp)
			}
			strs[bd.Device], strs[bd.Principal] = true, true
			if _, ok := hexKey(fp); !ok {
				strs[fp] = true
			}
			if bd.Presented {
				presentedN++
			} else {
				issuedN++
			}
		}
		if i, p := tab.counts(); i != issuedN || p != presentedN || i > maxIssued || p > maxPresented {
			t.Fatalf("step %d: counts %d, %d; listed %d, %d; bounds %d, %d", step, i, p, issuedN, presentedN, maxIssued, maxPresented)
		}
		if tab.strIdx.n != len(strs) {
			t.Fatalf("step %d: %d interned strings for %d in use", step, tab.strIdx.n, len(strs))
		}
		for fp := range model { // evicted or expired
			if _, ok := listed[fp]; !ok {
				delete(model, fp)
			}
		}
	}
}

// Removing a slot keeps every other key findable, however the keys crowd:
// here every tag has one of a few homes, next to each other and across
// the end of the array.
func TestIndexRemoveKeepsEveryKeyFindable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var x index
	x.grow() // 16 slots: shift 28, home is the tag's top 4 bits
	tags := []uint32{0xf<<28 | 1, 0xf<<28 | 2, 0x0<<28 | 3, 0x1<<28 | 4, 0xe<<28 | 5}
	find := func(tag, e uint32) int {
		want := uint64(tag)<<32 | uint64(e+1)
		for i, n := x.home(tag), 0; n < len(x.slots); i, n = (i+1)&(len(x.slots)-1), n+1 {
			switch x.slots[i] {
			case 0:
				return -1
			case want:
				return i
			}
		}
		return -1
	}
	in := map[uint32]uint32{} // entry -> tag
	for step := range 5_000 {
		if e := uint32(rng.IntN(12)); in[e] == 0 && len(in) < 12 {
			tag := tags[rng.IntN(len(tags))]
			x.insert(tag, e)
			in[e] = tag
		} else if tag, ok := in[e]; ok {
			pos := find(tag, e)
			if pos < 0 {
				t.Fatalf("step %d: entry %d not found before removing it", step, e)
			}
			x.remove(pos)
			delete(in, e)
		}
		if x.n != len(in) {
			t.Fatalf("step %d: n %d, want %d", step, x.n, len(in))
		}
		held := 0
		for _, s := range x.slots {
			if s != 0 {
				held++
				if in[uint32(s)-1] != uint32(s>>32) {
					t.Fatalf("step %d: slot %x holds a removed entry", step, s)
				}
			}
		}
		if held != len(in) {
			t.Fatalf("step %d: %d slots held for %d entries", step, held, len(in))
		}
		for e, tag := range in {
			if find(tag, e) < 0 {
				t.Fatalf("step %d: entry %d (tag %x) lost", step, e, tag)
			}
		}
	}
}
