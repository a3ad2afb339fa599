// Package redisstore keeps cordon's sessions in Redis, through
// github.com/redis/go-redis/v9, so that many nodes can share them.
//
// Each session is a Redis hash under "<prefix>s:<fingerprint>" whose TTL is
// the session's deadline (plus a second of slack; the store's own clock
// decides liveness). Every operation that must be atomic (Create with epoch
// stamping, the compare-and-set Update, Touch, revocation with its
// notification) is one Lua script, so it is one round trip and nothing can
// interleave. The epochs and the revocation counter are plain keys.
//
// Keying sessions by fingerprint makes RevokeFingerprints O(1) per
// fingerprint; the full hash is stored in the session and checked by every
// operation, so a session is only ever returned for its own hash.
//
// List reads a sorted set per principal (or the set of all sessions) in
// LastSeen order and checks each member in batches: it costs O(k) script
// work for k members of the set, including dead members not yet swept.
// DeleteExpired walks the set of all sessions and then every principal's
// set with ZSCAN in batches, deletes what is not live and drops the members
// of sessions Redis has already deleted by their TTL: O(n) for n stored
// sessions, spread over many short scripts so Redis is never blocked for
// long.
//
// Every revocation (including Delete, which is how logout revokes)
// increments the revocation counter and PUBLISHes on "<prefix>revoke" in
// the same script. The store implements store.Notifier.
//
// Time fields are stored as unix nanoseconds; times before 1970 are stored
// as 1970. Durability is Redis's: run it with appendonly (appendfsync
// always or everysec) if sessions must survive a Redis restart.
package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/redis/go-redis/v9"
)

var (
	_ store.Full            = (*Store)(nil)
	_ store.Notifier        = (*Store)(nil)
	_ store.CountingRevoker = (*Store)(nil)
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Prefix is prepended to every key and to the channel; default
	// "cordon:". Stores with different prefixes on one server are
	// independent.
	Prefix string
	// Now is the store's clock; default time.Now.
	Now func() time.Time
	// Logger receives notes from Subscribe; default slog.Default().
	Logger *slog.Logger
	// ExistingOnly makes Open refuse a prefix under which no cordon store
	// lives (a mistyped prefix, a server cordon never used): it returns
	// ErrNoStore and writes nothing. Tools that must not create a store by
	// mistake (`cordon revoke`) set it; applications leave it false.
	ExistingOnly bool
}

// ErrNoStore means Options.ExistingOnly was set and no cordon store lives
// under the prefix.
var ErrNoStore = errors.New("redisstore: no cordon session store")

// Store is a store.Full on Redis. It is safe for concurrent use.
type Store struct {
	rdb    *redis.Client
	prefix string
	now    func() time.Time
	log    *slog.Logger
}

// Open connects to the Redis server at url (redis://[user:pass@]host:port/db)
// and returns the store. Unless Options.ExistingOnly is set it marks the
// prefix as a cordon store (one key, "<prefix>store"), as every Create
// does. Close closes the client.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisstore: parse url: %w", err)
	}
	rdb := redis.NewClient(ro)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redisstore: connect: %w", err)
	}
	st := New(rdb, opt)
	if opt.ExistingOnly {
		err = st.checkExists(ctx)
	} else {
		err = rdb.Set(ctx, st.prefix+"store", "1", 0).Err()
	}
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	return st, nil
}

// checkExists fails with ErrNoStore unless a cordon store lives under the
// prefix: its marker, or (for stores written before the marker) its set of
// sessions, an epoch, the revocation counter or a session key.
func (s *Store) checkExists(ctx context.Context) error {
	n, err := s.rdb.Exists(ctx, s.prefix+"store", s.prefix+"all", s.prefix+"ge", s.prefix+"seq").Result()
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	iter := s.rdb.Scan(ctx, 0, globEscape(s.prefix)+"s:*", 1000).Iterator()
	if iter.Next(ctx) {
		return nil
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w under the key prefix %q on this server (a mistyped ?prefix=? create it with `cordon migrate -store URL`, or by opening the store from the application)", ErrNoStore, s.prefix)
}

// globEscape escapes the glob characters of a key prefix for SCAN MATCH.
func globEscape(p string) string {
	var b []byte
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', ']', '\\':
			b = append(b, '\\')
		}
		b = append(b, p[i])
	}
	return string(b)
}

