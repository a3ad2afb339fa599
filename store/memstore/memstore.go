// Package memstore is an in-memory session store for cordon: a map guarded
// by a read-write mutex, with revocation by epoch.
//
// It is meant for tests, development and single-process deployments that can
// afford to lose every session when the process exits: nothing is written to
// disk. Sessions are deep-copied on the way in and on the way out, so a
// caller that mutates a *store.Session it passed in or got back never changes
// what the store holds.
//
// Revoked and expired sessions stay in memory, invisible, until
// DeleteExpired sweeps them; the session manager calls it in the background.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock deciding whether a session has expired. Nil means
	// time.Now.
	Now func() time.Time
}

// Store is an in-memory store.Full. Create it with New; it is safe for
// concurrent use.
type Store struct {
	now func() time.Time

	mu          sync.RWMutex
	sessions    map[store.Hash]*store.Session
	byPrincipal map[string]map[store.Hash]struct{}
	global      int64
	principals  map[string]int64
}

var (
	_ store.Full            = (*Store)(nil)
	_ store.CountingRevoker = (*Store)(nil)
)

// New returns an empty store.
func New(opt Options) *Store {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:         now,
		sessions:    make(map[store.Hash]*store.Session),
		byPrincipal: make(map[string]map[store.Hash]struct{}),
		principals:  make(map[string]int64),
	}
}

// live reports whether s is live at now. The caller holds s.mu.
func (st *Store) live(s *store.Session, now time.Time) bool {
	return !s.Expired(now) && s.GlobalEpoch >= st.global && s.PrincipalEpoch >= st.principals[s.Principal]
}

// remove deletes h from the maps. The caller holds s.mu for writing.
func (st *Store) remove(h store.Hash) {
	s, ok := st.sessions[h]
	if !ok {
		return
	}
	delete(st.sessions, h)
	if set := st.byPrincipal[s.Principal]; set != nil {
		delete(set, h)
		if len(set) == 0 {
			delete(st.byPrincipal, s.Principal)
		}
	}
}

func ctxErr(op string, ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	return nil
}

// Create stores a copy of s with Version 1 and the current epochs, which it
// also writes back into s. A hash held by an expired or revoked session is
// reused; one held by a live session gives store.ErrExists.
func (st *Store) Create(ctx context.Context, s *store.Session) error {
	if err := ctxErr("create", ctx); err != nil {
		return err
	}
	if s == nil {
		return errors.New("memstore: create: nil session")
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	if cur, ok := st.sessions[s.Hash]; ok {
		if st.live(cur, now) {
			return fmt.Errorf("memstore: create %s: %w", s.Hash.Fingerprint(), store.ErrExists)
		}
		st.remove(s.Hash)
	}
	s.Version = 1
	s.GlobalEpoch = st.global
	s.PrincipalEpoch = st.principals[s.Principal]
	st.sessions[s.Hash] = s.Clone()
	set := st.byPrincipal[s.Principal]
	if set == nil {
		set = make(map[store.Hash]struct{})
		st.byPrincipal[s.Principal] = set
	}
	set[s.Hash] = struct{}{}
	return nil
}

// Find returns a copy of the live session with hash h, or store.ErrNotFound.
func (st *Store) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	if err := ctxErr("find", ctx); err != nil {
		return nil, err
	}
	now := st.now()
	st.mu.RLock()
	defer st.mu.RUnlock()
	s, ok := st.sessions[h]
	if !ok || !st.live(s, now) {
		return nil, fmt.Errorf("memstore: find %s: %w", h.Fingerprint(), store.ErrNotFound)
	}
	return s.Clone(), nil
}

