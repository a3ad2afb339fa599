package demo

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestThrottleDelaysDoubleUpToMax(t *testing.T) {
	clk := newClock()
	th := NewThrottle(ThrottleOptions{Free: 3, Base: time.Second, Max: 4 * time.Second, Now: clk.Now})
	for i := 1; i <= 3; i++ {
		if d := th.Begin("k"); d != 0 {
			t.Fatalf("free attempt %d delayed %v", i, d)
		}
	}
	// The fourth failure is let through and sets the first delay.
	if d := th.Begin("k"); d != 0 {
		t.Fatalf("fourth attempt delayed %v", d)
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if d := th.Begin("k"); d != want {
			t.Fatalf("delayed %v, want %v", d, want)
		}
		clk.Add(want / 2)
		if d := th.Begin("k"); d != want/2 {
			t.Fatalf("half-way: delayed %v, want %v", d, want/2)
		}
		clk.Add(want / 2)
		if d := th.Begin("k"); d != 0 {
			t.Fatalf("after the delay: still delayed %v", d)
		}
	}
	// Other keys are not affected.
	if d := th.Begin("other"); d != 0 {
		t.Fatalf("another key delayed %v", d)
	}
	th.Reset("k")
	if d := th.Begin("k"); d != 0 {
		t.Fatalf("after Reset: delayed %v", d)
	}
}

func TestThrottleSucceedUndoesAndWindowForgets(t *testing.T) {
	clk := newClock()
	th := NewThrottle(ThrottleOptions{Free: 2, Window: time.Minute, Now: clk.Now})
	for range 10 {
		th.Begin("k")
		th.Succeed("k") // every attempt succeeded: no failure counted
	}
	th.Begin("k")
	th.Begin("k")
	if d := th.Begin("k"); d != 0 {
		t.Fatalf("third attempt after successes delayed %v", d)
	}
	if d := th.Begin("k"); d == 0 {
		t.Fatal("fourth failure not delayed")
	}
	clk.Add(time.Minute)
	if d := th.Begin("k"); d != 0 {
		t.Fatalf("a key a window old is still delayed %v", d)
	}
	if th.Len() != 1 {
		t.Fatalf("%d keys", th.Len())
	}
}

// The throttle's memory is bounded however many keys fail, and a key that
// is failing now survives the eviction of the ones that failed long ago.
func TestThrottleMemoryBounded(t *testing.T) {
	clk := newClock()
	th := NewThrottle(ThrottleOptions{Free: 1, MaxKeys: 100, Now: clk.Now})
	th.Begin("victim")
	th.Begin("victim")
	for i := range 100_000 {
		th.Begin("junk" + strconv.Itoa(i))
		if i%50 == 0 {
			th.Begin("victim") // still being attacked
		}
	}
	if n := th.Len(); n > 100 {
		t.Fatalf("%d keys remembered, cap 100", n)
	}
	if d := th.Begin("victim"); d == 0 {
		t.Fatal("the key under attack was forgotten")
	}
}

func TestThrottleKeys(t *testing.T) {
	if k := accountKey("alice"); k != "alice" {
		t.Fatal(k)
	}
	long := strings.Repeat("x", 10_000)
	if k := accountKey(long); len(k) > 64 || k == accountKey(long+"y") {
		t.Fatalf("junk name key %q", k)
	}
	a := addressKey(netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), "")
	b := addressKey(netip.MustParseAddr("2001:db8:1:2:ffff::1"), "")
	if a != b || a != "2001:db8:1:2::/64" {
		t.Fatalf("IPv6 keys %q %q", a, b)
	}
	if k := addressKey(netip.MustParseAddr("::ffff:192.0.2.7"), ""); k != "192.0.2.7" {
		t.Fatal(k)
	}
}

// throttledEnv is a test app whose throttles run on a fake clock.
func throttledEnv(t *testing.T, clk *fakeClock) *env {
	return newEnv(t, envOptions{edit: func(o *Options) {
		o.AccountThrottle = ThrottleOptions{Free: 5, Now: clk.Now}
		o.AddressThrottle = ThrottleOptions{Free: 20, Now: clk.Now}
	}})
}

