// Package sqlitestore is cordon's embedded session store: one SQLite file,
// written through modernc.org/sqlite, a pure-Go SQLite (no cgo, so cordon
// still cross-compiles and builds with CGO_ENABLED=0).
//
// # Layout
//
// Sessions are keyed by their 32-byte hash (store.Hash) as a BLOB primary
// key; the raw token never reaches the database. A fingerprint is the first
// 16 bytes of the hash, so revoking by fingerprint is a range scan on the key
// (hash BETWEEN fp||00…00 AND fp||ff…ff) and needs no column of its own.
// Revocation of a principal or of everyone bumps a counter in a small epoch
// table, O(1) whatever the number of sessions. Find checks the deadlines and
// both epochs in one prepared query, so a revoked or expired session is never
// returned, and sweeping (DeleteExpired) is only about space.
//
// The schema is created and upgraded by versioned migrations embedded in the
// binary; the version is kept in PRAGMA user_version. Opening a database
// written by an older cordon upgrades it in one transaction; opening one
// written by a newer cordon fails with ErrSchemaTooNew.
//
// # Connections
//
// SQLite allows one writer at a time. The store keeps one connection for
// every write, so writes queue in Go instead of spinning on SQLITE_BUSY, and
// read-only connections for Find and List, which in WAL mode never wait for
// the writer. Find, which runs on every request, has Options.Readers
// connections of its own with its query prepared on the driver (see
// find.go); List shares one more.
//
// Nothing is cached in the process: every Find reads the file, so a
// revocation made by another process on the same file (`cordon revoke`,
// another server) takes effect on the very next request. Several processes
// may open the same file; busy_timeout (Options.BusyTimeout) bounds how long
// one waits for another's write lock.
//
// # Durability
//
// The database runs in WAL mode. With the default synchronous=NORMAL, a
// committed transaction has been written to the WAL file before the call
// returns, so it survives the process crashing or being killed (kill -9):
// the tests check exactly that. What NORMAL does not promise is that it
// survives the operating system crashing or the power failing: the WAL is
// fsynced only at checkpoints, so the last transactions before such a crash
// may be rolled back (the database stays consistent, never corrupt; a few
// recent logins, logouts or data writes may be lost, and a revocation
// recorded just before the crash may be undone). Set Options.Durability to
// SyncFull to fsync the WAL on every commit, at the cost of one fsync per
// write.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cordon-sec/cordon/store"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Durability selects SQLite's synchronous setting.
type Durability int

const (
	// SyncNormal (the default) is synchronous=NORMAL: commits survive a
	// process crash; the last ones may be lost if the OS crashes.
	SyncNormal Durability = iota
	// SyncFull is synchronous=FULL: every commit is fsynced and survives an
	// OS crash or power loss too.
	SyncFull
)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock deciding whether a session has expired. Nil means
	// time.Now.
	Now func() time.Time
	// Durability is SyncNormal (default) or SyncFull; see the package doc.
	Durability Durability
	// BusyTimeout is how long a statement waits for another process's lock
	// before failing. Zero means 5 seconds.
	BusyTimeout time.Duration
	// Readers is how many read-only connections serve Find, that is how
	// many Finds run at once; more wait their turn. Zero means
	// max(4, GOMAXPROCS).
	Readers int
}

// Store is a store.Full in one SQLite file. Create it with Open and release
// it with Close; it is safe for concurrent use.
type Store struct {
	now    func() time.Time
	writer *sql.DB // one connection: every write goes through it
	reader *sql.DB // read-only pool

	create, update, touch, del, versionOf   *sql.Stmt
	revokeRange, revokePrincipal, revokeAll *sql.Stmt
	deleteExpired, count                    *sql.Stmt
	listAll, listPrincipal                  *sql.Stmt

	finders chan *finder // Find's own read connections
	closed  atomic.Bool
}

var _ store.Full = (*Store)(nil)