// Update stores s's mutable fields if s.Version is the stored version, and
// increments s.Version. See store.Store.
func (st *Store) Update(ctx context.Context, s *store.Session) error {
	if err := ctxErr("update", ctx); err != nil {
		return err
	}
	if s == nil {
		return errors.New("memstore: update: nil session")
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	cur, ok := st.sessions[s.Hash]
	if !ok || !st.live(cur, now) {
		return fmt.Errorf("memstore: update %s: %w", s.Hash.Fingerprint(), store.ErrNotFound)
	}
	if cur.Version != s.Version {
		return fmt.Errorf("memstore: update %s: version %d, stored %d: %w",
			s.Hash.Fingerprint(), s.Version, cur.Version, store.ErrConflict)
	}
	cur.Data = append([]byte(nil), s.Data...)
	cur.IdleDeadline = s.IdleDeadline
	cur.LastSeen = s.LastSeen
	cur.LastIP = s.LastIP
	cur.UserAgent = s.UserAgent
	cur.Version++
	s.Version = cur.Version
	return nil
}

// Touch records a use of the session. See store.Store.
func (st *Store) Touch(ctx context.Context, h store.Hash, seen, idleDeadline time.Time, ip, userAgent string) error {
	if err := ctxErr("touch", ctx); err != nil {
		return err
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	cur, ok := st.sessions[h]
	if !ok || !st.live(cur, now) {
		return fmt.Errorf("memstore: touch %s: %w", h.Fingerprint(), store.ErrNotFound)
	}
	if idleDeadline.After(cur.Expires) {
		idleDeadline = cur.Expires
	}
	cur.LastSeen = seen
	cur.IdleDeadline = idleDeadline
	cur.LastIP = ip
	cur.UserAgent = userAgent
	return nil
}

// Delete removes the session with hash h, if there is one.
func (st *Store) Delete(ctx context.Context, h store.Hash) error {
	if err := ctxErr("delete", ctx); err != nil {
		return err
	}
	st.mu.Lock()
	st.remove(h)
	st.mu.Unlock()
	return nil
}

// RevokeFingerprints deletes the sessions with the given fingerprints and
// returns how many of them were live. Unknown fingerprints are ignored; a
// malformed one is an error matching store.ErrBadFingerprint and revokes
// nothing. It scans every session: revoking by fingerprint is an incident
// tool, not a per-request path.
func (st *Store) RevokeFingerprints(ctx context.Context, fps []string) (int, error) {
	if err := ctxErr("revoke fingerprints", ctx); err != nil {
		return 0, err
	}
	if err := store.CheckFingerprints(fps); err != nil {
		return 0, fmt.Errorf("memstore: revoke fingerprints: %w", err)
	}
	want := make(map[string]struct{}, len(fps))
	for _, fp := range fps {
		want[fp] = struct{}{}
	}
	if len(want) == 0 {
		return 0, nil
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for h, s := range st.sessions {
		if _, ok := want[h.Fingerprint()]; !ok {
			continue
		}
		if st.live(s, now) {
			n++
		}
		st.remove(h)
	}
	return n, nil
}

// RevokePrincipal makes every existing session of principal absent by
// bumping the principal's epoch.
func (st *Store) RevokePrincipal(ctx context.Context, principal string) error {
	_, err := st.RevokePrincipalCount(ctx, principal)
	return err
}

// RevokePrincipalCount is RevokePrincipal that also returns how many live
// sessions the principal had (see store.CountingRevoker).
func (st *Store) RevokePrincipalCount(ctx context.Context, principal string) (int, error) {
	if err := ctxErr("revoke principal", ctx); err != nil {
		return 0, err
	}
	if principal == "" {
		return 0, errors.New("memstore: revoke principal: empty principal")
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for h := range st.byPrincipal[principal] {
		if st.live(st.sessions[h], now) {
			n++
		}
	}
	st.principals[principal]++
	return n, nil
}

// RevokeAll makes every existing session absent by bumping the global epoch.
func (st *Store) RevokeAll(ctx context.Context) error {
	_, err := st.RevokeAllCount(ctx)
	return err
}

// RevokeAllCount is RevokeAll that also returns how many live sessions
// there were (see store.CountingRevoker).
func (st *Store) RevokeAllCount(ctx context.Context) (int, error) {
	if err := ctxErr("revoke all", ctx); err != nil {
		return 0, err
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for _, s := range st.sessions {
		if st.live(s, now) {
			n++
		}
	}
	st.global++
	return n, nil
}

// List returns copies of the live sessions selected by opt, newest LastSeen
// first (ties: newest Created first, then by hash).
func (st *Store) List(ctx context.Context, opt store.ListOptions) ([]*store.Session, error) {
	if err := ctxErr("list", ctx); err != nil {
		return nil, err
	}
	if opt.Limit < 0 {
		return nil, fmt.Errorf("memstore: list: negative limit %d", opt.Limit)
	}
	now := st.now()
	var out []*store.Session
	st.mu.RLock()
	if opt.Principal != "" {
		for h := range st.byPrincipal[opt.Principal] {
			if s := st.sessions[h]; st.live(s, now) {
				out = append(out, s.Clone())
			}
		}
	} else {
		for _, s := range st.sessions {
			if st.live(s, now) {
				out = append(out, s.Clone())
			}
		}
	}
	st.mu.RUnlock()
	store.SortSessions(out)
	if opt.Limit > 0 && len(out) > opt.Limit {
		out = out[:opt.Limit]
	}
	return out, nil
}

// DeleteExpired removes every session that is not live at now (expired, or
// revoked by an epoch bump) and returns how many it removed. Principals'
// epoch counters are kept (one integer each): a counter restarted at zero
// would let live sessions stamped with its old, higher value survive the
// principal's next revocation.
func (st *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := ctxErr("delete expired", ctx); err != nil {
		return 0, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for h, s := range st.sessions {
		if !st.live(s, now) {
			st.remove(h)
			n++
		}
	}
	return n, nil
}

// Len returns the number of sessions held, live or not yet swept. It is
// meant for tests and metrics.
func (st *Store) Len() int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.sessions)
}
