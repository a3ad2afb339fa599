package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cordon-sec/cordon/store"
)

// propagationBound is the promise: a revocation reaches every node within
// it, as for the session store.
const propagationBound = time.Second

// redisURL returns the scratch server's URL with a key prefix of its own
// for this test.
func redisURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("CORDON_TEST_REDIS")
	if base == "" {
		t.Fatal("CORDON_TEST_REDIS is not set: run the tests through ./test.sh, which starts a scratch Redis")
	}
	var b [6]byte
	rand.Read(b[:])
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "prefix=" + url.QueryEscape("test:"+t.Name()+":"+hex.EncodeToString(b[:])+":")
}

func openRedis(t *testing.T, u string, opt RedisOptions) *RedisBindings {
	t.Helper()
	opt.Logger = slog.New(slog.DiscardHandler)
	b, err := OpenRedisBindings(context.Background(), u, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// waitRevoked waits until b sees fp (a bound session) revoked, asking as
// the proxy does (the cache, then the store), and returns how long it took.
func waitRevoked(t *testing.T, b BindingStore, fp string, since time.Time) time.Duration {
	t.Helper()
	for {
		_, st := b.Get(fp)
		if st == Unbound {
			_, st, _ = b.Bind(context.Background(), fp, Binding{Device: "probe"})
		}
		if st == Revoked {
			return time.Since(since)
		}
		if time.Since(since) > 3*propagationBound {
			t.Fatalf("revocation not seen after %v", time.Since(since))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRedisTwoNodes runs two proxies over one Redis: a session bound via
// node 1 belongs to its device on node 2 as well, and is foreign there for
// every other device, both when presented and when an app hands it out.
func TestRedisTwoNodes(t *testing.T) {
	u := redisURL(t)
	n1 := newFixture(t, newGoApp(), Options{Bindings: openRedis(t, u, RedisOptions{}), StripForeign: true})
	n2 := newFixture(t, newGoApp(), Options{Bindings: openRedis(t, u, RedisOptions{}), StripForeign: true})

	alice := n1.browser() // one browser: its device cookie is the site's, whichever node set it
	n1.get(alice, "/login?u=alice")
	tok := n1.cookie(alice, "sid")
	fp := store.Fingerprint(tok)
	if _, st := n2.b.Get(fp); st != Unbound {
		t.Fatalf("node 2 knew the session before seeing it: %v", st)
	}
	// Alice's own session works through node 2 (no false positive).
	if _, body := n2.get(alice, "/seen"); body != tok {
		t.Fatalf("node 2 stripped alice's own session: %q", body)
	}
	if evs := n2.events("device_mismatch"); len(evs) != 0 {
		t.Fatalf("node 2 logged a mismatch for alice's own device: %+v", evs)
	}

	// A thief with another device presents it on node 2: foreign.
	thief := n2.browser()
	n2.get(thief, "/me")
	thief.Jar.SetCookies(mustURL(n2.srv.URL), []*http.Cookie{{Name: "sid", Value: tok, Path: "/"}})
	if _, body := n2.get(thief, "/seen"); body != "" {
		t.Fatalf("node 2 let a foreign device present alice's session")
	}
	evs := n2.events("device_mismatch")
	if len(evs) != 1 || evs[0].SidIn != fp {
		t.Fatalf("node 2 device_mismatch lines %+v", evs)
	}

	// Node 2's app hands alice's session to bob's device: blocked.
	bob := n2.browser()
	resp, _ := n2.get(bob, "/give?tok="+url.QueryEscape(tok))
	if resp.StatusCode != http.StatusInternalServerError || n2.cookie(bob, "sid") == tok {
		t.Fatalf("node 2 let alice's session out to bob: status %d", resp.StatusCode)
	}
	if evs := n2.events("guard_block"); len(evs) != 1 || evs[0].SidOut != fp || !strings.Contains(evs[0].Detail, "foreign_device") {
		t.Fatalf("node 2 guard_block lines %+v", evs)
	}
}

// TestRedisFirstBindingWins races binds of one session from two nodes for
// two devices: both nodes end up agreeing on one device.
func TestRedisFirstBindingWins(t *testing.T) {
	u := redisURL(t)
	a, b := openRedis(t, u, RedisOptions{}), openRedis(t, u, RedisOptions{})
	for i := range 20 {
		fp := store.Fingerprint("race-" + string(rune('a'+i)))
		done := make(chan Binding, 2)
		go func() {
			bd, _, err := a.Bind(context.Background(), fp, Binding{Device: "dev-a", Created: time.Now()})
			if err != nil {
				t.Error(err)
			}
			done <- bd
		}()
		go func() {
			bd, _, err := b.Bind(context.Background(), fp, Binding{Device: "dev-b", Created: time.Now()})
			if err != nil {
				t.Error(err)
			}
			done <- bd
		}()
		x, y := <-done, <-done
		if x.Device != y.Device || x.Device == "" {
			t.Fatalf("nodes disagree on the device of one session: %q vs %q", x.Device, y.Device)
		}
	}
}

// TestRedisRevocationPropagates revokes through node 1, through a separate
// writer (cordon revoke) and behind the nodes' backs (no pub/sub message,
// as when one is lost): node 2 strips the session within the bound every
// time. It logs the propagation delay's p50 and p99.
func TestRedisRevocationPropagates(t *testing.T) {
	u := redisURL(t)
	b1 := openRedis(t, u, RedisOptions{})
	b2 := openRedis(t, u, RedisOptions{})
	n2 := newFixture(t, newGoApp(), Options{Bindings: b2})

	bind := func(i int) string {
		fp := store.Fingerprint("prop-" + t.Name() + string(rune('A'+i%26)) + string(rune('a'+i/26)))
		if _, st, err := b1.Bind(context.Background(), fp, Binding{Device: "dev", Created: time.Now()}); err != nil || st != Bound {
			t.Fatalf("bind: %v %v", st, err)
		}
		// Node 2 learns the binding (as when the session passes through
		// it), so that it answers from its cache and what is measured is
		// the revocation's travel, not a read of Redis.
		if bd, st, err := b2.Bind(context.Background(), fp, Binding{Device: "other", Created: time.Now()}); err != nil || st != Bound || bd.Device != "dev" {
			t.Fatalf("node 2: %+v %v %v", bd, st, err)
		}
		return fp
	}
	const n = 100
	var viaNode, viaWriter []time.Duration
	for i := range n {
		fp := bind(i)
		start := time.Now()
		var err error
		if i%2 == 0 {
			err = b1.Revoke(context.Background(), []string{fp})
		} else {
			err = RevokeRedis(context.Background(), u, []string{fp}, false)
		}
		if err != nil {
			t.Fatal(err)
		}
		d := waitRevoked(t, b2, fp, start)
		if i%2 == 0 {
			viaNode = append(viaNode, d)
		} else {
			viaWriter = append(viaWriter, d)
		}
	}
	all := slices.Concat(viaNode, viaWriter)
	slices.Sort(all)
	p50, p99 := all[len(all)/2], all[len(all)*99/100]
	t.Logf("propagation over pub/sub, %d revocations (node and separate writer): p50 %v, p99 %v, max %v", len(all), p50, p99, all[len(all)-1])
	if all[len(all)-1] > propagationBound {
		t.Errorf("a revocation took %v to reach node 2, bound %v", all[len(all)-1], propagationBound)
	}

	// A lost message: revoke without publishing. The periodic read finds it.
	ro, prefix, err := parseRedisURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ro)
	defer rdb.Close()
	var missed []time.Duration
	for i := n; i < n+6; i++ {
		fp := bind(i)
		time.Sleep(time.Duration(i*53%250) * time.Millisecond) // land anywhere between two reads
		start := time.Now()
		if err := revokeRedis(context.Background(), rdb, prefix, []string{fp}, false, false); err != nil {
			t.Fatal(err)
		}
		missed = append(missed, waitRevoked(t, b2, fp, start))
	}
	slices.Sort(missed)
	t.Logf("propagation without a message (periodic read every 250ms): p50 %v, max %v", missed[len(missed)/2], missed[len(missed)-1])
	if missed[len(missed)-1] > propagationBound {
		t.Errorf("a revocation without a message took %v, bound %v", missed[len(missed)-1], propagationBound)
	}

	// Through the proxy: a session node 2 serves is stripped once revoked
	// elsewhere, and revoke-all from a separate writer ends the rest.
	alice, bob := n2.browser(), n2.browser()
	n2.get(alice, "/login?u=alice")
	n2.get(bob, "/login?u=bob")
	afp := store.Fingerprint(n2.cookie(alice, "sid"))
	if _, body := n2.get(alice, "/me"); body != "alice" {
		t.Fatalf("alice not signed in: %q", body)
	}
	start := time.Now()
	if err := RevokeRedis(context.Background(), u, []string{afp}, false); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b2, afp, start)
	if _, body := n2.get(alice, "/me"); body != "" {
		t.Fatalf("a revoked session still reached the app: %q", body)
	}
	if _, body := n2.get(bob, "/me"); body != "bob" {
		t.Fatalf("bob lost his session: %q", body)
	}
	bfp := store.Fingerprint(n2.cookie(bob, "sid"))
	start = time.Now()
	if err := RevokeRedis(context.Background(), u, nil, true); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b2, bfp, start)
	waitRevoked(t, b1, bfp, start)
	if _, body := n2.get(bob, "/me"); body != "" {
		t.Fatalf("revoke-all left bob signed in")
	}
	// A node started later learns the revocations from the log.
	b3 := openRedis(t, u, RedisOptions{})
	if _, st, _ := b3.Bind(context.Background(), afp, Binding{Device: "x"}); st != Revoked {
		t.Fatalf("a new node sees a revoked session as %v", st)
	}
	if _, st, _ := b3.Bind(context.Background(), bfp, Binding{Device: "x"}); st != Revoked {
		t.Fatalf("a new node sees a session revoked by revoke-all as %v", st)
	}
}

// TestRedisDownFailsClosed: when Redis cannot answer, an unknown session is
// neither let in nor let out.
func TestRedisDownFailsClosed(t *testing.T) {
	u := redisURL(t)
	rb := openRedis(t, u, RedisOptions{Timeout: 200 * time.Millisecond})
	f := newFixture(t, newGoApp(), Options{Bindings: rb})
	alice := f.browser()
	rb.rdb.Close() // the store goes away
	resp, _ := f.get(alice, "/login?u=alice")
	if resp.StatusCode != http.StatusInternalServerError || f.cookie(alice, "sid") != "" {
		t.Fatalf("an unverifiable session left: status %d", resp.StatusCode)
	}
	if evs := f.events("guard_block"); len(evs) != 1 || !strings.Contains(evs[0].Detail, "unverified") {
		t.Fatalf("guard_block lines %+v", evs)
	}
}

func TestRedisURL(t *testing.T) {
	_, p, err := parseRedisURL("redis://127.0.0.1:6379/0")
	if err != nil || p != DefaultRedisPrefix {
		t.Fatalf("prefix %q %v", p, err)
	}
	ro, p, err := parseRedisURL("redis://127.0.0.1:6379/2?prefix=site1:&dial_timeout=1s")
	if err != nil || p != "site1:" || ro.DB != 2 || ro.DialTimeout != time.Second {
		t.Fatalf("parsed %v %q %v", ro, p, err)
	}
	if _, _, err := parseRedisURL("http://x"); err == nil {
		t.Fatal("an http URL was accepted")
	}
	if _, err := OpenRedisBindings(context.Background(), "redis://127.0.0.1:1/0", RedisOptions{}); err == nil {
		t.Fatal("opening a Redis that is not there succeeded")
	}
}

// TestRedisLosesItsData: Redis restarts empty (or is flushed). The nodes
// notice, write back the revocations they know, and a revocation made
// afterwards still reaches them within the bound.
func TestRedisLosesItsData(t *testing.T) {
	u := redisURL(t)
	b1, b2 := openRedis(t, u, RedisOptions{}), openRedis(t, u, RedisOptions{})
	ctx := context.Background()
	fps := make([]string, 4)
	for i := range fps {
		fps[i] = store.Fingerprint("lost-" + string(rune('a'+i)))
		if _, st, err := b1.Bind(ctx, fps[i], Binding{Device: "d"}); err != nil || st != Bound {
			t.Fatalf("bind: %v %v", st, err)
		}
		if _, _, err := b2.Bind(ctx, fps[i], Binding{Device: "d"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b1.Revoke(ctx, fps[:1]); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b2, fps[0], time.Now())

	ro, prefix, err := parseRedisURL(u)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ro)
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %v %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	// One revocation lands in the new, empty log: at the very position
	// node 2 had read up to.
	start := time.Now()
	if err := RevokeRedis(ctx, u, fps[1:2], false); err != nil {
		t.Fatal(err)
	}
	if d := waitRevoked(t, b2, fps[1], start); d > propagationBound {
		t.Errorf("after the loss a revocation took %v", d)
	}
	// What was revoked before the loss is in Redis again: a node that
	// starts now refuses it.
	deadline := time.Now().Add(propagationBound)
	for {
		ok, err := rdb.SIsMember(ctx, prefix+"revoked", fps[0]).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the nodes did not write back the revocation Redis lost")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b3 := openRedis(t, u, RedisOptions{})
	if _, st, _ := b3.Bind(ctx, fps[0], Binding{Device: "x"}); st != Revoked {
		t.Fatalf("a new node sees a session revoked before the loss as %v", st)
	}
	// And revocations keep working afterwards.
	start = time.Now()
	if err := RevokeRedis(ctx, u, fps[2:3], false); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b1, fps[2], start)
	waitRevoked(t, b2, fps[2], start)
	if _, st := b2.Get(fps[3]); st != Bound {
		t.Fatalf("a session nobody revoked is %v", st)
	}
}

// Binding keys in Redis expire: an issued one Limits.Idle after its last
// use, a presented-only one within an hour; use pushes the expiry back,
// and a presenting node never shortens an issued key's expiry.
func TestRedisBindingsExpire(t *testing.T) {
	u := redisURL(t)
	b := openRedis(t, u, RedisOptions{Limits: Limits{Idle: 10 * time.Hour}})
	clk := &fakeClock{t: time.Now()}
	b.tab.now = clk.now
	ctx := context.Background()
	issued, presented := fpOf(1), fpOf(2)
	b.Bind(ctx, issued, Binding{Device: "a"})
	b.Bind(ctx, presented, Binding{Device: "a", Presented: true})
	pttl := func(fp string) time.Duration {
		d, err := b.rdb.PTTL(ctx, b.key(fp)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := pttl(issued); d <= 9*time.Hour || d > 10*time.Hour {
		t.Fatalf("issued key expires in %v, want about 10h", d)
	}
	if d := pttl(presented); d <= 0 || d > time.Hour {
		t.Fatalf("presented key expires in %v, want at most 1h", d)
	}
	// Another node that sees the issued session presented does not
	// shorten its expiry.
	b2 := openRedis(t, u, RedisOptions{Limits: Limits{Idle: 10 * time.Hour}})
	b2.Bind(ctx, issued, Binding{Device: "x", Presented: true})
	if d := pttl(issued); d <= 9*time.Hour {
		t.Fatalf("a presenting node shortened the issued key's expiry to %v", d)
	}
	// Shorten the key, as time would; a use after 1/16 of Idle pushes it
	// back.
	b.rdb.PExpire(ctx, b.key(issued), time.Minute)
	clk.add(time.Hour)
	if _, st := b.Get(issued); st != Bound {
		t.Fatal(st)
	}
	deadline := time.Now().Add(2 * time.Second)
	for pttl(issued) < 9*time.Hour {
		if time.Now().After(deadline) {
			t.Fatalf("the expiry was not pushed back on use: %v", pttl(issued))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
