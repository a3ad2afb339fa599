package lab

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// mapStore is a minimal store.Store kept in a map, used until cordon's
// memstore is on main. It honours the contract's Create/Find/Update/Touch/
// Delete semantics (expiry included) but not revocation epochs, which the
// lab does not exercise.
type mapStore struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[store.Hash]*store.Session
}

var _ store.Store = (*mapStore)(nil)

func newMapStore(now func() time.Time) *mapStore {
	if now == nil {
		now = time.Now
	}
	return &mapStore{now: now, m: make(map[store.Hash]*store.Session)}
}

func (s *mapStore) live(h store.Hash) (*store.Session, bool) {
	x, ok := s.m[h]
	if !ok || x.Expired(s.now()) {
		return nil, false
	}
	return x, true
}

func (s *mapStore) Create(_ context.Context, x *store.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[x.Hash]; ok {
		return fmt.Errorf("lab: mapstore: create: %w", store.ErrExists)
	}
	x.Version = 1
	s.m[x.Hash] = x.Clone()
	return nil
}

func (s *mapStore) Find(_ context.Context, h store.Hash) (*store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.live(h)
	if !ok {
		return nil, fmt.Errorf("lab: mapstore: find: %w", store.ErrNotFound)
	}
	return x.Clone(), nil
}

func (s *mapStore) Update(_ context.Context, x *store.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.live(x.Hash)
	if !ok {
		return fmt.Errorf("lab: mapstore: update: %w", store.ErrNotFound)
	}
	if cur.Version != x.Version {
		return fmt.Errorf("lab: mapstore: update: %w", store.ErrConflict)
	}
	cur.Data = append([]byte(nil), x.Data...)
	cur.IdleDeadline, cur.LastSeen, cur.LastIP, cur.UserAgent = x.IdleDeadline, x.LastSeen, x.LastIP, x.UserAgent
	cur.Version++
	x.Version = cur.Version
	return nil
}

func (s *mapStore) Touch(_ context.Context, h store.Hash, seen, idle time.Time, ip, ua string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.live(h)
	if !ok {
		return fmt.Errorf("lab: mapstore: touch: %w", store.ErrNotFound)
	}
	if idle.After(cur.Expires) {
		idle = cur.Expires
	}
	cur.LastSeen, cur.IdleDeadline, cur.LastIP, cur.UserAgent = seen, idle, ip, ua
	return nil
}

func (s *mapStore) Delete(_ context.Context, h store.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, h)
	return nil
}