// liveWhere is the live-ness test of a session row, qualified by tbl (an
// alias or the table name), given the store's current time as parameter
// nowParam: both deadlines ahead, both epoch stamps current. Both epoch
// look-ups are primary-key reads.
func liveWhere(tbl, nowParam string) string {
	return tbl + `.idle_deadline > ` + nowParam + ` AND ` + tbl + `.expires > ` + nowParam + `
	AND ` + tbl + `.global_epoch >= (SELECT epoch FROM global_epoch WHERE id = 1)
	AND ` + tbl + `.principal_epoch >= coalesce((SELECT p.epoch FROM principal_epochs p WHERE p.principal = ` + tbl + `.principal), 0)`
}

const columns = `s.hash, s.principal, s.data, s.version, s.created, s.last_seen, s.idle_deadline,
	s.expires, s.last_ip, s.user_agent, s.global_epoch, s.principal_epoch`

// The statements, prepared once per connection by Open. Each one that
// reads or changes a session checks live-ness with liveWhere in the same
// statement.
var (
	qCreate = `INSERT INTO sessions (hash, principal, data, version, created, last_seen,
		idle_deadline, expires, last_ip, user_agent, global_epoch, principal_epoch)
	SELECT ?1, ?2, coalesce(?3, x''), 1, ?4, ?5, ?6, ?7, ?8, ?9,
		(SELECT epoch FROM global_epoch WHERE id = 1),
		coalesce((SELECT epoch FROM principal_epochs WHERE principal = ?2), 0)
	WHERE true
	ON CONFLICT (hash) DO UPDATE SET principal = excluded.principal, data = excluded.data,
		version = 1, created = excluded.created, last_seen = excluded.last_seen,
		idle_deadline = excluded.idle_deadline, expires = excluded.expires,
		last_ip = excluded.last_ip, user_agent = excluded.user_agent,
		global_epoch = excluded.global_epoch, principal_epoch = excluded.principal_epoch
	WHERE NOT (` + liveWhere("sessions", "?10") + `)
	RETURNING global_epoch, principal_epoch`
	qUpdate = `UPDATE sessions AS s SET data = coalesce(?1, x''), idle_deadline = ?2,
		last_seen = ?3, last_ip = ?4, user_agent = ?5, version = version + 1
	WHERE s.hash = ?6 AND s.version = ?7 AND ` + liveWhere("s", "?8")
	qVersionOf = `SELECT s.version FROM sessions s WHERE s.hash = ?1 AND ` + liveWhere("s", "?2")
	qTouch     = `UPDATE sessions AS s SET last_seen = ?1, idle_deadline = min(?2, s.expires),
		last_ip = ?3, user_agent = ?4
	WHERE s.hash = ?5 AND ` + liveWhere("s", "?6")
	qDel         = `DELETE FROM sessions WHERE hash = ?1`
	qRevokeRange = `DELETE FROM sessions WHERE hash BETWEEN ?1 AND ?2
	RETURNING (` + liveWhere("sessions", "?3") + `)`
	qRevokePrincipal = `INSERT INTO principal_epochs (principal, epoch) VALUES (?1, 1)
	ON CONFLICT (principal) DO UPDATE SET epoch = epoch + 1`
	qRevokeAll     = `UPDATE global_epoch SET epoch = epoch + 1 WHERE id = 1`
	qDeleteExpired = `DELETE FROM sessions AS s WHERE NOT (` + liveWhere("s", "?1") + `)`
	qCount         = `SELECT count(*) FROM sessions`
	qListAll       = `SELECT ` + columns + ` FROM sessions s WHERE ` + liveWhere("s", "?1") + `
	ORDER BY s.last_seen DESC, s.created DESC, s.hash LIMIT ?2`
	qListPrincipal = `SELECT ` + columns + ` FROM sessions s WHERE s.principal = ?2 AND ` + liveWhere("s", "?1") + `
	ORDER BY s.last_seen DESC, s.created DESC, s.hash LIMIT ?3`
)

// Open opens (creating it if needed) the store in the SQLite file at path
// and brings its schema up to date. The directory must exist.
func Open(path string, opt Options) (*Store, error) {
	ms, err := builtinMigrations()
	if err != nil {
		return nil, err
	}
	return openWith(path, opt, ms)
}

