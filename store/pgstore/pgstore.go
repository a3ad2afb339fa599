// Package pgstore keeps cordon's sessions in PostgreSQL, through
// github.com/jackc/pgx/v5 (a pgxpool.Pool), so that many nodes can share
// them.
//
// The schema (default "cordon") is created and migrated on Open (or New, on
// a pool the application already has) from migrations embedded in the
// binary, unless Options.ExistingOnly asks to open only an existing,
// up-to-date schema (ErrNoStore otherwise; `cordon revoke` opens stores
// that way). Every query names the tables through the schema, so the pool
// needs no search_path. Find is one query that checks the deadline and both
// revocation epochs. RevokeFingerprints is a range scan of the primary key
// (a fingerprint is the first 16 bytes of the hash).
//
// Every revocation (RevokeFingerprints, RevokePrincipal, RevokeAll, and
// Delete, which is how logout revokes) increments a revocation counter and
// sends a NOTIFY on a channel named after the schema, in the transaction
// that revokes, so the notification is delivered exactly when the
// revocation commits. The store implements store.Notifier: Subscribe
// LISTENs on a dedicated connection and RevocationSeq reads the counter.
//
// Times are stored with microsecond precision (timestamptz).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	_ store.Full            = (*Store)(nil)
	_ store.Notifier        = (*Store)(nil)
	_ store.CountingRevoker = (*Store)(nil)
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Schema holds the store's tables; default "cordon". Stores with
	// different schemas in one database are independent, including their
	// revocation notifications.
	Schema string
	// Now is the store's clock, used to decide which sessions have expired;
	// default time.Now.
	Now func() time.Time
	// Logger receives reconnection notes from Subscribe; default
	// slog.Default().
	Logger *slog.Logger
	// MaxConns caps the pool; 0 keeps pgx's default (or the URL's
	// pool_max_conns). New ignores it.
	MaxConns int32
	// ExistingOnly opens only a store whose schema exists at this build's
	// version, and never creates or migrates one: a database without the
	// schema (a mistyped Schema, a database cordon never used) gives
	// ErrNoStore. Tools that must not create a store by mistake (`cordon
	// revoke`) set it; applications leave it false, so that opening
	// migrates.
	ExistingOnly bool
}

// Store is a store.Full on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	schema  string
	channel string
	now     func() time.Time
	log     *slog.Logger
	q       queries
	// pingEvery is how long the listener waits quietly before pinging.
	pingEvery time.Duration
	own       bool // whether Close closes the pool
}

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// keyword/value connection string), creates or migrates the schema (unless
// Options.ExistingOnly) and returns the store. Close releases the pool.
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: parse url: %w", err)
	}
	if opt.MaxConns > 0 {
		cfg.MaxConns = opt.MaxConns
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = opt.Schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	s, err := newStore(ctx, pool, opt)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// New returns a store on a pool the application already has, like scs's
// pgxstore.New, and creates or migrates the schema (unless
// Options.ExistingOnly). Every query names the store's tables through the
// schema, so the pool needs no search_path of its own. Close does not
// close the pool.
func New(ctx context.Context, pool *pgxpool.Pool, opt Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: new: nil pool")
	}
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	return newStore(ctx, pool, opt)
}

