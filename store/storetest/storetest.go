// Package storetest is the conformance suite every cordon session store runs.
//
// A backend's own test calls Run with a constructor that returns a fresh,
// empty store for each subtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Full {
//			return memstore.New(memstore.Options{})
//		}, storetest.WithRawBytes(dump), storetest.WithCount(count))
//	}
//
// Optional capabilities: WithIndex shows the suite a backend's
// per-principal index, so that it checks no entry outlives its session;
// WithExpiryLag says the backend deletes dead sessions by itself; a store
// that implements store.CountingRevoker has its counts checked.
//
// The suite checks the whole store.Full contract: create, find, update with
// compare-and-swap on Version, touch, delete, expiry by idle and absolute
// deadline, sweeping, revocation of one session, one principal and everyone,
// listing (in one order for ties in every backend), malformed fingerprints
// (an error matching store.ErrBadFingerprint that revokes nothing),
// concurrent use of one session and of many, large values, context
// cancellation, deep copies, and that no raw session token ever reaches the
// store's storage.
//
// It uses the real clock with short deadlines, so stores under test must use
// time.Now (their default). Times may be stored with as little as
// millisecond precision; the suite compares them to within a millisecond.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// Option adjusts Run to what a backend can show the suite.
type Option func(*config)

type config struct {
	raw       func(t *testing.T, s store.Full) []byte
	count     func(t *testing.T, s store.Full) int
	index     func(t *testing.T, s store.Full, principal string) []string
	expiryLag time.Duration
}

// WithRawBytes gives the suite everything s holds in its storage as raw
// bytes (file contents, table dumps, a memory dump of its maps). The suite
// uses it to prove that no session token reaches storage, and checks that
// the dump does contain the session hashes it stored, so an empty dump fails.
// Run requires it: a backend that cannot show its storage cannot prove it
// keeps no tokens.
func WithRawBytes(raw func(t *testing.T, s store.Full) []byte) Option {
	return func(c *config) { c.raw = raw }
}

// WithCount gives the suite the number of sessions s physically holds, live
// or not yet swept. With it the suite checks that DeleteExpired really
// removes what it reports; without it, only that the count it reports is
// plausible (backends whose entries expire on their own may report fewer).
func WithCount(count func(t *testing.T, s store.Full) int) Option {
	return func(c *config) { c.count = count }
}

// WithIndex gives the suite the entries of s's per-principal index: the
// fingerprints it holds for principal, live or not, in any order (a Redis
// sorted set, a map of sets). With it the suite checks that sweeping leaves
// no entry behind for a session that is gone, however it went (swept,
// revoked, deleted, or expired by the backend itself), so that the index
// cannot grow without bound. Backends whose index is a database index
// maintained by the database itself have nothing to show.
func WithIndex(index func(t *testing.T, s store.Full, principal string) []string) Option {
	return func(c *config) { c.index = index }
}

// WithExpiryLag says that s deletes a dead session by itself within d of
// its deadline (Redis key TTLs). The index test then waits that long before
// sweeping, so that the sweep meets sessions that are already gone.
func WithExpiryLag(d time.Duration) Option {
	return func(c *config) { c.expiryLag = d }
}

// Run runs the conformance suite. newStore returns a fresh, empty store for
// each subtest; it should register its cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Full, opts ...Option) {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	s := &suite{newStore: newStore, cfg: c}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"CreateFind", s.testCreateFind},
		{"CreateStampsVersionAndEpochs", s.testCreateStamps},
		{"CreateExists", s.testCreateExists},
		{"CreateOverDeadSession", s.testCreateOverDead},
		{"FindUnknown", s.testFindUnknown},
		{"DeepCopies", s.testDeepCopies},
		{"UpdateCAS", s.testUpdateCAS},
		{"UpdateKeepsImmutableFields", s.testUpdateImmutable},
		{"UpdateMissing", s.testUpdateMissing},
		{"Touch", s.testTouch},
		{"TouchClampsToExpires", s.testTouchClamp},
		{"TouchMissing", s.testTouchMissing},
		{"Delete", s.testDelete},
		{"ExpiryIdle", s.testExpiryIdle},
		{"ExpiryAbsolute", s.testExpiryAbsolute},
		{"IdleRefreshByTouch", s.testIdleRefresh},
		{"DeleteExpired", s.testDeleteExpired},
		{"RevokeFingerprints", s.testRevokeFingerprints},
		{"RevokePrincipal", s.testRevokePrincipal},
		{"RevokePrincipalEmpty", s.testRevokePrincipalEmpty},
		{"RevokeAll", s.testRevokeAll},
		{"List", s.testList},
		{"ListLimit", s.testListLimit},
		{"ListTies", s.testListTies},
		{"CountingRevoker", s.testCountingRevoker},
		{"IndexSwept", s.testIndexSwept},
		{"ConcurrentOneSession", s.testConcurrentOne},
		{"ConcurrentManySessions", s.testConcurrentMany},
		{"LargeValue", s.testLargeValue},
		{"NoRawToken", s.testNoRawToken},
		{"ContextCanceled", s.testContextCanceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	newStore func(t *testing.T) store.Full
	cfg      config
}

