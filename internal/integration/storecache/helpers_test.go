package storecache_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
)

func newCache(t testing.TB, backend store.Full, opt cache.Options) *cache.Cache {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	c := cache.New(backend, opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// waitReady waits until c has checked the revocation counter once (before
// that it serves nothing from memory).
func waitReady(t testing.TB, c *cache.Cache, s *store.Session) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		before := c.Stats().Hits
		if _, err := c.Find(context.Background(), s.Hash); err != nil {
			t.Fatal(err)
		}
		if c.Stats().Hits > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("cache never served from memory")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func session(t testing.TB, principal string) *store.Session {
	if t != nil {
		t.Helper()
	}
	var b [32]byte
	rand.Read(b[:])
	now := time.Now()
	return &store.Session{
		Hash: store.HashToken(base64.RawURLEncoding.EncodeToString(b[:])), Principal: principal,
		Data: []byte("data"), Created: now, LastSeen: now,
		IdleDeadline: now.Add(time.Hour), Expires: now.Add(2 * time.Hour),
	}
}