func (opt *Options) defaults() error {
	if opt.Schema == "" {
		opt.Schema = "cordon"
	}
	if !validSchema(opt.Schema) {
		return fmt.Errorf("pgstore: schema name %q: want 1 to 40 of a-z, 0-9 and _, not starting with a digit", opt.Schema)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return nil
}

func newStore(ctx context.Context, pool *pgxpool.Pool, opt Options) (*Store, error) {
	if opt.ExistingOnly {
		if err := checkSchema(ctx, pool, opt.Schema); err != nil {
			return nil, fmt.Errorf("pgstore: schema %q: %w", opt.Schema, err)
		}
	} else if err := migrateSchema(ctx, pool, opt.Schema); err != nil {
		return nil, fmt.Errorf("pgstore: migrate schema %q: %w", opt.Schema, err)
	}
	return &Store{
		pool:      pool,
		schema:    opt.Schema,
		channel:   "cordon_revoke_" + opt.Schema,
		now:       opt.Now,
		log:       opt.Logger,
		pingEvery: 5 * time.Second,
		q:         qualified(opt.Schema),
	}, nil
}

// validSchema reports whether name is a plain lower-case identifier, which
// needs no quoting in search_path and keeps the channel name short.
func validSchema(name string) bool {
	if len(name) == 0 || len(name) > 40 || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Close closes the connection pool, unless the store was made by New.
func (s *Store) Close() error {
	if s.own {
		s.pool.Close()
	}
	return nil
}

// Pool returns the underlying pool (for tests and tools).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// live is the SQL condition under which the row aliased "s" is a live
// session at the time given by parameter $n. Tables are written "@.name";
// qualified puts the schema in their place.
func live(n int) string {
	return fmt.Sprintf(`s.idle_deadline > $%[1]d AND s.expires > $%[1]d
	AND s.global_epoch >= (SELECT global_epoch FROM @.meta WHERE id = 1)
	AND s.principal_epoch >= COALESCE((SELECT epoch FROM @.principal_epochs p WHERE p.principal = s.principal), 0)`, n)
}

const columns = `s.hash, s.principal, s.data, s.version, s.created, s.last_seen, s.idle_deadline,
	s.expires, s.last_ip, s.user_agent, s.global_epoch, s.principal_epoch`

func scanSession(row pgx.Row) (*store.Session, error) {
	var (
		sess store.Session
		hash []byte
	)
	err := row.Scan(&hash, &sess.Principal, &sess.Data, &sess.Version, &sess.Created, &sess.LastSeen,
		&sess.IdleDeadline, &sess.Expires, &sess.LastIP, &sess.UserAgent, &sess.GlobalEpoch, &sess.PrincipalEpoch)
	if err != nil {
		return nil, err
	}
	if len(hash) != len(sess.Hash) {
		return nil, fmt.Errorf("stored hash has %d bytes", len(hash))
	}
	copy(sess.Hash[:], hash)
	if sess.Data == nil {
		sess.Data = []byte{}
	}
	return &sess, nil
}

// queries holds the store's SQL with its schema in the table names, so
// that the store works on any pool, whatever its search_path.
type queries struct {
	create, find, update, touch, bump, del, revokeFP, revokePrincipal, revokeAll string
	countPrincipal, countAll, list, deleteExpired, seq                           string
}

func qualified(schema string) queries {
	r := strings.NewReplacer("@.", pgx.Identifier{schema}.Sanitize()+".")
	return queries{
		create: r.Replace(createSQL), find: r.Replace(findSQL), update: r.Replace(updateSQL),
		touch: r.Replace(touchSQL), bump: r.Replace(bumpSQL), del: r.Replace(`DELETE FROM @.sessions WHERE hash = $1`),
		revokeFP: r.Replace(revokeFPSQL),
		revokePrincipal: r.Replace(`INSERT INTO @.principal_epochs AS pe (principal, epoch) VALUES ($1, 1)
			ON CONFLICT (principal) DO UPDATE SET epoch = pe.epoch + 1`),
		revokeAll:      r.Replace(`UPDATE @.meta SET global_epoch = global_epoch + 1 WHERE id = 1`),
		countPrincipal: r.Replace(`SELECT count(*) FROM @.sessions s WHERE s.principal = $2 AND ` + live(1)),
		countAll:       r.Replace(`SELECT count(*) FROM @.sessions s WHERE ` + live(1)),
		list: r.Replace(`SELECT ` + columns + ` FROM @.sessions s WHERE ($2 = '' OR s.principal = $2) AND ` + live(1) +
			` ORDER BY s.last_seen DESC, s.created DESC, s.hash LIMIT $3::bigint`),
		deleteExpired: r.Replace(`DELETE FROM @.sessions s WHERE NOT (` + live(1) + `)`),
		seq:           r.Replace(`SELECT revocation_seq FROM @.meta WHERE id = 1`),
	}
}

var createSQL = `
INSERT INTO @.sessions AS s (hash, principal, data, version, created, last_seen, idle_deadline, expires,
	last_ip, user_agent, global_epoch, principal_epoch)
SELECT $1, $2, $3, 1, $4, $5, $6, $7, $8, $9, m.global_epoch,
	COALESCE((SELECT epoch FROM @.principal_epochs WHERE principal = $2), 0)
FROM @.meta m WHERE m.id = 1
ON CONFLICT (hash) DO UPDATE SET
	principal = EXCLUDED.principal, data = EXCLUDED.data, version = 1, created = EXCLUDED.created,
	last_seen = EXCLUDED.last_seen, idle_deadline = EXCLUDED.idle_deadline, expires = EXCLUDED.expires,
	last_ip = EXCLUDED.last_ip, user_agent = EXCLUDED.user_agent,
	global_epoch = EXCLUDED.global_epoch, principal_epoch = EXCLUDED.principal_epoch
WHERE NOT (` + live(10) + `)
RETURNING s.global_epoch, s.principal_epoch`

// Create stores a new session (see store.Store). A dead session (expired
// or revoked) with the same hash is replaced.
func (s *Store) Create(ctx context.Context, sess *store.Session) error {
	data := sess.Data
	if data == nil {
		data = []byte{}
	}
	var ge, pe int64
	err := s.pool.QueryRow(ctx, s.q.create, sess.Hash[:], sess.Principal, data, sess.Created, sess.LastSeen,
		sess.IdleDeadline, sess.Expires, sess.LastIP, sess.UserAgent, s.now()).Scan(&ge, &pe)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("pgstore: create %s: %w", sess.Fingerprint(), store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("pgstore: create %s: %w", sess.Fingerprint(), err)
	}
	sess.Version = 1
	sess.GlobalEpoch, sess.PrincipalEpoch = ge, pe
	return nil
}

var findSQL = `SELECT ` + columns + ` FROM @.sessions s WHERE s.hash = $1 AND ` + live(2)

// Find returns the live session with hash h, or store.ErrNotFound. It is
// one query, checking the deadline and both epochs.
func (s *Store) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, s.q.find, h[:], s.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgstore: find %s: %w", h.Fingerprint(), store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: find %s: %w", h.Fingerprint(), err)
	}
	return sess, nil
}