// token returns a fresh session cookie value the way the session manager
// makes one: 32 bytes from crypto/rand, base64url without padding.
func token(t *testing.T) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("crypto/rand: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newSession returns an unsaved session for principal that is idle-live for
// idle and absolutely live for life, from now.
func newSession(t *testing.T, principal string, idle, life time.Duration) *store.Session {
	t.Helper()
	now := time.Now()
	return &store.Session{
		Hash:         store.HashToken(token(t)),
		Principal:    principal,
		Data:         []byte("data of " + principal),
		Created:      now,
		LastSeen:     now,
		IdleDeadline: now.Add(idle),
		Expires:      now.Add(life),
		LastIP:       "192.0.2.7",
		UserAgent:    "storetest/1.0 (ünïcode)",
	}
}

func live(t *testing.T, principal string) *store.Session {
	t.Helper()
	return newSession(t, principal, time.Hour, 12*time.Hour)
}

func mustCreate(t *testing.T, st store.Full, s *store.Session) {
	t.Helper()
	if err := st.Create(context.Background(), s); err != nil {
		t.Fatalf("Create(%s): %v", s.Fingerprint(), err)
	}
}

func mustFind(t *testing.T, st store.Full, h store.Hash) *store.Session {
	t.Helper()
	got, err := st.Find(context.Background(), h)
	if err != nil {
		t.Fatalf("Find(%s): %v", h.Fingerprint(), err)
	}
	if got == nil {
		t.Fatalf("Find(%s) returned nil session and nil error", h.Fingerprint())
	}
	return got
}

func wantNotFound(t *testing.T, st store.Full, h store.Hash, why string) {
	t.Helper()
	got, err := st.Find(context.Background(), h)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Find(%s) %s: got session %v, err %v; want ErrNotFound", h.Fingerprint(), why, got != nil, err)
	}
	if got != nil {
		t.Fatalf("Find(%s) %s returned a session along with ErrNotFound", h.Fingerprint(), why)
	}
}

func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return d < time.Millisecond && d > -time.Millisecond
}

