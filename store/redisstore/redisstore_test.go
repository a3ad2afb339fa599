package redisstore

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
)

// testURL returns the scratch server's URL or fails the test saying how to
// get one.
func testURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("CORDON_TEST_REDIS")
	if url == "" {
		t.Fatal("CORDON_TEST_REDIS is not set: run the tests with ./test.sh, which starts PostgreSQL and Redis")
	}
	return url
}

// openTest opens a store under a fresh key prefix whose keys are deleted
// after the test.
func openTest(t testing.TB, opt Options) *Store {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	if opt.Prefix == "" {
		opt.Prefix = "t" + hex.EncodeToString(b[:]) + ":"
	}
	st, err := Open(context.Background(), testURL(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := st.Client().Scan(ctx, 0, opt.Prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			st.Client().Del(ctx, iter.Val())
		}
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

func TestNotify(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openTest(t, Options{})
	other := openTest(t, Options{}) // another prefix must not hear st's events
	events := make(chan store.Event, 16)
	foreign := make(chan store.Event, 16)
	go st.Subscribe(ctx, func(ev store.Event) { events <- ev })
	go other.Subscribe(ctx, func(ev store.Event) { foreign <- ev })
	if ev := <-events; ev.Kind != store.KindFlush {
		t.Fatalf("first event %v, want the flush after subscribing", ev.Kind)
	}
	<-foreign
	if err := st.RevokePrincipal(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Kind != store.KindPrincipal || ev.Principal != "carol" || ev.Seq != 1 || ev.At.IsZero() {
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
		t.Fatalf("another prefix's subscriber got %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestZeroDeadlines(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, Options{})
	s := newSession("alice", time.Now())
	s.IdleDeadline, s.Expires = time.Time{}, time.Time{}
	if err := st.Create(ctx, s); err != nil {
		t.Fatalf("create with zero deadlines: %v", err)
	}
	if _, err := st.Find(ctx, s.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session with zero deadlines is live: %v", err)
	}
}

// ExistingOnly refuses a prefix with no cordon keys and writes nothing;
// once a store lives there (opened by an application, or only sessions
// written by an older cordon) it opens it.
func TestExistingOnly(t *testing.T) {
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	prefix := "t" + hex.EncodeToString(b[:]) + ":"
	_, err := Open(ctx, testURL(t), Options{Prefix: prefix, ExistingOnly: true})
	if !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), prefix) {
		t.Fatalf("Open(ExistingOnly) of an unused prefix: %v, want ErrNoStore naming it", err)
	}
	st := openTest(t, Options{Prefix: prefix})
	rdb := st.Client()
	if keys, _ := rdb.Keys(ctx, prefix+"*").Result(); len(keys) != 1 || keys[0] != prefix+"store" {
		t.Fatalf("after Open the prefix holds %v, want only the marker", keys)
	}
	again, err := Open(ctx, testURL(t), Options{Prefix: prefix, ExistingOnly: true})
	if err != nil {
		t.Fatalf("Open(ExistingOnly) after Open: %v", err)
	}
	again.Client().Close()
	// A store written before the marker existed: only session keys.
	rdb.Del(ctx, prefix+"store")
	rdb.HSet(ctx, prefix+"s:"+strings.Repeat("a", 32), "p", "alice")
	again, err = Open(ctx, testURL(t), Options{Prefix: prefix, ExistingOnly: true})
	if err != nil {
		t.Fatalf("Open(ExistingOnly) of a store with only sessions: %v", err)
	}
	again.Client().Close()
	// Glob characters in the prefix are matched literally.
	_, err = Open(ctx, testURL(t), Options{Prefix: "t" + hex.EncodeToString(b[:2]) + "*", ExistingOnly: true})
	if !errors.Is(err, ErrNoStore) {
		t.Fatalf("a prefix ending in * matched other stores: %v", err)
	}
}
