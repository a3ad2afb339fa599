package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
)

// testURL returns the scratch database's URL or fails the test saying how
// to get one.
func testURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("CORDON_TEST_POSTGRES")
	if url == "" {
		t.Fatal("CORDON_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts PostgreSQL and Redis")
	}
	return url
}

// openTest opens a store in a fresh schema that is dropped after the test.
func openTest(t testing.TB, opt Options) *Store {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	if opt.Schema == "" {
		opt.Schema = "t_" + hex.EncodeToString(b[:])
	}
	st, err := Open(context.Background(), testURL(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Pool().Exec(context.Background(), "DROP SCHEMA "+opt.Schema+" CASCADE")
		st.Close()
	})
	return st
}

func newSession(principal string, now time.Time) *store.Session {
	var tok [32]byte
	rand.Read(tok[:])
	return &store.Session{
		Hash:         store.HashToken(hex.EncodeToString(tok[:])),
		Principal:    principal,
		Data:         []byte("data"),
		Created:      now,
		LastSeen:     now,
		IdleDeadline: now.Add(time.Hour),
		Expires:      now.Add(24 * time.Hour),
		LastIP:       "192.0.2.1",
		UserAgent:    "test",
	}
}

func TestQuick(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := now
	st := openTest(t, Options{Now: func() time.Time { return clock }})

	a := newSession("alice", now)
	if err := st.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, a.Clone()); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	got, err := st.Find(ctx, a.Hash)
	if err != nil || got.Principal != "alice" || string(got.Data) != "data" || got.Version != 1 || !got.Expires.Equal(a.Expires) {
		t.Fatalf("find: %+v, %v", got, err)
	}
	stale := got.Clone()
	got.Data = []byte("new")
	if err := st.Update(ctx, got); err != nil || got.Version != 2 {
		t.Fatalf("update: %v (version %d)", err, got.Version)
	}
	if err := st.Update(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}
	if err := st.Touch(ctx, a.Hash, now, now.Add(48*time.Hour), "198.51.100.7", "ua2"); err != nil {
		t.Fatal(err)
	}
	got, _ = st.Find(ctx, a.Hash)
	if !got.IdleDeadline.Equal(a.Expires) || got.LastIP != "198.51.100.7" {
		t.Fatalf("touch did not cap the idle deadline or set the ip: %+v", got)
	}

	b := newSession("bob", now)
	c := newSession("bob", now)
	for _, s := range []*store.Session{b, c} {
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := st.List(ctx, store.ListOptions{Principal: "bob"}); err != nil || len(l) != 2 {
		t.Fatalf("list bob: %d, %v", len(l), err)
	}
	if l, err := st.List(ctx, store.ListOptions{Limit: 1}); err != nil || len(l) != 1 {
		t.Fatalf("list limit 1: %d, %v", len(l), err)
	}
	n, err := st.RevokeFingerprints(ctx, []string{b.Fingerprint(), "00000000000000000000000000000000"})
	if err != nil || n != 1 {
		t.Fatalf("revoke fingerprints: %d, %v", n, err)
	}
	if _, err := st.RevokeFingerprints(ctx, []string{"nothex"}); err == nil {
		t.Fatal("malformed fingerprint accepted")
	}
	if _, err := st.Find(ctx, b.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked session found: %v", err)
	}
	if err := st.RevokePrincipal(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Find(ctx, c.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of revoked principal found: %v", err)
	}
	if _, err := st.Find(ctx, a.Hash); err != nil {
		t.Fatalf("alice lost by bob's revocation: %v", err)
	}
	// A new session after the revocation is live.
	d := newSession("bob", now)
	if err := st.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Find(ctx, d.Hash); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Find(ctx, a.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session found after revoke all: %v", err)
	}
	// Creating over a dead session's hash works.
	if err := st.Create(ctx, a.Clone()); err != nil {
		t.Fatalf("create over a revoked hash: %v", err)
	}
	clock = now.Add(2 * time.Hour)
	if _, err := st.Find(ctx, a.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle session found: %v", err)
	}
	if n, err := st.DeleteExpired(ctx, clock); err != nil || n != 3 {
		t.Fatalf("delete expired: %d, %v; want 3", n, err)
	}
}

func TestNotify(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openTest(t, Options{})
	st.pingEvery = 20 * time.Millisecond // the listener pings while waiting
	other := openTest(t, Options{})      // another schema must not hear st's events
	events := make(chan cache.Event, 16)
	foreign := make(chan cache.Event, 16)
	go st.Subscribe(ctx, func(ev cache.Event) { events <- ev })
	go other.Subscribe(ctx, func(ev cache.Event) { foreign <- ev })
	if ev := <-events; ev.Kind != cache.KindFlush {
		t.Fatalf("first event %v, want the flush after subscribing", ev.Kind)
	}
	<-foreign
	time.Sleep(200 * time.Millisecond) // several quiet waits and pings
	if err := st.RevokePrincipal(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Kind != cache.KindPrincipal || ev.Principal != "carol" || ev.Seq != 1 || ev.At.IsZero() {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5 s")
	}
	if seq, err := st.RevocationSeq(ctx); err != nil || seq != 1 {
		t.Fatalf("seq %d, %v", seq, err)
	}
	select {
	case ev := <-foreign:
		t.Fatalf("another schema's subscriber got %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestBadSchema(t *testing.T) {
	for _, name := range []string{"Upper", "a,b", "1abc", "x; DROP TABLE y", strings.Repeat("a", 41)} {
		if st, err := Open(context.Background(), testURL(t), Options{Schema: name}); err == nil {
			st.Close()
			t.Errorf("schema %q accepted", name)
		}
	}
}