func openWith(path string, opt Options, ms []migration) (_ *Store, err error) {
	fail := func(err error) (*Store, error) {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	switch {
	case path == "":
		return fail(errors.New("empty path"))
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return fail(errors.New("want the path of a file (in-memory and URI databases are not supported)"))
	case strings.ContainsAny(path, "?#"):
		return fail(errors.New("path must not contain '?' or '#'"))
	}
	if dir := filepath.Dir(path); dir != "" {
		fi, err := os.Stat(dir)
		if err != nil {
			return fail(fmt.Errorf("directory: %w", err))
		}
		if !fi.IsDir() {
			return fail(fmt.Errorf("%s is not a directory", dir))
		}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fail(errors.New("is a directory"))
	}

	busy := opt.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	sync := "NORMAL"
	if opt.Durability == SyncFull {
		sync = "FULL"
	}
	readers := opt.Readers
	if readers <= 0 {
		readers = max(4, runtime.GOMAXPROCS(0))
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return fail(err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	st := &Store{now: opt.Now, writer: writer}
	if st.now == nil {
		st.now = time.Now
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	ctx := context.Background()
	if err := migrate(ctx, writer, ms); err != nil {
		return fail(err)
	}

	rq := url.Values{}
	rq.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	rq.Add("_pragma", "query_only(1)")
	st.reader, err = sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		return fail(err)
	}
	// readers connections for Find, one more for List.
	st.reader.SetMaxOpenConns(readers + 1)
	st.reader.SetMaxIdleConns(readers + 1)
	st.reader.SetConnMaxLifetime(0)
	st.reader.SetConnMaxIdleTime(0)

	prep := func(db *sql.DB, dst **sql.Stmt, query string) {
		if err != nil {
			return
		}
		*dst, err = db.PrepareContext(ctx, query)
		if err != nil {
			err = fmt.Errorf("%w in %s", err, query)
		}
	}
	prep(writer, &st.create, qCreate)
	prep(writer, &st.update, qUpdate)
	prep(writer, &st.versionOf, qVersionOf)
	prep(writer, &st.touch, qTouch)
	prep(writer, &st.del, qDel)
	prep(writer, &st.revokeRange, qRevokeRange)
	prep(writer, &st.revokePrincipal, qRevokePrincipal)
	prep(writer, &st.revokeAll, qRevokeAll)
	prep(writer, &st.deleteExpired, qDeleteExpired)
	prep(writer, &st.count, qCount)
	prep(st.reader, &st.listAll, qListAll)
	prep(st.reader, &st.listPrincipal, qListPrincipal)
	if err != nil {
		return fail(fmt.Errorf("prepare: %w", err))
	}
	if st.finders, err = newFinders(ctx, st.reader, readers); err != nil {
		return fail(fmt.Errorf("prepare find: %w", err))
	}
	return st, nil
}

// Close closes the database. Committed sessions are on disk already; Close
// only releases connections (the last one checkpoints the WAL).
func (st *Store) Close() error {
	if st.closed.Swap(true) {
		return nil
	}
	var errs []error
	if st.finders != nil {
		errs = append(errs, closeFinders(st.finders, cap(st.finders)))
	}
	for _, s := range []*sql.Stmt{st.create, st.update, st.touch, st.del, st.versionOf,
		st.revokeRange, st.revokePrincipal, st.revokeAll, st.deleteExpired, st.count,
		st.listAll, st.listPrincipal} {
		if s != nil {
			s.Close()
		}
	}
	if st.reader != nil {
		errs = append(errs, st.reader.Close())
	}
	errs = append(errs, st.writer.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlitestore: close: %w", err)
	}
	return nil
}

// micros encodes t for the database: microseconds since the Unix epoch,
// which covers every year from 1 to 9999 (the zero time included).
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us) }

// Create stores s with Version 1 and the current epochs, which it also
// writes back into s. A hash held by an expired or revoked session is reused
// in the same statement; one held by a live session gives store.ErrExists.
func (st *Store) Create(ctx context.Context, s *store.Session) error {
	if s == nil {
		return errors.New("sqlitestore: create: nil session")
	}
	now := micros(st.now())
	var ge, pe int64
	err := st.create.QueryRowContext(ctx, s.Hash[:], s.Principal, s.Data,
		micros(s.Created), micros(s.LastSeen), micros(s.IdleDeadline), micros(s.Expires),
		s.LastIP, s.UserAgent, now).Scan(&ge, &pe)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlitestore: create %s: %w", s.Hash.Fingerprint(), store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: create %s: %w", s.Hash.Fingerprint(), err)
	}
	s.Version, s.GlobalEpoch, s.PrincipalEpoch = 1, ge, pe
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanSession(r scanner) (*store.Session, error) {
	var (
		s                            store.Session
		hash                         []byte
		created, seen, idle, expires int64
	)
	if err := r.Scan(&hash, &s.Principal, &s.Data, &s.Version, &created, &seen, &idle, &expires,
		&s.LastIP, &s.UserAgent, &s.GlobalEpoch, &s.PrincipalEpoch); err != nil {
		return nil, err
	}
	if len(hash) != len(s.Hash) {
		return nil, fmt.Errorf("stored hash has %d bytes, want %d", len(hash), len(s.Hash))
	}
	copy(s.Hash[:], hash)
	s.Created, s.LastSeen = fromMicros(created), fromMicros(seen)
	s.IdleDeadline, s.Expires = fromMicros(idle), fromMicros(expires)
	return &s, nil
}