// New returns a store on an existing client. Close closes the client.
func New(rdb *redis.Client, opt Options) *Store {
	if opt.Prefix == "" {
		opt.Prefix = "cordon:"
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Store{rdb: rdb, prefix: opt.Prefix, now: opt.Now, log: opt.Logger}
}

// Close closes the client.
func (s *Store) Close() error { return s.rdb.Close() }

// Client returns the underlying client (for tests and tools).
func (s *Store) Client() *redis.Client { return s.rdb }

// encTime encodes t as zero-padded unix nanoseconds, so that encoded times
// compare as strings; the zero Time is "".
func encTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	return fmt.Sprintf("%020d", n)
}

func decTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q", s)
	}
	return time.Unix(0, n), nil
}

// score orders the LastSeen sets: unix microseconds, exact in a double.
func score(t time.Time) string {
	return strconv.FormatInt(t.UnixMicro(), 10)
}

func (s *Store) args(rest ...any) []any {
	return append([]any{s.prefix, encTime(s.now())}, rest...)
}

// Create stores a new session (see store.Store). A dead session with the
// same fingerprint is replaced; a live one gives store.ErrExists.
func (s *Store) Create(ctx context.Context, sess *store.Session) error {
	fp := sess.Fingerprint()
	res, err := createScript.Run(ctx, s.rdb, nil, s.args(fp, hex.EncodeToString(sess.Hash[:]), sess.Principal,
		sess.Data, encTime(sess.Created), encTime(sess.LastSeen), encTime(sess.IdleDeadline), encTime(sess.Expires),
		sess.LastIP, sess.UserAgent, score(sess.LastSeen))...).Slice()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisstore: create %s: %w", fp, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("redisstore: create %s: %w", fp, err)
	}
	ge, err1 := strconv.ParseInt(fmt.Sprint(res[0]), 10, 64)
	pe, err2 := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("redisstore: create %s: bad epoch: %w", fp, err)
	}
	sess.Version = 1
	sess.GlobalEpoch, sess.PrincipalEpoch = ge, pe
	return nil
}

// decode turns find's field list into a session.
func decode(v any) (*store.Session, error) {
	f, ok := v.([]any)
	if !ok || len(f) != len(fields) {
		return nil, fmt.Errorf("unexpected reply %T", v)
	}
	str := make([]string, len(f))
	for i, x := range f {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("field %s missing", fields[i])
		}
		str[i] = s
	}
	var sess store.Session
	h, err := hex.DecodeString(str[0])
	if err != nil || len(h) != len(sess.Hash) {
		return nil, fmt.Errorf("bad stored hash")
	}
	copy(sess.Hash[:], h)
	sess.Principal = str[1]
	sess.Data = []byte(str[2])
	var errs [9]error
	sess.Version, errs[0] = strconv.ParseInt(str[3], 10, 64)
	sess.Created, errs[1] = decTime(str[4])
	sess.LastSeen, errs[2] = decTime(str[5])
	sess.IdleDeadline, errs[3] = decTime(str[6])
	sess.Expires, errs[4] = decTime(str[7])
	sess.LastIP, sess.UserAgent = str[8], str[9]
	sess.GlobalEpoch, errs[5] = strconv.ParseInt(str[10], 10, 64)
	sess.PrincipalEpoch, errs[6] = strconv.ParseInt(str[11], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return &sess, nil
}

// Find returns the live session with hash h, or store.ErrNotFound; one
// round trip that checks the deadline and both epochs.
func (s *Store) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	fp := h.Fingerprint()
	res, err := findScript.Run(ctx, s.rdb, nil, s.args(hex.EncodeToString(h[:]), fp)...).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: find %s: %w", fp, err)
	}
	if len(res) != 1 || res[0] == nil {
		return nil, fmt.Errorf("redisstore: find %s: %w", fp, store.ErrNotFound)
	}
	sess, err := decode(res[0])
	if err != nil {
		return nil, fmt.Errorf("redisstore: find %s: %w", fp, err)
	}
	return sess, nil
}