// updateSQL updates the row if it is live and at the expected version, and
// reports in one round trip the live version before the update (NULL if
// not live) and the version after it (NULL if nothing was updated).
var updateSQL = `
WITH cur AS (SELECT s.version FROM @.sessions s WHERE s.hash = $1 AND ` + live(8) + `),
up AS (
	UPDATE @.sessions s SET data = $3, idle_deadline = $4, last_seen = $5, last_ip = $6, user_agent = $7,
		version = s.version + 1
	WHERE s.hash = $1 AND s.version = $2 AND ` + live(8) + `
	RETURNING s.version)
SELECT (SELECT version FROM cur), (SELECT version FROM up)`

// Update stores the session's mutable fields if its version matches (see
// store.Store).
func (s *Store) Update(ctx context.Context, sess *store.Session) error {
	data := sess.Data
	if data == nil {
		data = []byte{}
	}
	var cur, up *int64
	err := s.pool.QueryRow(ctx, s.q.update, sess.Hash[:], sess.Version, data, sess.IdleDeadline, sess.LastSeen,
		sess.LastIP, sess.UserAgent, s.now()).Scan(&cur, &up)
	if err != nil {
		return fmt.Errorf("pgstore: update %s: %w", sess.Fingerprint(), err)
	}
	switch {
	case up != nil:
		sess.Version = *up
		return nil
	case cur == nil:
		return fmt.Errorf("pgstore: update %s: %w", sess.Fingerprint(), store.ErrNotFound)
	default:
		return fmt.Errorf("pgstore: update %s: version %d, stored %d: %w", sess.Fingerprint(), sess.Version, *cur, store.ErrConflict)
	}
}

