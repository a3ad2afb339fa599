package demo

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"sync"
	"time"
)

// ThrottleOptions configure a Throttle. Zero fields take the defaults noted.
type ThrottleOptions struct {
	// Free is the number of failures a key may have before it is delayed.
	// Default 5.
	Free int
	// Base is the delay after the first failure past Free; each further
	// failure doubles it, up to Max. Default 1 s; Max default 5 min.
	Base, Max time.Duration
	// Window: a key whose last failure is this old, and whose delay has
	// passed, is forgotten. Default 15 min.
	Window time.Duration
	// MaxKeys bounds the keys remembered. When it is reached the key
	// whose last failure is the oldest is forgotten first. Default 10,000.
	MaxKeys int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Throttle counts failed attempts per key (an account name, a client
// address) and delays a key that fails too often, with a delay that
// doubles with every failure past the free ones (OWASP's Authentication
// Cheat Sheet: throttle rather than lock out for good). Every attempt is
// counted as a failure when it begins, so concurrent attempts cannot all
// slip past the count before the first one fails; a success undoes its own
// count (Succeed) or clears the key (Reset).
//
// Its memory is bounded: at most MaxKeys keys, least recently failed
// forgotten first. Forgetting is what a bound costs: whoever can make
// MaxKeys other keys fail after a key's last failure clears that key's
// delay. The demo pairs an account throttle with an address throttle, so
// doing that takes failures from many addresses. A Throttle is safe for
// concurrent use.
type Throttle struct {
	opt ThrottleOptions
	mu  sync.Mutex
	m   map[string]*list.Element
	lru *list.List // of *throttleEntry, most recently failed at the front
}

type throttleEntry struct {
	key   string
	fails int
	last  time.Time // last failure
	until time.Time // attempts are refused before this
}

// NewThrottle returns a Throttle.
func NewThrottle(opt ThrottleOptions) *Throttle {
	if opt.Free <= 0 {
		opt.Free = 5
	}
	if opt.Base <= 0 {
		opt.Base = time.Second
	}
	if opt.Max <= 0 {
		opt.Max = 5 * time.Minute
	}
	if opt.Max < opt.Base {
		opt.Max = opt.Base
	}
	if opt.Window <= 0 {
		opt.Window = 15 * time.Minute
	}
	if opt.MaxKeys <= 0 {
		opt.MaxKeys = 10_000
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Throttle{opt: opt, m: make(map[string]*list.Element), lru: list.New()}
}

// Begin starts an attempt for key. If the key is being delayed it returns
// how long the client must wait and records nothing; otherwise it counts
// the attempt as a failure (delaying the key if that takes it past Free)
// and returns 0.
func (t *Throttle) Begin(key string) time.Duration {
	now := t.opt.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.get(key, now)
	if e != nil && now.Before(e.until) {
		return e.until.Sub(now)
	}
	if e == nil {
		for t.lru.Len() >= t.opt.MaxKeys {
			t.drop(t.lru.Back())
		}
		e = &throttleEntry{key: key}
		t.m[key] = t.lru.PushFront(e)
	} else {
		t.lru.MoveToFront(t.m[key])
	}
	e.fails++
	e.last = now
	if over := e.fails - t.opt.Free; over > 0 {
		e.until = now.Add(t.delay(over))
	}
	return 0
}

// delay is Base·2^(over-1), at most Max.
func (t *Throttle) delay(over int) time.Duration {
	d := t.opt.Base
	for i := 1; i < over && d < t.opt.Max; i++ {
		d *= 2
	}
	return min(d, t.opt.Max)
}

// Succeed undoes the failure Begin counted for an attempt that succeeded;
// a delay already set stays.
func (t *Throttle) Succeed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.m[key]; ok {
		if e := el.Value.(*throttleEntry); e.fails > 0 {
			e.fails--
		}
	}
}

// Reset forgets key.
func (t *Throttle) Reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.m[key]; ok {
		t.drop(el)
	}
}

// Len returns the number of keys remembered.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

// get returns key's entry, forgetting it (and returning nil) when it has
// aged out. Called with t.mu held.
func (t *Throttle) get(key string, now time.Time) *throttleEntry {
	el, ok := t.m[key]
	if !ok {
		return nil
	}
	e := el.Value.(*throttleEntry)
	if now.Sub(e.last) >= t.opt.Window && !now.Before(e.until) {
		t.drop(el)
		return nil
	}
	return e
}

func (t *Throttle) drop(el *list.Element) {
	delete(t.m, el.Value.(*throttleEntry).key)
	t.lru.Remove(el)
}

// accountKey is the throttle key of a log-in name: the name itself when it
// is a valid one, else a digest, so that a long junk name costs no more
// memory than a short one.
func accountKey(name string) string {
	if ValidateName(name) == nil {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "#" + hex.EncodeToString(sum[:12])
}

// addressKey is the throttle key of a client address: an IPv4 address, or
// the /64 an IPv6 address is in (one host usually holds a whole /64).
func addressKey(ip netip.Addr, raw string) string {
	if !ip.IsValid() {
		return accountKey(raw)
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