// checkSame fails unless got has want's stored fields.
func checkSame(t *testing.T, got, want *store.Session) {
	t.Helper()
	if got.Hash != want.Hash {
		t.Errorf("Hash = %s, want %s", got.Hash.Fingerprint(), want.Hash.Fingerprint())
	}
	if got.Principal != want.Principal {
		t.Errorf("Principal = %q, want %q", got.Principal, want.Principal)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("Data = %d bytes %.40q, want %d bytes %.40q", len(got.Data), got.Data, len(want.Data), want.Data)
	}
	if got.Version != want.Version {
		t.Errorf("Version = %d, want %d", got.Version, want.Version)
	}
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{
		{"Created", got.Created, want.Created},
		{"LastSeen", got.LastSeen, want.LastSeen},
		{"IdleDeadline", got.IdleDeadline, want.IdleDeadline},
		{"Expires", got.Expires, want.Expires},
	} {
		if !sameTime(f.got, f.want) {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	if got.LastIP != want.LastIP {
		t.Errorf("LastIP = %q, want %q", got.LastIP, want.LastIP)
	}
	if got.UserAgent != want.UserAgent {
		t.Errorf("UserAgent = %q, want %q", got.UserAgent, want.UserAgent)
	}
	if got.GlobalEpoch != want.GlobalEpoch || got.PrincipalEpoch != want.PrincipalEpoch {
		t.Errorf("epochs = (%d, %d), want (%d, %d)", got.GlobalEpoch, got.PrincipalEpoch, want.GlobalEpoch, want.PrincipalEpoch)
	}
}

func (su *suite) testCreateFind(t *testing.T) {
	st := su.newStore(t)
	a := live(t, "alice")
	mustCreate(t, st, a)
	checkSame(t, mustFind(t, st, a.Hash), a)

	anon := live(t, "")
	anon.Data = nil
	anon.LastIP = ""
	anon.UserAgent = ""
	mustCreate(t, st, anon)
	checkSame(t, mustFind(t, st, anon.Hash), anon)
	// The first session is untouched by the second.
	checkSame(t, mustFind(t, st, a.Hash), a)
}

func (su *suite) testCreateStamps(t *testing.T) {
	st := su.newStore(t)
	a := live(t, "alice")
	a.Version = 41
	a.GlobalEpoch, a.PrincipalEpoch = -5, 99
	mustCreate(t, st, a)
	if a.Version != 1 {
		t.Errorf("after Create, s.Version = %d, want 1", a.Version)
	}
	before := *a
	ctx := context.Background()
	if err := st.RevokePrincipal(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAll(ctx); err != nil {
		t.Fatal(err)
	}
	b := live(t, "alice")
	mustCreate(t, st, b)
	if b.GlobalEpoch <= before.GlobalEpoch || b.PrincipalEpoch <= before.PrincipalEpoch {
		t.Errorf("epochs after revoking = (%d, %d), want both above (%d, %d)",
			b.GlobalEpoch, b.PrincipalEpoch, before.GlobalEpoch, before.PrincipalEpoch)
	}
	checkSame(t, mustFind(t, st, b.Hash), b)
}

func (su *suite) testCreateExists(t *testing.T) {
	st := su.newStore(t)
	a := live(t, "alice")
	mustCreate(t, st, a)
	dup := live(t, "mallory")
	dup.Hash = a.Hash
	if err := st.Create(context.Background(), dup); !errors.Is(err, store.ErrExists) {
		t.Fatalf("Create with a taken hash: %v, want ErrExists", err)
	}
	got := mustFind(t, st, a.Hash)
	if got.Principal != "alice" {
		t.Fatalf("failed Create changed the stored session's principal to %q", got.Principal)
	}
}

// A hash whose session has expired or been revoked is absent, so Create may
// use it again.
func (su *suite) testCreateOverDead(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	old := newSession(t, "alice", -time.Second, time.Hour)
	mustCreate(t, st, old)
	wantNotFound(t, st, old.Hash, "of an idle-expired session")
	fresh := live(t, "bob")
	fresh.Hash = old.Hash
	mustCreate(t, st, fresh)
	checkSame(t, mustFind(t, st, fresh.Hash), fresh)

	rev := live(t, "carol")
	mustCreate(t, st, rev)
	if err := st.RevokePrincipal(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	again := live(t, "carol")
	again.Hash = rev.Hash
	mustCreate(t, st, again)
	checkSame(t, mustFind(t, st, again.Hash), again)
}

func (su *suite) testFindUnknown(t *testing.T) {
	st := su.newStore(t)
	mustCreate(t, st, live(t, "alice"))
	wantNotFound(t, st, store.HashToken(token(t)), "of a never-created hash")
	var zero store.Hash
	wantNotFound(t, st, zero, "of the zero hash")
}

func (su *suite) testDeepCopies(t *testing.T) {
	st := su.newStore(t)
	a := live(t, "alice")
	a.Data = []byte("original")
	want := a.Clone()
	mustCreate(t, st, a)
	want.Version, want.GlobalEpoch, want.PrincipalEpoch = a.Version, a.GlobalEpoch, a.PrincipalEpoch
	a.Data[0] = 'X'
	a.Principal = "mallory"
	checkSame(t, mustFind(t, st, a.Hash), want)

	got := mustFind(t, st, a.Hash)
	got.Data[0] = 'Y'
	got.Principal = "mallory"
	got.Expires = got.Expires.Add(100 * time.Hour)
	checkSame(t, mustFind(t, st, a.Hash), want)

	up := mustFind(t, st, a.Hash)
	up.Data = []byte("updated")
	if err := st.Update(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	up.Data[0] = 'Z'
	if got := mustFind(t, st, a.Hash); string(got.Data) != "updated" {
		t.Fatalf("mutating the slice passed to Update changed the stored Data to %q", got.Data)
	}

	if lst, ok := st.(store.Lister); ok {
		l, err := lst.List(context.Background(), store.ListOptions{Principal: "alice"})
		if err != nil || len(l) != 1 {
			t.Fatalf("List: %d sessions, %v", len(l), err)
		}
		l[0].Data[0] = 'Q'
		if got := mustFind(t, st, a.Hash); string(got.Data) != "updated" {
			t.Fatalf("mutating a listed session changed the stored Data to %q", got.Data)
		}
	}
}

func (su *suite) testUpdateCAS(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	a := live(t, "alice")
	mustCreate(t, st, a)

	first := mustFind(t, st, a.Hash)
	stale := mustFind(t, st, a.Hash)
	first.Data = []byte("first")
	first.LastSeen = time.Now().Add(time.Minute)
	first.IdleDeadline = time.Now().Add(2 * time.Hour)
	first.LastIP = "198.51.100.1"
	first.UserAgent = "other/2"
	if err := st.Update(ctx, first); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if first.Version != 2 {
		t.Fatalf("after Update, s.Version = %d, want 2", first.Version)
	}
	checkSame(t, mustFind(t, st, a.Hash), first)

	stale.Data = []byte("stale")
	if err := st.Update(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update with stale version: %v, want ErrConflict", err)
	}
	if stale.Version != 1 {
		t.Errorf("failed Update changed s.Version to %d", stale.Version)
	}
	checkSame(t, mustFind(t, st, a.Hash), first)

	first.Data = []byte("second")
	if err := st.Update(ctx, first); err != nil {
		t.Fatalf("second Update: %v", err)
	}
	if got := mustFind(t, st, a.Hash); got.Version != 3 || string(got.Data) != "second" {
		t.Fatalf("after two updates: version %d data %q, want 3 %q", got.Version, got.Data, "second")
	}
	// A version from the future conflicts too.
	first.Version = 10
	if err := st.Update(ctx, first); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update with future version: %v, want ErrConflict", err)
	}
}

func (su *suite) testUpdateImmutable(t *testing.T) {
	st := su.newStore(t)
	a := live(t, "alice")
	mustCreate(t, st, a)
	want := a.Clone()
	s := mustFind(t, st, a.Hash)
	s.Principal = "mallory"
	s.Created = s.Created.Add(-time.Hour)
	s.Expires = s.Expires.Add(100 * time.Hour)
	s.GlobalEpoch += 7
	s.PrincipalEpoch += 7
	if err := st.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	want.Version = 2
	checkSame(t, mustFind(t, st, a.Hash), want)
}

func (su *suite) testUpdateMissing(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	ghost := live(t, "alice")
	ghost.Version = 1
	if err := st.Update(ctx, ghost); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of a never-created session: %v, want ErrNotFound", err)
	}
	wantNotFound(t, st, ghost.Hash, "after Update of a never-created session")

	exp := newSession(t, "alice", -time.Second, time.Hour)
	mustCreate(t, st, exp)
	exp.IdleDeadline = time.Now().Add(time.Hour)
	if err := st.Update(ctx, exp); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of an expired session: %v, want ErrNotFound (Update must not revive it)", err)
	}
	wantNotFound(t, st, exp.Hash, "after Update of an expired session")
}

func (su *suite) testTouch(t *testing.T) {
	st := su.newStore(t)
	a := live(t, "alice")
	mustCreate(t, st, a)
	seen := time.Now().Add(time.Second)
	idle := time.Now().Add(3 * time.Hour)
	if err := st.Touch(context.Background(), a.Hash, seen, idle, "203.0.113.9", "touched/1"); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	want := a.Clone()
	want.LastSeen, want.IdleDeadline, want.LastIP, want.UserAgent = seen, idle, "203.0.113.9", "touched/1"
	checkSame(t, mustFind(t, st, a.Hash), want) // Version still 1, data unchanged
}

func (su *suite) testTouchClamp(t *testing.T) {
	st := su.newStore(t)
	a := newSession(t, "alice", time.Minute, time.Hour)
	mustCreate(t, st, a)
	if err := st.Touch(context.Background(), a.Hash, time.Now(), a.Expires.Add(24*time.Hour), "", ""); err != nil {
		t.Fatal(err)
	}
	got := mustFind(t, st, a.Hash)
	if !sameTime(got.IdleDeadline, a.Expires) {
		t.Fatalf("Touch past Expires set IdleDeadline %v, want it clamped to Expires %v", got.IdleDeadline, a.Expires)
	}
}

func (su *suite) testTouchMissing(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	h := store.HashToken(token(t))
	if err := st.Touch(ctx, h, time.Now(), time.Now().Add(time.Hour), "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch of a never-created session: %v, want ErrNotFound", err)
	}
	exp := newSession(t, "alice", -time.Second, time.Hour)
	mustCreate(t, st, exp)
	if err := st.Touch(ctx, exp.Hash, time.Now(), time.Now().Add(time.Hour), "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch of an expired session: %v, want ErrNotFound (Touch must not revive it)", err)
	}
	wantNotFound(t, st, exp.Hash, "after Touch of an expired session")
}