var touchSQL = `UPDATE @.sessions s SET last_seen = $2, idle_deadline = LEAST($3, s.expires), last_ip = $4, user_agent = $5
WHERE s.hash = $1 AND ` + live(6)

// Touch records a use of the session (see store.Store).
func (s *Store) Touch(ctx context.Context, h store.Hash, seen, idleDeadline time.Time, ip, userAgent string) error {
	tag, err := s.pool.Exec(ctx, s.q.touch, h[:], seen, idleDeadline, ip, userAgent, s.now())
	if err != nil {
		return fmt.Errorf("pgstore: touch %s: %w", h.Fingerprint(), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: touch %s: %w", h.Fingerprint(), store.ErrNotFound)
	}
	return nil
}

// bumpSQL increments the revocation counter and notifies every node, in the
// caller's transaction; $1 is the channel, $2 the payload.
const bumpSQL = `WITH q AS (UPDATE @.meta SET revocation_seq = revocation_seq + 1 WHERE id = 1 RETURNING revocation_seq)
SELECT pg_notify($1, q.revocation_seq::text || ' ' || $2) FROM q`

// Delete removes the session and, if it existed, tells every node to drop
// it from its cache.
func (s *Store) Delete(ctx context.Context, h store.Hash) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, s.q.del, h[:])
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return s.publish(ctx, tx, store.Event{Kind: store.KindSessions, Fingerprints: []string{h.Fingerprint()}})
	})
	if err != nil {
		return fmt.Errorf("pgstore: delete %s: %w", h.Fingerprint(), err)
	}
	return nil
}

func (s *Store) publish(ctx context.Context, tx pgx.Tx, ev store.Event) error {
	ev.At = time.Now()
	_, err := tx.Exec(ctx, s.q.bump, s.channel, store.EncodePayload(ev))
	return err
}

// fingerprintRange returns the smallest and largest hash with fingerprint
// fp, which must be valid.
func fingerprintRange(fp string) (lo, hi []byte) {
	lo = make([]byte, 32)
	hi = make([]byte, 32)
	for i := 0; i < 16; i++ {
		b := unhex(fp[2*i])<<4 | unhex(fp[2*i+1])
		lo[i], hi[i] = b, b
	}
	for i := 16; i < 32; i++ {
		hi[i] = 0xff
	}
	return lo, hi
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

var revokeFPSQL = `
WITH d AS (
	DELETE FROM @.sessions s USING unnest($1::bytea[], $2::bytea[]) AS r(lo, hi)
	WHERE s.hash BETWEEN r.lo AND r.hi
	RETURNING s.hash, (` + live(3) + `) AS live)
SELECT count(*), count(*) FILTER (WHERE live) FROM d`

// RevokeFingerprints deletes the sessions with the given fingerprints and
// returns how many of them were live (see store.Revoker). A malformed
// fingerprint is an error matching store.ErrBadFingerprint and revokes
// nothing.
func (s *Store) RevokeFingerprints(ctx context.Context, fps []string) (int, error) {
	if err := store.CheckFingerprints(fps); err != nil {
		return 0, fmt.Errorf("pgstore: revoke: %w", err)
	}
	if len(fps) == 0 {
		return 0, nil
	}
	los := make([][]byte, 0, len(fps))
	his := make([][]byte, 0, len(fps))
	for _, fp := range fps {
		lo, hi := fingerprintRange(fp)
		los, his = append(los, lo), append(his, hi)
	}
	var deleted, revoked int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, s.q.revokeFP, los, his, s.now()).Scan(&deleted, &revoked); err != nil {
			return err
		}
		if deleted == 0 {
			return nil
		}
		return s.publish(ctx, tx, store.Event{Kind: store.KindSessions, Fingerprints: fps})
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: revoke %d fingerprints: %w", len(fps), err)
	}
	return revoked, nil
}