// Update stores s's mutable fields if s.Version is the stored version, and
// increments s.Version. See store.Store.
func (st *Store) Update(ctx context.Context, s *store.Session) error {
	if s == nil {
		return errors.New("sqlitestore: update: nil session")
	}
	now := micros(st.now())
	res, err := st.update.ExecContext(ctx, s.Data, micros(s.IdleDeadline), micros(s.LastSeen),
		s.LastIP, s.UserAgent, s.Hash[:], s.Version, now)
	if err != nil {
		return fmt.Errorf("sqlitestore: update %s: %w", s.Hash.Fingerprint(), err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlitestore: update %s: %w", s.Hash.Fingerprint(), err)
	} else if n == 1 {
		s.Version++
		return nil
	}
	// Nothing changed: either the session is gone or the version moved on.
	var stored int64
	err = st.versionOf.QueryRowContext(ctx, s.Hash[:], now).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlitestore: update %s: %w", s.Hash.Fingerprint(), store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlitestore: update %s: %w", s.Hash.Fingerprint(), err)
	}
	// If stored == s.Version another writer changed the row and changed it
	// back between the two statements; asking the caller to retry is safe.
	return fmt.Errorf("sqlitestore: update %s: version %d, stored %d: %w",
		s.Hash.Fingerprint(), s.Version, stored, store.ErrConflict)
}