func (su *suite) testDelete(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	a, b := live(t, "alice"), live(t, "alice")
	mustCreate(t, st, a)
	mustCreate(t, st, b)
	if err := st.Delete(ctx, a.Hash); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, st, a.Hash, "after Delete")
	mustFind(t, st, b.Hash)
	if err := st.Delete(ctx, a.Hash); err != nil {
		t.Fatalf("Delete of a deleted session: %v, want nil", err)
	}
	if err := st.Delete(ctx, store.HashToken(token(t))); err != nil {
		t.Fatalf("Delete of a never-created session: %v, want nil", err)
	}
	if err := st.Update(ctx, a); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update after Delete: %v, want ErrNotFound", err)
	}
}

// waitPast sleeps until d has passed on the wall clock.
func waitPast(d time.Time) {
	time.Sleep(time.Until(d) + 20*time.Millisecond)
}

func (su *suite) testExpiryIdle(t *testing.T) {
	t.Parallel()
	st := su.newStore(t)
	a := newSession(t, "alice", 200*time.Millisecond, time.Hour)
	mustCreate(t, st, a)
	_, err := st.Find(context.Background(), a.Hash)
	if time.Now().Before(a.IdleDeadline) && err != nil {
		t.Fatalf("Find before the idle deadline: %v", err)
	}
	waitPast(a.IdleDeadline)
	wantNotFound(t, st, a.Hash, "past its idle deadline")
	if lst, err := st.List(context.Background(), store.ListOptions{Principal: "alice"}); err != nil || len(lst) != 0 {
		t.Fatalf("List past the idle deadline: %d sessions, %v; want none", len(lst), err)
	}
}

func (su *suite) testExpiryAbsolute(t *testing.T) {
	t.Parallel()
	st := su.newStore(t)
	a := newSession(t, "alice", time.Hour, 200*time.Millisecond)
	mustCreate(t, st, a)
	_, err := st.Find(context.Background(), a.Hash)
	if time.Now().Before(a.Expires) && err != nil {
		t.Fatalf("Find before the absolute deadline: %v", err)
	}
	waitPast(a.Expires)
	wantNotFound(t, st, a.Hash, "past its absolute deadline")
	if err := st.Touch(context.Background(), a.Hash, time.Now(), time.Now().Add(time.Hour), "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch past the absolute deadline: %v, want ErrNotFound", err)
	}
}

func (su *suite) testIdleRefresh(t *testing.T) {
	t.Parallel()
	st := su.newStore(t)
	a := newSession(t, "alice", 200*time.Millisecond, 600*time.Millisecond)
	mustCreate(t, st, a)
	// Extend the idle deadline far past the absolute one: it is clamped.
	if err := st.Touch(context.Background(), a.Hash, time.Now(), time.Now().Add(time.Hour), "", ""); err != nil {
		if time.Now().Before(a.IdleDeadline) {
			t.Fatalf("Touch before the idle deadline: %v", err)
		}
		t.Fatalf("the machine was too slow to touch a session within 200ms: %v", err)
	}
	waitPast(a.IdleDeadline)
	_, err := st.Find(context.Background(), a.Hash)
	if time.Now().Before(a.Expires) && err != nil {
		t.Fatalf("Find after Touch extended the idle deadline: %v", err)
	}
	waitPast(a.Expires)
	wantNotFound(t, st, a.Hash, "past its absolute deadline though touched")
}

