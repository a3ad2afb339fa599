package memstore

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/storetest"
)

// dump writes everything the store holds as raw bytes: keys, every field of
// every session, and the epochs.
func dump(t *testing.T, s store.Full) []byte {
	st := s.(*Store)
	st.mu.RLock()
	defer st.mu.RUnlock()
	var b bytes.Buffer
	for h, s := range st.sessions {
		b.Write(h[:])
		b.Write(s.Hash[:])
		b.WriteString(s.Principal)
		b.Write(s.Data)
		b.WriteString(s.LastIP)
		b.WriteString(s.UserAgent)
	}
	for p := range st.principals {
		b.WriteString(p)
	}
	return b.Bytes()
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Full { return New(Options{}) },
		storetest.WithRawBytes(dump),
		storetest.WithCount(func(t *testing.T, s store.Full) int { return s.(*Store).Len() }),
		storetest.WithIndex(index))
}

// index returns the fingerprints in the store's set of principal's sessions.
func index(t *testing.T, s store.Full, principal string) []string {
	st := s.(*Store)
	st.mu.RLock()
	defer st.mu.RUnlock()
	var out []string
	for h := range st.byPrincipal[principal] {
		out = append(out, h.Fingerprint())
	}
	return out
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Full { return New(Options{}) })
}

// The clock comes from Options.Now.
func TestNowOption(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := New(Options{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	s := &store.Session{Hash: store.HashToken("tok"), Principal: "alice", Created: now, LastSeen: now,
		IdleDeadline: now.Add(time.Minute), Expires: now.Add(time.Hour)}
	ctx := context.Background()
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Find(ctx, s.Hash); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := st.Find(ctx, s.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Find at the idle deadline by the store's clock: %v, want ErrNotFound", err)
	}
	if err := st.Touch(ctx, s.Hash, now, now.Add(time.Hour), "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Touch at the idle deadline by the store's clock: %v, want ErrNotFound", err)
	}
}