// Update stores the session's mutable fields if its version matches (see
// store.Store).
func (s *Store) Update(ctx context.Context, sess *store.Session) error {
	fp := sess.Fingerprint()
	res, err := updateScript.Run(ctx, s.rdb, nil, s.args(fp, hex.EncodeToString(sess.Hash[:]),
		strconv.FormatInt(sess.Version, 10), sess.Data, encTime(sess.IdleDeadline), encTime(sess.LastSeen),
		sess.LastIP, sess.UserAgent, score(sess.LastSeen))...).Int64Slice()
	if err != nil {
		return fmt.Errorf("redisstore: update %s: %w", fp, err)
	}
	switch {
	case len(res) == 1 && res[0] > 0:
		sess.Version = res[0]
		return nil
	case len(res) == 1 && res[0] == -1:
		return fmt.Errorf("redisstore: update %s: %w", fp, store.ErrNotFound)
	case len(res) == 2 && res[0] == -2:
		return fmt.Errorf("redisstore: update %s: version %d, stored %d: %w", fp, sess.Version, res[1], store.ErrConflict)
	}
	return fmt.Errorf("redisstore: update %s: unexpected reply %v", fp, res)
}

// Touch records a use of the session (see store.Store).
func (s *Store) Touch(ctx context.Context, h store.Hash, seen, idleDeadline time.Time, ip, userAgent string) error {
	fp := h.Fingerprint()
	n, err := touchScript.Run(ctx, s.rdb, nil, s.args(fp, hex.EncodeToString(h[:]), encTime(seen),
		encTime(idleDeadline), ip, userAgent, score(seen))...).Int()
	if err != nil {
		return fmt.Errorf("redisstore: touch %s: %w", fp, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: touch %s: %w", fp, store.ErrNotFound)
	}
	return nil
}

func payload(ev store.Event) string {
	ev.At = time.Now()
	return store.EncodePayload(ev)
}

// Delete removes the session and, if it existed, tells every node to drop
// it from its cache.
func (s *Store) Delete(ctx context.Context, h store.Hash) error {
	fp := h.Fingerprint()
	err := deleteScript.Run(ctx, s.rdb, nil, s.args(fp, hex.EncodeToString(h[:]),
		payload(store.Event{Kind: store.KindSessions, Fingerprints: []string{fp}}))...).Err()
	if err != nil {
		return fmt.Errorf("redisstore: delete %s: %w", fp, err)
	}
	return nil
}

// RevokeFingerprints deletes the sessions with the given fingerprints and
// returns how many of them were live (see store.Revoker). A malformed
// fingerprint is an error matching store.ErrBadFingerprint and revokes
// nothing.
func (s *Store) RevokeFingerprints(ctx context.Context, fps []string) (int, error) {
	if err := store.CheckFingerprints(fps); err != nil {
		return 0, fmt.Errorf("redisstore: revoke: %w", err)
	}
	if len(fps) == 0 {
		return 0, nil
	}
	total := 0
	// Batches keep each script short; each batch publishes its own event.
	for start := 0; start < len(fps); start += 500 {
		batch := fps[start:min(start+500, len(fps))]
		a := s.args(payload(store.Event{Kind: store.KindSessions, Fingerprints: batch}))
		for _, fp := range batch {
			a = append(a, fp)
		}
		n, err := revokeFPsScript.Run(ctx, s.rdb, nil, a...).Int()
		if err != nil {
			return total, fmt.Errorf("redisstore: revoke %d fingerprints: %w", len(fps), err)
		}
		total += n
	}
	return total, nil
}

// RevokePrincipal bumps the principal's epoch (see store.Revoker).
func (s *Store) RevokePrincipal(ctx context.Context, principal string) error {
	_, err := s.RevokePrincipalCount(ctx, principal)
	return err
}

// RevokePrincipalCount is RevokePrincipal that also returns how many live
// sessions the principal had, counted in the revoking script (see
// store.CountingRevoker).
func (s *Store) RevokePrincipalCount(ctx context.Context, principal string) (int, error) {
	if principal == "" {
		return 0, errors.New("redisstore: revoke principal: empty principal")
	}
	n, err := revokePrincipalScript.Run(ctx, s.rdb, nil, s.args(principal,
		payload(store.Event{Kind: store.KindPrincipal, Principal: principal}))...).Int()
	if err != nil {
		return 0, fmt.Errorf("redisstore: revoke principal: %w", err)
	}
	return n, nil
}

// RevokeAll bumps the global epoch (see store.Revoker).
func (s *Store) RevokeAll(ctx context.Context) error {
	err := revokeEpochScript.Run(ctx, s.rdb, nil, s.args("ge", payload(store.Event{Kind: store.KindAll}))...).Err()
	if err != nil {
		return fmt.Errorf("redisstore: revoke all: %w", err)
	}
	return nil
}

// RevokeAllCount is RevokeAll that also returns how many live sessions
// there were (see store.CountingRevoker). Counting every session in one
// script would block Redis, so they are counted in batches just before the
// epoch is bumped: a session created meanwhile may be revoked uncounted.
func (s *Store) RevokeAllCount(ctx context.Context) (int, error) {
	n := 0
	var cursor uint64
	for {
		fps, next, err := s.rdb.ZScan(ctx, s.prefix+"all", cursor, "", batchSize).Result()
		if err != nil {
			return 0, fmt.Errorf("redisstore: revoke all: count: %w", err)
		}
		if len(fps) > 0 {
			a := s.args()
			for i := 0; i < len(fps); i += 2 { // member, score, ...
				a = append(a, fps[i])
			}
			c, err := countLiveScript.Run(ctx, s.rdb, nil, a...).Int()
			if err != nil {
				return 0, fmt.Errorf("redisstore: revoke all: count: %w", err)
			}
			n += c
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	return n, s.RevokeAll(ctx)
}

const batchSize = 256

// List returns live sessions, newest LastSeen first, then newest Created,
// then by hash (see store.Lister). It reads the principal's sorted set (or
// the set of all sessions) in batches and skips members whose session is
// no longer live; DeleteExpired removes those.
func (s *Store) List(ctx context.Context, opt store.ListOptions) ([]*store.Session, error) {
	if opt.Limit < 0 {
		return nil, fmt.Errorf("redisstore: list: negative limit %d", opt.Limit)
	}
	set := s.prefix + "all"
	if opt.Principal != "" {
		set = s.prefix + "u:" + opt.Principal
	}
	var (
		out  []*store.Session
		seen = map[string]bool{}
	)
	// add checks the members fps and appends the live ones.
	add := func(fps []string) error {
		a := s.args("")
		for _, fp := range fps {
			if !seen[fp] {
				seen[fp] = true
				a = append(a, fp)
			}
		}
		if len(a) == 3 {
			return nil
		}
		res, err := findScript.Run(ctx, s.rdb, nil, a...).Slice()
		if err != nil {
			return err
		}
		for _, r := range res {
			if r == nil {
				continue
			}
			sess, err := decode(r)
			if err != nil {
				return err
			}
			if opt.Principal != "" && sess.Principal != opt.Principal {
				continue
			}
			out = append(out, sess)
		}
		return nil
	}
	for start := int64(0); ; start += batchSize {
		zs, err := s.rdb.ZRevRangeWithScores(ctx, set, start, start+batchSize-1).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: list: %w", err)
		}
		fps := make([]string, len(zs))
		for i, z := range zs {
			fps[i], _ = z.Member.(string)
		}
		if err := add(fps); err != nil {
			return nil, fmt.Errorf("redisstore: list: %w", err)
		}
		if len(zs) < batchSize {
			break
		}
		if opt.Limit > 0 && len(out) >= opt.Limit {
			// The set orders ties by member; the contract orders them by
			// Created and hash. Read every member tied with the last one
			// read, so that sorting below picks the right ones.
			last := strconv.FormatFloat(zs[len(zs)-1].Score, 'f', -1, 64)
			tied, err := s.rdb.ZRangeByScore(ctx, set, &redis.ZRangeBy{Min: last, Max: last}).Result()
			if err != nil {
				return nil, fmt.Errorf("redisstore: list: %w", err)
			}
			if err := add(tied); err != nil {
				return nil, fmt.Errorf("redisstore: list: %w", err)
			}
			break
		}
	}
	store.SortSessions(out)
	if opt.Limit > 0 && len(out) > opt.Limit {
		out = out[:opt.Limit]
	}
	return out, nil
}

// DeleteExpired removes every session not live at now (see store.Cleaner).
// It walks the set of all sessions, then every principal's set, in
// batches: a session that Redis deleted by its TTL leaves its entries in
// the sets, and this is where they go.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	total := 0
	err := s.zscanBatches(ctx, s.prefix+"all", func(fps []string) error {
		a := []any{s.prefix, encTime(now)}
		for _, fp := range fps {
			a = append(a, fp)
		}
		n, err := sweepScript.Run(ctx, s.rdb, nil, a...).Int()
		total += n
		return err
	})
	if err != nil {
		return total, fmt.Errorf("redisstore: delete expired: %w", err)
	}
	iter := s.rdb.Scan(ctx, 0, globEscape(s.prefix)+"u:*", 1000).Iterator()
	for iter.Next(ctx) {
		set := iter.Val()
		principal := set[len(s.prefix)+2:]
		err := s.zscanBatches(ctx, set, func(fps []string) error {
			a := []any{s.prefix, encTime(now), principal}
			for _, fp := range fps {
				a = append(a, fp)
			}
			n, err := sweepIndexScript.Run(ctx, s.rdb, nil, a...).Int()
			total += n
			return err
		})
		if err != nil {
			return total, fmt.Errorf("redisstore: delete expired: %w", err)
		}
	}
	if err := iter.Err(); err != nil {
		return total, fmt.Errorf("redisstore: delete expired: %w", err)
	}
	return total, nil
}

// zscanBatches calls fn with the members of the sorted set key, a batch at
// a time.
func (s *Store) zscanBatches(ctx context.Context, key string, fn func(members []string) error) error {
	var cursor uint64
	for {
		kv, next, err := s.rdb.ZScan(ctx, key, cursor, "", batchSize).Result()
		if err != nil {
			return err
		}
		if len(kv) > 0 {
			members := make([]string, 0, len(kv)/2)
			for i := 0; i < len(kv); i += 2 { // member, score, member, score...
				members = append(members, kv[i])
			}
			if err := fn(members); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// RevocationSeq returns the revocation counter (see store.Notifier).
func (s *Store) RevocationSeq(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, s.prefix+"seq").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: revocation counter: %w", err)
	}
	return n, nil
}

// Subscribe receives revocations on the store's channel until ctx is done
// (see store.Notifier). After a lost connection it resubscribes (with
// backoff up to 1 s) and delivers a KindFlush event.
func (s *Store) Subscribe(ctx context.Context, fn func(store.Event)) error {
	return store.Resubscribe(ctx, s.log, "redisstore: revocation subscriber", func(ctx context.Context, connected func()) error {
		return s.listen(ctx, fn, connected)
	})
}

func (s *Store) listen(ctx context.Context, fn func(store.Event), connected func()) error {
	ps := s.rdb.Subscribe(ctx)
	defer ps.Close()
	// A blocked read does not watch ctx; closing the subscription ends it.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	if err := ps.Subscribe(ctx, s.prefix+"revoke"); err != nil {
		return err
	}
	for {
		// ReceiveTimeout surfaces connection loss as an error instead of
		// letting go-redis reconnect silently, so that every (re)subscription
		// is followed by a flush. A quiet channel is pinged, so that a dead
		// connection is noticed within seconds.
		msg, err := ps.ReceiveTimeout(ctx, 2*time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				if err := ps.Ping(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				connected()
				fn(store.Event{Kind: store.KindFlush})
			}
		case *redis.Message:
			ev, err := store.DecodeMessage(m.Payload)
			if err != nil {
				s.log.Warn("redisstore: dropping everything after an unreadable revocation", "err", err)
				ev = store.Event{Kind: store.KindFlush}
			}
			fn(ev)
		case *redis.Pong:
		}
	}
}