func (su *suite) testDeleteExpired(t *testing.T) {
	t.Parallel()
	st := su.newStore(t)
	ctx := context.Background()
	liveA := live(t, "alice")
	liveAnon := live(t, "")
	idleGone := newSession(t, "alice", 100*time.Millisecond, time.Hour)
	absGone := newSession(t, "bob", time.Hour, 100*time.Millisecond)
	revoked := live(t, "carol")
	for _, s := range []*store.Session{liveA, liveAnon, idleGone, absGone, revoked} {
		mustCreate(t, st, s)
	}
	if err := st.RevokePrincipal(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	waitPast(idleGone.IdleDeadline)
	waitPast(absGone.Expires)
	before := -1
	if su.cfg.count != nil {
		before = su.cfg.count(t, st)
		if before != 5 {
			t.Fatalf("store holds %d sessions before the sweep, want 5", before)
		}
	}
	n, err := st.DeleteExpired(ctx, time.Now())
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if n < 0 || n > 3 {
		t.Fatalf("DeleteExpired removed %d, want at most the 3 dead sessions", n)
	}
	if su.cfg.count != nil {
		after := su.cfg.count(t, st)
		if after != 2 || n != before-after {
			t.Fatalf("DeleteExpired reported %d; store went from %d to %d sessions, want 5 to 2 and 3 reported", n, before, after)
		}
	}
	mustFind(t, st, liveA.Hash)
	mustFind(t, st, liveAnon.Hash)
	for _, s := range []*store.Session{idleGone, absGone, revoked} {
		wantNotFound(t, st, s.Hash, "after DeleteExpired")
	}
	n, err = st.DeleteExpired(ctx, time.Now())
	if err != nil || n != 0 {
		t.Fatalf("second DeleteExpired: %d, %v; want 0, nil", n, err)
	}
	// A new session for the revoked principal is live and survives a sweep.
	c := live(t, "carol")
	mustCreate(t, st, c)
	if _, err := st.DeleteExpired(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	mustFind(t, st, c.Hash)
	// Sweeping must not have reset carol's epoch: revoking her again
	// still reaches the new session.
	if err := st.RevokePrincipal(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, st, c.Hash, "after revoking its principal a second time, across a sweep")
}

func (su *suite) testRevokeFingerprints(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	a1, a2, b := live(t, "alice"), live(t, "alice"), live(t, "bob")
	dead := newSession(t, "bob", -time.Second, time.Hour)
	for _, s := range []*store.Session{a1, a2, b, dead} {
		mustCreate(t, st, s)
	}
	unknown := store.HashToken(token(t)).Fingerprint()
	n, err := st.RevokeFingerprints(ctx, []string{a1.Fingerprint(), unknown, a1.Fingerprint(), dead.Fingerprint()})
	if err != nil {
		t.Fatalf("RevokeFingerprints: %v", err)
	}
	if n != 1 {
		t.Fatalf("RevokeFingerprints returned %d, want 1 (one live session; unknown, repeated and expired ones do not count)", n)
	}
	wantNotFound(t, st, a1.Hash, "after revoking its fingerprint")
	mustFind(t, st, a2.Hash)
	mustFind(t, st, b.Hash)

	n, err = st.RevokeFingerprints(ctx, []string{a2.Fingerprint(), b.Fingerprint()})
	if err != nil || n != 2 {
		t.Fatalf("RevokeFingerprints of two: %d, %v; want 2", n, err)
	}
	wantNotFound(t, st, a2.Hash, "after revoking its fingerprint")
	wantNotFound(t, st, b.Hash, "after revoking its fingerprint")

	if n, err := st.RevokeFingerprints(ctx, nil); err != nil || n != 0 {
		t.Fatalf("RevokeFingerprints(nil) = %d, %v; want 0, nil", n, err)
	}
	// A malformed fingerprint is an error matching ErrBadFingerprint that
	// does not repeat it (it could be a pasted cookie), and it revokes
	// nothing, not even the valid fingerprints beside it.
	c := live(t, "carol")
	mustCreate(t, st, c)
	fp := c.Fingerprint()
	for _, bad := range []string{"", "zz", fp[:31], fp + "0", "%", "' OR 1=1 --", string(fp[:16]), strings.ToUpper(fp)} {
		n, err := st.RevokeFingerprints(ctx, []string{fp, bad})
		if !errors.Is(err, store.ErrBadFingerprint) || n != 0 {
			t.Fatalf("RevokeFingerprints(valid, %q) = %d, %v; want 0 and ErrBadFingerprint", bad, n, err)
		}
		if len(bad) >= 8 && strings.Contains(err.Error(), bad) {
			t.Fatalf("RevokeFingerprints error %q repeats the malformed input", err)
		}
	}
	mustFind(t, st, c.Hash)
	// Upper-case hex is not a fingerprint (fingerprints are lower-case).
	h := store.HashToken(token(t))
	h[0] = 0xab
	d := live(t, "dave")
	d.Hash = h
	mustCreate(t, st, d)
	upper := fmt.Sprintf("%X", h[:16])
	if n, err := st.RevokeFingerprints(ctx, []string{upper}); !errors.Is(err, store.ErrBadFingerprint) || n != 0 {
		t.Fatalf("RevokeFingerprints of upper-case hex = %d, %v; want 0 and ErrBadFingerprint", n, err)
	}
	mustFind(t, st, d.Hash)
}

func (su *suite) testRevokePrincipal(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	a1, a2 := live(t, "alice"), live(t, "alice")
	b, anon := live(t, "bob"), live(t, "")
	// A principal whose name extends alice's is a different principal.
	alice2 := live(t, "alice2")
	for _, s := range []*store.Session{a1, a2, b, anon, alice2} {
		mustCreate(t, st, s)
	}
	if err := st.RevokePrincipal(ctx, "alice"); err != nil {
		t.Fatalf("RevokePrincipal: %v", err)
	}
	wantNotFound(t, st, a1.Hash, "after revoking its principal")
	wantNotFound(t, st, a2.Hash, "after revoking its principal")
	mustFind(t, st, b.Hash)
	mustFind(t, st, anon.Hash)
	mustFind(t, st, alice2.Hash)
	if err := st.Update(ctx, a1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update of a revoked session: %v, want ErrNotFound", err)
	}

	a3 := live(t, "alice")
	mustCreate(t, st, a3)
	mustFind(t, st, a3.Hash)
	lst, err := st.List(ctx, store.ListOptions{Principal: "alice"})
	if err != nil || len(lst) != 1 || lst[0].Hash != a3.Hash {
		t.Fatalf("List(alice) after revocation and a new login: %d sessions, %v; want only the new one", len(lst), err)
	}
	// Revoking again kills the new one too; revoking an unknown principal is fine.
	if err := st.RevokePrincipal(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, st, a3.Hash, "after the second revocation")
	if err := st.RevokePrincipal(ctx, "nobody-at-all"); err != nil {
		t.Fatalf("RevokePrincipal of an unknown principal: %v", err)
	}
	mustFind(t, st, b.Hash)
}

func (su *suite) testRevokePrincipalEmpty(t *testing.T) {
	st := su.newStore(t)
	anon := live(t, "")
	mustCreate(t, st, anon)
	if err := st.RevokePrincipal(context.Background(), ""); err == nil {
		t.Fatal("RevokePrincipal(\"\") succeeded; want an error")
	}
	mustFind(t, st, anon.Hash)
}

func (su *suite) testRevokeAll(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	old := []*store.Session{live(t, "alice"), live(t, "bob"), live(t, "")}
	for _, s := range old {
		mustCreate(t, st, s)
	}
	if err := st.RevokeAll(ctx); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	for _, s := range old {
		wantNotFound(t, st, s.Hash, "after RevokeAll")
	}
	if lst, err := st.List(ctx, store.ListOptions{}); err != nil || len(lst) != 0 {
		t.Fatalf("List after RevokeAll: %d sessions, %v; want none", len(lst), err)
	}
	fresh := live(t, "alice")
	mustCreate(t, st, fresh)
	mustFind(t, st, fresh.Hash)
	// Principal and global revocations combine.
	if err := st.RevokePrincipal(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	bob := live(t, "bob")
	mustCreate(t, st, bob)
	mustFind(t, st, bob.Hash)
	mustFind(t, st, fresh.Hash)
	if err := st.RevokeAll(ctx); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, st, fresh.Hash, "after the second RevokeAll")
	wantNotFound(t, st, bob.Hash, "after the second RevokeAll")
}

func hashesOf(l []*store.Session) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.Fingerprint()
	}
	return out
}