func TestLoginThrottlePerAccount(t *testing.T) {
	clk := newClock()
	e := throttledEnv(t, clk)
	e.client().signup("alice")
	c := e.client()
	wrong := creds("alice", "a wrong password, long enough")
	for i := 1; i <= 6; i++ {
		if r := c.api("POST", "/api/login", wrong); r.code != http.StatusUnauthorized {
			t.Fatalf("wrong log-in %d: %d %s", i, r.code, r.body)
		}
	}
	r := c.api("POST", "/api/login", wrong)
	if r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") != "1" || !strings.Contains(r.body, `{"error":"too many failed log-ins`) {
		t.Fatalf("seventh wrong log-in: %d Retry-After %q %s", r.code, r.hdr.Get("Retry-After"), r.body)
	}
	// The right password waits too: waiting is the only way on.
	if r := c.api("POST", "/api/login", creds("alice", goodPassword)); r.code != http.StatusTooManyRequests {
		t.Fatalf("right password while delayed: %d", r.code)
	}
	// An unknown name is throttled exactly alike: no enumeration.
	for i := 1; i <= 6; i++ {
		c.api("POST", "/api/login", creds("nobody", "a wrong password, long enough"))
	}
	if r := c.api("POST", "/api/login", creds("nobody", "x")); r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") != "1" {
		t.Fatalf("unknown name: %d %q", r.code, r.hdr.Get("Retry-After"))
	}
	// The HTML form says it, as an alert.
	r = c.form("/login", url.Values{"user": {"alice"}, "password": {goodPassword}})
	if r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") == "" || !strings.Contains(r.body, `role="alert"`) || !strings.Contains(r.body, "try again in 1 s") {
		t.Fatalf("form while delayed: %d %s", r.code, r.body)
	}
	clk.Add(time.Second)
	if r := c.api("POST", "/api/login", creds("alice", goodPassword)); r.code != http.StatusOK {
		t.Fatalf("right password after the delay: %d %s", r.code, r.body)
	}
	// Success clears the account's count.
	for i := 1; i <= 6; i++ {
		if r := c.api("POST", "/api/login", wrong); r.code != http.StatusUnauthorized {
			t.Fatalf("wrong log-in %d after a success: %d", i, r.code)
		}
	}
}

func TestLoginThrottlePerAddress(t *testing.T) {
	clk := newClock()
	e := throttledEnv(t, clk)
	e.client().signup("alice")
	c := e.client()
	// 21 different accounts, 1 failure each: the address's free 20 and one.
	for i := 0; i <= 20; i++ {
		if r := c.api("POST", "/api/login", creds(fmt.Sprintf("user%d", i), "wrong")); r.code != http.StatusUnauthorized {
			t.Fatalf("log-in %d: %d", i, r.code)
		}
	}
	if r := c.api("POST", "/api/login", creds("alice", goodPassword)); r.code != http.StatusTooManyRequests {
		t.Fatalf("the address is not throttled: %d", r.code)
	}
	// A signed-in user from that address is still served.
	if r := c.api("GET", "/api/whoami", nil); r.code != 200 {
		t.Fatal(r.code)
	}
}

// Concurrent wrong log-ins cannot all slip past the count: each attempt is
// counted when it begins, so no more than the free attempts and one reach
// the password hash. With the throttle out of the way (the oracle) every
// attempt hashes.
func TestLoginThrottleConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		free    int
		maxHash int64
		minHash int64
	}{
		{"throttled", 5, 6, 6},
		{"oracle: no throttle", 1000, 50, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			e := newEnv(t, envOptions{edit: func(o *Options) {
				o.AccountThrottle = ThrottleOptions{Free: tc.free, Now: clk.Now}
				o.AddressThrottle = ThrottleOptions{Free: tc.free * 4, Now: clk.Now}
			}})
			e.client().signup("alice")
			var hashes atomic.Int64
			e.users.hashing = func(int) { hashes.Add(1) }
			var wg sync.WaitGroup
			var limited atomic.Int64
			for range 50 {
				wg.Go(func() {
					c := e.client()
					if r := c.api("POST", "/api/login", creds("alice", "a wrong password, long enough")); r.code == http.StatusTooManyRequests {
						limited.Add(1)
					}
				})
			}
			wg.Wait()
			if n := hashes.Load(); n < tc.minHash || n > tc.maxHash {
				t.Fatalf("%d password hashes for 50 concurrent wrong log-ins, want %d..%d", n, tc.minHash, tc.maxHash)
			}
			if limited.Load() != 50-hashes.Load() {
				t.Fatalf("%d answered 429, want %d", limited.Load(), 50-hashes.Load())
			}
		})
	}
}

// At most MaxHashes password hashes run at once, however many log-ins
// arrive; a caller that cannot get a slot in HashWait gets ErrBusy. With a
// high bound (the oracle) the same load runs them all at once.
func TestHashSlotsBoundConcurrency(t *testing.T) {
	for _, tc := range []struct {
		slots, want int
	}{{2, 2}, {32, 32}} {
		t.Run(strconv.Itoa(tc.slots), func(t *testing.T) {
			u, err := OpenUsers(filepath.Join(t.TempDir(), "u.db"), UsersOptions{Hash: testHash, MaxHashes: tc.slots})
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			var peak, entered atomic.Int64
			release := make(chan struct{})
			full := make(chan struct{})
			u.hashing = func(running int) {
				for {
					p := peak.Load()
					if int64(running) <= p || peak.CompareAndSwap(p, int64(running)) {
						break
					}
				}
				if entered.Add(1) == int64(tc.want) {
					close(full)
				}
				<-release
			}
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() { _ = u.Authenticate(context.Background(), "alice", goodPassword) })
			}
			<-full // tc.want hashes are running now
			time.Sleep(20 * time.Millisecond)
			got := peak.Load()
			close(release)
			wg.Wait()
			if got != int64(tc.want) {
				t.Fatalf("peak of %d hashes at once, want %d", got, tc.want)
			}
		})
	}
}

func TestHashSlotWaitIsBounded(t *testing.T) {
	u, err := OpenUsers(filepath.Join(t.TempDir(), "u.db"), UsersOptions{Hash: testHash, MaxHashes: 1, HashWait: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	release := make(chan struct{})
	inside := make(chan struct{})
	u.hashing = func(int) { close(inside); <-release }
	go func() { _ = u.Authenticate(context.Background(), "alice", goodPassword) }()
	<-inside
	if err := u.Authenticate(context.Background(), "alice", goodPassword); err != ErrBusy {
		t.Fatalf("with every slot taken: %v, want ErrBusy", err)
	}
	close(release)
}