// RevokePrincipal bumps the principal's epoch (see store.Revoker).
func (s *Store) RevokePrincipal(ctx context.Context, principal string) error {
	_, err := s.RevokePrincipalCount(ctx, principal)
	return err
}

// RevokePrincipalCount is RevokePrincipal that also returns how many live
// sessions the principal had, counted in the revoking transaction (see
// store.CountingRevoker).
func (s *Store) RevokePrincipalCount(ctx context.Context, principal string) (int, error) {
	if principal == "" {
		return 0, errors.New("pgstore: revoke principal: empty principal")
	}
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, s.q.countPrincipal, s.now(), principal).Scan(&n); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.q.revokePrincipal, principal); err != nil {
			return err
		}
		return s.publish(ctx, tx, store.Event{Kind: store.KindPrincipal, Principal: principal})
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: revoke principal: %w", err)
	}
	return n, nil
}

// RevokeAll bumps the global epoch (see store.Revoker).
func (s *Store) RevokeAll(ctx context.Context) error {
	_, err := s.RevokeAllCount(ctx)
	return err
}

// RevokeAllCount is RevokeAll that also returns how many live sessions
// there were, counted in the revoking transaction (see
// store.CountingRevoker).
func (s *Store) RevokeAllCount(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, s.q.countAll, s.now()).Scan(&n); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.q.revokeAll); err != nil {
			return err
		}
		return s.publish(ctx, tx, store.Event{Kind: store.KindAll})
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: revoke all: %w", err)
	}
	return n, nil
}

// List returns live sessions, newest LastSeen first, then newest Created,
// then by hash (see store.Lister).
func (s *Store) List(ctx context.Context, opt store.ListOptions) ([]*store.Session, error) {
	if opt.Limit < 0 {
		return nil, fmt.Errorf("pgstore: list: negative limit %d", opt.Limit)
	}
	var limit *int64
	if opt.Limit > 0 {
		l := int64(opt.Limit)
		limit = &l
	}
	rows, err := s.pool.Query(ctx, s.q.list, s.now(), opt.Principal, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	defer rows.Close()
	var out []*store.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("pgstore: list: %w", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	return out, nil
}

// DeleteExpired removes every session not live at now (see store.Cleaner).
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, s.q.deleteExpired, now)
	if err != nil {
		return 0, fmt.Errorf("pgstore: delete expired: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// RevocationSeq returns the revocation counter (see store.Notifier).
func (s *Store) RevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, s.q.seq).Scan(&seq); err != nil {
		return 0, fmt.Errorf("pgstore: revocation counter: %w", err)
	}
	return seq, nil
}

// Subscribe LISTENs for revocations on a dedicated connection until ctx is
// done (see store.Notifier). After a lost connection it reconnects with
// backoff (up to 1 s) and delivers a KindFlush event.
func (s *Store) Subscribe(ctx context.Context, fn func(store.Event)) error {
	return store.Resubscribe(ctx, s.log, "pgstore: revocation listener", func(ctx context.Context, connected func()) error {
		return s.listen(ctx, fn, connected)
	})
}

func (s *Store) listen(ctx context.Context, fn func(store.Event), connected func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection ends up LISTENing; never give it back to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	fn(store.Event{Kind: store.KindFlush})
	for {
		// A quiet channel is pinged every few seconds, so that a dead
		// connection (a server gone without closing it) is noticed.
		wctx, cancel := context.WithTimeout(ctx, s.pingEvery)
		n, err := pc.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				if err := pc.Ping(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		ev, err := store.DecodeMessage(n.Payload)
		if err != nil {
			s.log.Warn("pgstore: dropping everything after an unreadable revocation", "err", err)
			ev = store.Event{Kind: store.KindFlush}
		}
		fn(ev)
	}
}