func (su *suite) testList(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	now := time.Now()
	a := make([]*store.Session, 3)
	for i := range a {
		a[i] = live(t, "alice")
		a[i].LastSeen = now.Add(time.Duration(-10*(i+1)) * time.Minute)
		mustCreate(t, st, a[i])
	}
	b := live(t, "bob")
	mustCreate(t, st, b)
	expired := newSession(t, "alice", -time.Second, time.Hour)
	mustCreate(t, st, expired)
	// Touch the oldest, making it the newest.
	if err := st.Touch(ctx, a[2].Hash, now, now.Add(time.Hour), "203.0.113.5", "ua"); err != nil {
		t.Fatal(err)
	}
	want := []string{a[2].Fingerprint(), a[0].Fingerprint(), a[1].Fingerprint()}
	got, err := st.List(ctx, store.ListOptions{Principal: "alice"})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if fmt.Sprint(hashesOf(got)) != fmt.Sprint(want) {
		t.Fatalf("List(alice) = %v, want %v (newest LastSeen first, live only)", hashesOf(got), want)
	}
	if got[0].LastIP != "203.0.113.5" || got[0].Principal != "alice" || string(got[0].Data) != "data of alice" {
		t.Fatalf("listed session lacks its fields: %+v", got[0])
	}
	all, err := st.List(ctx, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// bob was created after now, so he was seen last.
	wantAll := append([]string{b.Fingerprint()}, want...)
	if fmt.Sprint(hashesOf(all)) != fmt.Sprint(wantAll) {
		t.Fatalf("List(all) = %v, want %v", hashesOf(all), wantAll)
	}
	if l, err := st.List(ctx, store.ListOptions{Principal: "nobody"}); err != nil || len(l) != 0 {
		t.Fatalf("List(nobody) = %d sessions, %v; want none", len(l), err)
	}
}

func (su *suite) testListLimit(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	now := time.Now()
	var want []string
	for i := 0; i < 5; i++ {
		s := live(t, "alice")
		s.LastSeen = now.Add(time.Duration(-i) * time.Minute)
		mustCreate(t, st, s)
		want = append(want, s.Fingerprint())
	}
	mustCreate(t, st, live(t, "bob"))
	got, err := st.List(ctx, store.ListOptions{Principal: "alice", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(hashesOf(got)) != fmt.Sprint(want[:2]) {
		t.Fatalf("List(alice, limit 2) = %v, want %v", hashesOf(got), want[:2])
	}
	got, err = st.List(ctx, store.ListOptions{Limit: 3})
	if err != nil || len(got) != 3 {
		t.Fatalf("List(limit 3) = %d sessions, %v; want 3", len(got), err)
	}
	got, err = st.List(ctx, store.ListOptions{Principal: "alice", Limit: 100})
	if err != nil || len(got) != 5 {
		t.Fatalf("List(alice, limit 100) = %d sessions, %v; want 5", len(got), err)
	}
	if _, err := st.List(ctx, store.ListOptions{Limit: -1}); err == nil {
		t.Fatal("List with a negative limit succeeded; want an error")
	}
}

// testListTies pins the order of sessions seen at the same time: newest
// Created first, then by hash ascending, in every backend, with and
// without a limit that cuts through the tie.
func (su *suite) testListTies(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	seen := time.Now().Truncate(time.Millisecond)
	var ss []*store.Session
	for i := 0; i < 6; i++ {
		s := live(t, "alice")
		s.LastSeen = seen
		// Two created at each of three times.
		s.Created = seen.Add(-time.Duration(i/2+1) * time.Minute)
		ss = append(ss, s)
	}
	newer := live(t, "alice")
	newer.LastSeen = seen.Add(time.Second)
	newer.Created = seen.Add(-time.Hour)
	// Create in an order unrelated to the expected one.
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		mustCreate(t, st, ss[i])
	}
	mustCreate(t, st, newer)
	want := []*store.Session{newer}
	for pair := 0; pair < 3; pair++ {
		a, b := ss[2*pair], ss[2*pair+1]
		if bytes.Compare(a.Hash[:], b.Hash[:]) > 0 {
			a, b = b, a
		}
		want = append(want, a, b)
	}
	for _, opt := range []store.ListOptions{{Principal: "alice"}, {}, {Principal: "alice", Limit: 4}, {Limit: 2}, {Limit: 5}} {
		got, err := st.List(ctx, opt)
		if err != nil {
			t.Fatal(err)
		}
		w := want
		if opt.Limit > 0 {
			w = want[:opt.Limit]
		}
		if fmt.Sprint(hashesOf(got)) != fmt.Sprint(hashesOf(w)) {
			t.Fatalf("List(%+v) = %v, want %v (LastSeen desc, then Created desc, then hash asc)", opt, hashesOf(got), hashesOf(w))
		}
	}
}

// testCountingRevoker checks the counts of a store.CountingRevoker, if the
// store is one: the live sessions the revocation reached, no others.
func (su *suite) testCountingRevoker(t *testing.T) {
	st := su.newStore(t)
	cr, ok := st.(store.CountingRevoker)
	if !ok {
		t.Skip("the store does not implement store.CountingRevoker")
	}
	ctx := context.Background()
	for _, s := range []*store.Session{live(t, "alice"), live(t, "alice"), live(t, "bob"), live(t, ""),
		newSession(t, "alice", -time.Second, time.Hour)} {
		mustCreate(t, st, s)
	}
	if n, err := cr.RevokePrincipalCount(ctx, "alice"); err != nil || n != 2 {
		t.Fatalf("RevokePrincipalCount(alice) = %d, %v; want 2 (the expired one does not count)", n, err)
	}
	if n, err := cr.RevokePrincipalCount(ctx, "alice"); err != nil || n != 0 {
		t.Fatalf("RevokePrincipalCount(alice) again = %d, %v; want 0", n, err)
	}
	if n, err := cr.RevokePrincipalCount(ctx, "nobody"); err != nil || n != 0 {
		t.Fatalf("RevokePrincipalCount(nobody) = %d, %v; want 0", n, err)
	}
	if _, err := cr.RevokePrincipalCount(ctx, ""); err == nil {
		t.Fatal("RevokePrincipalCount(\"\") succeeded; want an error")
	}
	if n, err := cr.RevokeAllCount(ctx); err != nil || n != 2 {
		t.Fatalf("RevokeAllCount = %d, %v; want 2 (bob and the anonymous session)", n, err)
	}
	if n, err := cr.RevokeAllCount(ctx); err != nil || n != 0 {
		t.Fatalf("RevokeAllCount again = %d, %v; want 0", n, err)
	}
}

// testIndexSwept checks, through WithIndex, that a sweep leaves no index
// entry for a session that is gone, however it went.
func (su *suite) testIndexSwept(t *testing.T) {
	if su.cfg.index == nil {
		t.Skip("the backend shows no per-principal index (WithIndex)")
	}
	st := su.newStore(t)
	ctx := context.Background()
	keep := live(t, "alice")
	mustCreate(t, st, keep)
	var gone []*store.Session
	for i := 0; i < 3; i++ {
		s := newSession(t, "alice", 50*time.Millisecond, time.Hour)
		mustCreate(t, st, s)
		gone = append(gone, s)
	}
	deleted, revoked := live(t, "alice"), live(t, "alice")
	mustCreate(t, st, deleted)
	mustCreate(t, st, revoked)
	if err := st.Delete(ctx, deleted.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RevokeFingerprints(ctx, []string{revoked.Fingerprint()}); err != nil {
		t.Fatal(err)
	}
	// Sessions of a revoked principal are dead too.
	bob := live(t, "bob")
	mustCreate(t, st, bob)
	if err := st.RevokePrincipal(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if got := len(su.cfg.index(t, st, "alice")); got < 1+len(gone) {
		t.Fatalf("index of alice holds %d entries before the sweep, want at least %d: does WithIndex show the index?", got, 1+len(gone))
	}
	waitPast(gone[0].IdleDeadline.Add(su.cfg.expiryLag))
	if su.cfg.count != nil && su.cfg.expiryLag > 0 {
		// The backend should have deleted the expired sessions itself by
		// now, so the sweep meets index entries of sessions that are gone.
		if n := su.cfg.count(t, st); n != 1 {
			t.Logf("the backend still holds %d sessions after its expiry lag", n)
		}
	}
	if _, err := st.DeleteExpired(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := su.cfg.index(t, st, "alice"); fmt.Sprint(got) != fmt.Sprint([]string{keep.Fingerprint()}) {
		t.Fatalf("index of alice after the sweep = %v, want only the live session %s", got, keep.Fingerprint())
	}
	if got := su.cfg.index(t, st, "bob"); len(got) != 0 {
		t.Fatalf("index of the revoked bob after the sweep = %v, want empty", got)
	}
	mustFind(t, st, keep.Hash)
}

// addOne increments the counter held in the session's Data, retrying on
// conflicts the way the session manager does.
func addOne(ctx context.Context, st store.Store, h store.Hash) (conflicts int, err error) {
	for {
		s, err := st.Find(ctx, h)
		if err != nil {
			return conflicts, err
		}
		n, err := strconv.Atoi(string(s.Data))
		if err != nil {
			return conflicts, fmt.Errorf("data %q: %w", s.Data, err)
		}
		s.Data = []byte(strconv.Itoa(n + 1))
		err = st.Update(ctx, s)
		if err == nil {
			return conflicts, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return conflicts, err
		}
		conflicts++
		// Each conflict means another writer succeeded, so with a handful
		// of writers this bound is never reached unless Find and Update
		// disagree about the session.
		if conflicts > 10000 {
			return conflicts, fmt.Errorf("%d conflicts in a row on one increment: Find returns a version Update never accepts", conflicts)
		}
	}
}

func (su *suite) testConcurrentOne(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	s := live(t, "alice")
	s.Data = []byte("0")
	mustCreate(t, st, s)
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := addOne(ctx, st, s.Hash); err != nil {
					errs <- err
					return
				}
				// Touches and reads interleave with the updates and must
				// neither fail nor lose an increment.
				if err := st.Touch(ctx, s.Hash, time.Now(), time.Now().Add(time.Hour), "192.0.2.1", "w"); err != nil {
					errs <- fmt.Errorf("touch: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent update: %v", err)
	}
	got := mustFind(t, st, s.Hash)
	if string(got.Data) != strconv.Itoa(workers*each) || got.Version != workers*each+1 {
		t.Fatalf("after %d concurrent increments: data %q version %d; want %d and %d (lost updates)",
			workers*each, got.Data, got.Version, workers*each, workers*each+1)
	}
}

func (su *suite) testConcurrentMany(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	const workers, each = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	kept := make([][]*store.Session, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			principal := fmt.Sprintf("user%d", w)
			for i := 0; i < each; i++ {
				s := live(t, principal)
				s.Data = []byte("0")
				if err := st.Create(ctx, s); err != nil {
					errs <- fmt.Errorf("create: %w", err)
					return
				}
				for j := 0; j < 3; j++ {
					if _, err := addOne(ctx, st, s.Hash); err != nil {
						errs <- fmt.Errorf("update: %w", err)
						return
					}
				}
				if err := st.Touch(ctx, s.Hash, time.Now(), time.Now().Add(time.Hour), "192.0.2.2", "m"); err != nil {
					errs <- fmt.Errorf("touch: %w", err)
					return
				}
				if i%2 == 1 {
					if err := st.Delete(ctx, s.Hash); err != nil {
						errs <- fmt.Errorf("delete: %w", err)
						return
					}
					continue
				}
				kept[w] = append(kept[w], s)
			}
			if l, err := st.List(ctx, store.ListOptions{Principal: principal}); err != nil || len(l) != (each+1)/2 {
				errs <- fmt.Errorf("List(%s) = %d sessions, %v; want %d", principal, len(l), err, (each+1)/2)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent use of many sessions: %v", err)
	}
	total := 0
	for _, ss := range kept {
		for _, s := range ss {
			got := mustFind(t, st, s.Hash)
			if string(got.Data) != "3" || got.Version != 4 || got.Principal != s.Principal {
				t.Fatalf("session %s: data %q version %d principal %q; want \"3\", 4, %q",
					s.Fingerprint(), got.Data, got.Version, got.Principal, s.Principal)
			}
			total++
		}
	}
	if l, err := st.List(ctx, store.ListOptions{}); err != nil || len(l) != total {
		t.Fatalf("List(all) = %d sessions, %v; want %d", len(l), err, total)
	}
}

func (su *suite) testLargeValue(t *testing.T) {
	st := su.newStore(t)
	ctx := context.Background()
	big := make([]byte, 1<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	s := live(t, "alice")
	s.Data = big
	mustCreate(t, st, s)
	if got := mustFind(t, st, s.Hash); !bytes.Equal(got.Data, big) {
		t.Fatalf("1 MiB Data did not round-trip through Create (got %d bytes)", len(got.Data))
	}
	up := mustFind(t, st, s.Hash)
	up.Data = append(big[len(big)/2:], big[:len(big)/2]...)
	if err := st.Update(ctx, up); err != nil {
		t.Fatalf("Update with 1 MiB Data: %v", err)
	}
	if got := mustFind(t, st, s.Hash); !bytes.Equal(got.Data, up.Data) {
		t.Fatalf("1 MiB Data did not round-trip through Update (got %d bytes)", len(got.Data))
	}
	// Values with every byte value, including NUL, survive.
	bin := make([]byte, 512)
	for i := range bin {
		bin[i] = byte(i)
	}
	b := live(t, "bob")
	b.Data = bin
	mustCreate(t, st, b)
	if got := mustFind(t, st, b.Hash); !bytes.Equal(got.Data, bin) {
		t.Fatalf("binary Data did not round-trip: %x", got.Data)
	}
}

func (su *suite) testNoRawToken(t *testing.T) {
	if su.cfg.raw == nil {
		t.Fatal("storetest: the backend gave Run no WithRawBytes; it must show its storage so the suite can prove no session token is stored")
	}
	st := su.newStore(t)
	ctx := context.Background()
	type pair struct {
		tok  string
		hash store.Hash
	}
	var pairs []pair
	for _, p := range []string{"alice", "bob", ""} {
		tok := token(t)
		s := live(t, p)
		s.Hash = store.HashToken(tok)
		mustCreate(t, st, s)
		s.Data = []byte("some data for " + p)
		if err := st.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		if err := st.Touch(ctx, s.Hash, time.Now(), time.Now().Add(time.Hour), "192.0.2.3", "ua"); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pair{tok, s.Hash})
	}
	if _, err := st.List(ctx, store.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	raw := su.cfg.raw(t, st)
	for _, p := range pairs {
		fp := p.hash.Fingerprint()
		if !bytes.Contains(raw, p.hash[:]) && !bytes.Contains(raw, []byte(hex.EncodeToString(p.hash[:]))) {
			t.Fatalf("raw storage (%d bytes) does not contain the hash of session %s: the WithRawBytes dump does not show the store's storage", len(raw), fp)
		}
		if bytes.Contains(raw, []byte(p.tok)) {
			t.Fatalf("raw storage contains the cookie value of session %s", fp)
		}
		tokBytes, err := base64.RawURLEncoding.DecodeString(p.tok)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, tokBytes) {
			t.Fatalf("raw storage contains the token bytes of session %s", fp)
		}
		if bytes.Contains(raw, []byte(hex.EncodeToString(tokBytes))) {
			t.Fatalf("raw storage contains the hex of the token bytes of session %s", fp)
		}
	}
}

func (su *suite) testContextCanceled(t *testing.T) {
	st := su.newStore(t)
	a := live(t, "alice")
	mustCreate(t, st, a)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want an error matching context.Canceled", op, err)
		}
	}
	b := live(t, "bob")
	check("Create", st.Create(ctx, b))
	_, err := st.Find(ctx, a.Hash)
	check("Find", err)
	s := a.Clone()
	s.Data = []byte("canceled")
	check("Update", st.Update(ctx, s))
	check("Touch", st.Touch(ctx, a.Hash, time.Now(), time.Now().Add(time.Hour), "", ""))
	check("Delete", st.Delete(ctx, a.Hash))
	_, err = st.RevokeFingerprints(ctx, []string{a.Fingerprint()})
	check("RevokeFingerprints", err)
	check("RevokePrincipal", st.RevokePrincipal(ctx, "alice"))
	check("RevokeAll", st.RevokeAll(ctx))
	_, err = st.List(ctx, store.ListOptions{})
	check("List", err)
	_, err = st.DeleteExpired(ctx, time.Now())
	check("DeleteExpired", err)

	// Nothing a canceled call was asked to do happened.
	wantNotFound(t, st, b.Hash, "after a canceled Create")
	got := mustFind(t, st, a.Hash)
	if string(got.Data) != string(a.Data) || got.Version != 1 {
		t.Fatalf("a canceled call changed the session: data %q version %d", got.Data, got.Version)
	}
}