// Touch records a use of the session. See store.Store.
func (st *Store) Touch(ctx context.Context, h store.Hash, seen, idleDeadline time.Time, ip, userAgent string) error {
	res, err := st.touch.ExecContext(ctx, micros(seen), micros(idleDeadline), ip, userAgent, h[:], micros(st.now()))
	if err != nil {
		return fmt.Errorf("sqlitestore: touch %s: %w", h.Fingerprint(), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlitestore: touch %s: %w", h.Fingerprint(), err)
	}
	if n == 0 {
		return fmt.Errorf("sqlitestore: touch %s: %w", h.Fingerprint(), store.ErrNotFound)
	}
	return nil
}

// Delete removes the session with hash h, if there is one.
func (st *Store) Delete(ctx context.Context, h store.Hash) error {
	if _, err := st.del.ExecContext(ctx, h[:]); err != nil {
		return fmt.Errorf("sqlitestore: delete %s: %w", h.Fingerprint(), err)
	}
	return nil
}

// RevokeFingerprints deletes the sessions with the given fingerprints, in
// one transaction, and returns how many of them were live. Unknown and
// malformed fingerprints are ignored. Each fingerprint is a range scan on
// the primary key.
func (st *Store) RevokeFingerprints(ctx context.Context, fps []string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sqlitestore: revoke fingerprints: %w", err)
	}
	seen := make(map[string]bool, len(fps))
	var ranges [][2][]byte
	for _, fp := range fps {
		if !store.ValidFingerprint(fp) || seen[fp] {
			continue
		}
		seen[fp] = true
		prefix, err := hex.DecodeString(fp)
		if err != nil {
			continue // unreachable: ValidFingerprint checked the form
		}
		lo := make([]byte, 32)
		hi := make([]byte, 32)
		copy(lo, prefix)
		copy(hi, prefix)
		for i := len(prefix); i < len(hi); i++ {
			hi[i] = 0xff
		}
		ranges = append(ranges, [2][]byte{lo, hi})
	}
	if len(ranges) == 0 {
		return 0, nil
	}
	now := micros(st.now())
	tx, err := st.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: revoke fingerprints: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	stmt := tx.StmtContext(ctx, st.revokeRange)
	n := 0
	for _, r := range ranges {
		rows, err := stmt.QueryContext(ctx, r[0], r[1], now)
		if err != nil {
			return 0, fmt.Errorf("sqlitestore: revoke fingerprints: %w", err)
		}
		for rows.Next() {
			var live bool
			if err := rows.Scan(&live); err != nil {
				rows.Close()
				return 0, fmt.Errorf("sqlitestore: revoke fingerprints: %w", err)
			}
			if live {
				n++
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return 0, fmt.Errorf("sqlitestore: revoke fingerprints: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlitestore: revoke fingerprints: %w", err)
	}
	return n, nil
}

// RevokePrincipal makes every existing session of principal absent by
// bumping the principal's epoch.
func (st *Store) RevokePrincipal(ctx context.Context, principal string) error {
	if principal == "" {
		return errors.New("sqlitestore: revoke principal: empty principal")
	}
	if _, err := st.revokePrincipal.ExecContext(ctx, principal); err != nil {
		return fmt.Errorf("sqlitestore: revoke principal: %w", err)
	}
	return nil
}

// RevokeAll makes every existing session absent by bumping the global epoch.
func (st *Store) RevokeAll(ctx context.Context) error {
	if _, err := st.revokeAll.ExecContext(ctx); err != nil {
		return fmt.Errorf("sqlitestore: revoke all: %w", err)
	}
	return nil
}

// List returns the live sessions selected by opt, newest LastSeen first
// (ties: newest Created first, then by hash).
func (st *Store) List(ctx context.Context, opt store.ListOptions) ([]*store.Session, error) {
	if opt.Limit < 0 {
		return nil, fmt.Errorf("sqlitestore: list: negative limit %d", opt.Limit)
	}
	limit := int64(opt.Limit)
	if limit == 0 {
		limit = -1 // SQLite: no limit
	}
	now := micros(st.now())
	var (
		rows *sql.Rows
		err  error
	)
	if opt.Principal == "" {
		rows, err = st.listAll.QueryContext(ctx, now, limit)
	} else {
		rows, err = st.listPrincipal.QueryContext(ctx, now, opt.Principal, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list: %w", err)
	}
	defer rows.Close()
	var out []*store.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: list: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list: %w", err)
	}
	return out, nil
}

// DeleteExpired removes every session that is not live at now (expired, or
// revoked by an epoch bump) and returns how many it removed. It scans the
// whole table in one write transaction; run it in the background.
func (st *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	res, err := st.deleteExpired.ExecContext(ctx, micros(now))
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: delete expired: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: delete expired: %w", err)
	}
	return int(n), nil
}

// Len returns the number of sessions in the file, live or not yet swept. It
// is meant for tests and metrics.
func (st *Store) Len(ctx context.Context) (int, error) {
	var n int
	if err := st.count.QueryRowContext(ctx).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlitestore: count: %w", err)
	}
	return n, nil
}
