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
// written by a newer cordon fails with ErrSchemaTooNew. With
// Options.ExistingOnly, Open creates and migrates nothing and refuses a
// missing file or one without this build's schema (ErrNoStore); `cordon
// revoke` opens stores that way. New takes a *sql.DB the application has
// already opened.
//
// DeleteExpired sweeps in short batches (about 5 ms each), so a log-in that
// needs the writer meanwhile waits for one batch, not for the sweep.
//
// # Connections
//
// SQLite allows one writer at a time. The store keeps one connection for
// every write, so writes queue in Go instead of spinning on SQLITE_BUSY, and
// read-only connections, which in WAL mode never wait for the writer. Find,
// which runs on every request, reads on the writer connection whenever no
// write is using it: after its own commits that connection's page cache is
// still exact, where a read-only connection would read the changed pages
// again. While a write holds the writer, Find reads on one of
// Options.Readers read-only connections of its own instead, so a Find never
// waits for a write. Find, Update and Touch run statements prepared once per
// connection on the driver (see find.go and writer.go); List shares one more
// read-only connection.
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

	"github.com/cordon-sec/cordon/internal/migrate"
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
	// Readers is how many read-only connections serve Find besides the
	// writer connection (which serves Find while no write uses it), that is
	// how many Finds run at once while the store writes; more wait their
	// turn. Zero means max(4, GOMAXPROCS). New ignores it.
	Readers int
	// ExistingOnly opens only a store that exists with this build's
	// schema, and never creates or migrates one: a missing file, a file
	// without cordon's tables or with an older schema gives ErrNoStore.
	// Tools that must not create a store by mistake (`cordon revoke`) set
	// it; applications leave it false, so that opening migrates.
	ExistingOnly bool
	// SweepBatch is how many rows DeleteExpired examines per transaction.
	// Zero adapts it so that each batch takes about 5 ms, whatever the
	// machine's load. Between batches every other write gets its turn.
	SweepBatch int
}

// Store is a store.Full in one SQLite file. Create it with Open and release
// it with Close; it is safe for concurrent use.
type Store struct {
	now    func() time.Time
	writer *sql.DB // one connection: every write goes through it
	reader *sql.DB // read-only pool

	create, update, touch, del, versionOf   *sql.Stmt
	revokeRange, revokePrincipal, revokeAll *sql.Stmt
	sweepBatch, rowids, count               *sql.Stmt
	countAll, countPrincipal                *sql.Stmt
	listAll, listPrincipal                  *sql.Stmt

	finders chan *finder  // Find's own read connections; nil after New
	wtoken  chan struct{} // who may use the writer (see writer.go); nil after New
	hot     *hot          // the writer's hot statements; the token's holder uses it
	find    *sql.Stmt     // Find's query when there are no finders (New)
	own     bool          // whether Close closes writer and reader
	sweep   int           // rows per DeleteExpired batch
	closed  atomic.Bool
}

var (
	_ store.Full            = (*Store)(nil)
	_ store.CountingRevoker = (*Store)(nil)
)

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
	qRevokeAll = `UPDATE global_epoch SET epoch = epoch + 1 WHERE id = 1`
	// qSweepBatch deletes the dead sessions among the rowids [?2, ?3): a
	// range of the table's b-tree, so each batch reads a bounded number of
	// rows wherever the dead ones are.
	qSweepBatch = `DELETE FROM sessions AS s WHERE s.rowid >= ?2 AND s.rowid < ?3
	AND NOT (` + liveWhere("s", "?1") + `)`
	qRowids         = `SELECT coalesce(min(rowid), 0), coalesce(max(rowid), 0) FROM sessions`
	qCount          = `SELECT count(*) FROM sessions`
	qCountAll       = `SELECT count(*) FROM sessions s WHERE ` + liveWhere("s", "?1")
	qCountPrincipal = `SELECT count(*) FROM sessions s WHERE s.principal = ?2 AND ` + liveWhere("s", "?1")
	qListAll        = `SELECT ` + columns + ` FROM sessions s WHERE ` + liveWhere("s", "?1") + `
	ORDER BY s.last_seen DESC, s.created DESC, s.hash LIMIT ?2`
	qListPrincipal = `SELECT ` + columns + ` FROM sessions s WHERE s.principal = ?2 AND ` + liveWhere("s", "?1") + `
	ORDER BY s.last_seen DESC, s.created DESC, s.hash LIMIT ?3`
)

// Open opens (creating it if needed) the store in the SQLite file at path
// and brings its schema up to date. The directory must exist. With
// Options.ExistingOnly it creates and migrates nothing.
func Open(path string, opt Options) (*Store, error) {
	ms, err := builtinMigrations()
	if err != nil {
		return nil, err
	}
	return openWith(path, opt, ms)
}

// New returns a store on db, a database the application has already opened
// with the "sqlite" driver (modernc.org/sqlite), and brings its schema up to
// date (with Options.ExistingOnly it only checks it). The store reads and
// writes through db's pool, which the application configures: open it in
// WAL mode with a busy timeout, for example
//
//	sql.Open("sqlite", "app.db?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
//
// and with db.SetMaxOpenConns(1) if the application writes a lot, so that
// writes queue in Go rather than retrying on SQLITE_BUSY. Open keeps a
// writer connection and read-only connections of its own and is faster;
// New is for an application that already has its *sql.DB. Close does not
// close db.
func New(db *sql.DB, opt Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlitestore: new: nil *sql.DB")
	}
	ms, err := builtinMigrations()
	if err != nil {
		return nil, err
	}
	st := newStore(opt, db, db, false)
	ctx := context.Background()
	if opt.ExistingOnly {
		err = checkSchema(ctx, db, ms)
	} else {
		err = migrateDB(ctx, db, ms)
	}
	if err == nil {
		err = st.prepare(ctx)
	}
	if err == nil {
		err = prepOne(ctx, db, &st.find, findQuery+liveWhere("s", "?2"))
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("sqlitestore: new: %w", err)
	}
	return st, nil
}

func newStore(opt Options, writer, reader *sql.DB, own bool) *Store {
	st := &Store{now: opt.Now, writer: writer, reader: reader, own: own, sweep: opt.SweepBatch}
	if st.now == nil {
		st.now = time.Now
	}

	return st
}

func prepOne(ctx context.Context, db *sql.DB, dst **sql.Stmt, query string) error {
	var err error
	*dst, err = db.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare: %w in %s", err, query)
	}
	return nil
}

// prepare prepares the statements of every method but Find.
func (st *Store) prepare(ctx context.Context) error {
	var err error
	prep := func(db *sql.DB, dst **sql.Stmt, query string) {
		if err == nil {
			err = prepOne(ctx, db, dst, query)
		}
	}
	prep(st.writer, &st.create, qCreate)
	prep(st.writer, &st.update, qUpdate)
	prep(st.writer, &st.versionOf, qVersionOf)
	prep(st.writer, &st.touch, qTouch)
	prep(st.writer, &st.del, qDel)
	prep(st.writer, &st.revokeRange, qRevokeRange)
	prep(st.writer, &st.revokePrincipal, qRevokePrincipal)
	prep(st.writer, &st.revokeAll, qRevokeAll)
	prep(st.writer, &st.sweepBatch, qSweepBatch)
	prep(st.writer, &st.rowids, qRowids)
	prep(st.writer, &st.count, qCount)
	prep(st.writer, &st.countAll, qCountAll)
	prep(st.writer, &st.countPrincipal, qCountPrincipal)
	prep(st.reader, &st.listAll, qListAll)
	prep(st.reader, &st.listPrincipal, qListPrincipal)
	return err
}

func openWith(path string, opt Options, ms []migrate.Step) (_ *Store, err error) {
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
	fi, statErr := os.Stat(path)
	if statErr == nil && fi.IsDir() {
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
	ctx := context.Background()
	if opt.ExistingOnly {
		// Look before opening for writing: opening creates a missing
		// file, and the WAL pragma writes to an existing one.
		if errors.Is(statErr, os.ErrNotExist) {
			return fail(fmt.Errorf("%w: no such file (create the store with `cordon migrate -store sqlite:PATH`, or by opening it from the application)", ErrNoStore))
		}
		if statErr != nil {
			return fail(fmt.Errorf("%w: %v", ErrNoStore, statErr))
		}
		if err := checkFile(ctx, path, busy, ms); err != nil {
			return fail(err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	// A larger page cache than SQLite's 2 MB default keeps the b-tree
	// pages a sweep batch or a burst of log-ins touches in memory.
	q.Add("_pragma", "cache_size(-16384)")
	q.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return fail(err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	st := newStore(opt, writer, nil, true)
	st.wtoken = make(chan struct{}, 1)
	st.wtoken <- struct{}{}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	if opt.ExistingOnly {
		err = checkSchema(ctx, writer, ms)
	} else {
		err = migrateDB(ctx, writer, ms)
	}
	if err != nil {
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

	if err = st.prepare(ctx); err != nil {
		return fail(err)
	}
	if st.finders, err = newFinders(ctx, st.reader, readers); err != nil {
		return fail(fmt.Errorf("prepare find: %w", err))
	}
	return st, nil
}

// checkFile fails unless the file at path holds this build's schema. It
// reads through a query-only connection, so it writes nothing.
func checkFile(ctx context.Context, path string, busy time.Duration, ms []migrate.Step) error {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	return checkSchema(ctx, db, ms)
}

// Close closes the database (not the *sql.DB given to New). Committed
// sessions are on disk already; Close only releases connections (the last
// one checkpoints the WAL).
func (st *Store) Close() error {
	if st.closed.Swap(true) {
		return nil
	}
	var errs []error
	if st.finders != nil {
		errs = append(errs, closeFinders(st.finders, cap(st.finders)))
	}
	if st.wtoken != nil {
		// Wait for the write or Find on the writer, if any, and close the
		// hot statements. Once the token is back, whoever takes it finds
		// the store closed.
		<-st.wtoken
		if st.hot != nil {
			if conn, err := st.writer.Conn(context.Background()); err != nil {
				errs = append(errs, err)
			} else {
				errs = append(errs, conn.Raw(func(dc any) error {
					if dc != st.hot.dc {
						return nil // prepared on a connection database/sql has closed
					}
					return st.hot.close()
				}), conn.Close())
			}
			st.hot = nil
		}
		st.wtoken <- struct{}{}
	}
	for _, s := range []*sql.Stmt{st.create, st.update, st.touch, st.del, st.versionOf,
		st.revokeRange, st.revokePrincipal, st.revokeAll, st.sweepBatch, st.rowids, st.count,
		st.countAll, st.countPrincipal, st.listAll, st.listPrincipal, st.find} {
		if s != nil {
			s.Close()
		}
	}
	if st.own {
		if st.reader != nil {
			errs = append(errs, st.reader.Close())
		}
		errs = append(errs, st.writer.Close())
	}
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
	if err := st.lockWriter(ctx); err != nil {
		return fmt.Errorf("sqlitestore: create %s: %w", s.Hash.Fingerprint(), err)
	}
	defer st.unlockWriter()
	now := micros(st.now())
	// The rows are read to the end, not just the first one (as QueryRow
	// would): SQLite commits an INSERT ... RETURNING when the statement
	// finishes, and runs the WAL's automatic checkpoint only when a step
	// reports that it has finished. A statement reset after its first row
	// commits in the reset, which skips the checkpoint, and the WAL then
	// grows with every Create.
	rows, err := st.create.QueryContext(ctx, s.Hash[:], s.Principal, s.Data,
		micros(s.Created), micros(s.LastSeen), micros(s.IdleDeadline), micros(s.Expires),
		s.LastIP, s.UserAgent, now)
	if err != nil {
		return fmt.Errorf("sqlitestore: create %s: %w", s.Hash.Fingerprint(), err)
	}
	var ge, pe int64
	created := false
	for rows.Next() {
		if err := rows.Scan(&ge, &pe); err != nil {
			rows.Close()
			return fmt.Errorf("sqlitestore: create %s: %w", s.Hash.Fingerprint(), err)
		}
		created = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("sqlitestore: create %s: %w", s.Hash.Fingerprint(), err)
	}
	if !created {
		return fmt.Errorf("sqlitestore: create %s: %w", s.Hash.Fingerprint(), store.ErrExists)
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
	if err := st.lockWriter(ctx); err != nil {
		return fmt.Errorf("sqlitestore: update %s: %w", s.Hash.Fingerprint(), err)
	}
	defer st.unlockWriter()
	var n int64
	var err error
	if st.wtoken == nil { // New: through the application's pool
		var res sql.Result
		if res, err = st.update.ExecContext(ctx, s.Data, micros(s.IdleDeadline), micros(s.LastSeen),
			s.LastIP, s.UserAgent, s.Hash[:], s.Version, now); err == nil {
			n, err = res.RowsAffected()
		}
	} else {
		err = st.withHot(ctx, func(h *hot) (err error) {
			n, err = h.exec(ctx, h.update, s.Data, micros(s.IdleDeadline), micros(s.LastSeen),
				s.LastIP, s.UserAgent, s.Hash[:], s.Version, now)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: update %s: %w", s.Hash.Fingerprint(), err)
	}
	if n == 1 {
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
	if err := st.lockWriter(ctx); err != nil {
		return fmt.Errorf("sqlitestore: touch %s: %w", h.Fingerprint(), err)
	}
	defer st.unlockWriter()
	var n int64
	var err error
	if st.wtoken == nil { // New: through the application's pool
		var res sql.Result
		if res, err = st.touch.ExecContext(ctx, micros(seen), micros(idleDeadline), ip, userAgent, h[:], micros(st.now())); err == nil {
			n, err = res.RowsAffected()
		}
	} else {
		err = st.withHot(ctx, func(w *hot) (err error) {
			n, err = w.exec(ctx, w.touch, micros(seen), micros(idleDeadline), ip, userAgent, h[:], micros(st.now()))
			return err
		})
	}
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
	if err := st.lockWriter(ctx); err != nil {
		return fmt.Errorf("sqlitestore: delete %s: %w", h.Fingerprint(), err)
	}
	defer st.unlockWriter()
	if _, err := st.del.ExecContext(ctx, h[:]); err != nil {
		return fmt.Errorf("sqlitestore: delete %s: %w", h.Fingerprint(), err)
	}
	return nil
}

// RevokeFingerprints deletes the sessions with the given fingerprints, in
// one transaction, and returns how many of them were live. Unknown
// fingerprints are ignored; a malformed one is an error matching
// store.ErrBadFingerprint and revokes nothing. Each fingerprint is a range
// scan on the primary key.
func (st *Store) RevokeFingerprints(ctx context.Context, fps []string) (int, error) {
	if err := store.CheckFingerprints(fps); err != nil {
		return 0, fmt.Errorf("sqlitestore: revoke fingerprints: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("sqlitestore: revoke fingerprints: %w", err)
	}
	seen := make(map[string]bool, len(fps))
	var ranges [][2][]byte
	for _, fp := range fps {
		if seen[fp] {
			continue
		}
		seen[fp] = true
		prefix, err := hex.DecodeString(fp)
		if err != nil {
			continue // unreachable: CheckFingerprints checked the form
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
	if err := st.lockWriter(ctx); err != nil {
		return 0, fmt.Errorf("sqlitestore: revoke fingerprints: %w", err)
	}
	defer st.unlockWriter()
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
	_, err := st.RevokePrincipalCount(ctx, principal)
	return err
}

// RevokePrincipalCount is RevokePrincipal that also returns how many live
// sessions the principal had, counted in the revoking transaction (see
// store.CountingRevoker).
func (st *Store) RevokePrincipalCount(ctx context.Context, principal string) (int, error) {
	if principal == "" {
		return 0, errors.New("sqlitestore: revoke principal: empty principal")
	}
	n, err := st.countAndBump(ctx, st.countPrincipal, []any{micros(st.now()), principal}, st.revokePrincipal, principal)
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: revoke principal: %w", err)
	}
	return n, nil
}

// RevokeAll makes every existing session absent by bumping the global epoch.
func (st *Store) RevokeAll(ctx context.Context) error {
	_, err := st.RevokeAllCount(ctx)
	return err
}

// RevokeAllCount is RevokeAll that also returns how many live sessions
// there were, counted in the revoking transaction (see
// store.CountingRevoker).
func (st *Store) RevokeAllCount(ctx context.Context) (int, error) {
	n, err := st.countAndBump(ctx, st.countAll, []any{micros(st.now())}, st.revokeAll)
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: revoke all: %w", err)
	}
	return n, nil
}

// countAndBump counts with count and then runs bump, in one write
// transaction, so that the count is of exactly the sessions the bump
// revokes.
func (st *Store) countAndBump(ctx context.Context, count *sql.Stmt, countArgs []any, bump *sql.Stmt, bumpArgs ...any) (int, error) {
	if err := st.lockWriter(ctx); err != nil {
		return 0, err
	}
	defer st.unlockWriter()
	tx, err := st.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	var n int
	if err := tx.StmtContext(ctx, count).QueryRowContext(ctx, countArgs...).Scan(&n); err != nil {
		return 0, err
	}
	if _, err := tx.StmtContext(ctx, bump).ExecContext(ctx, bumpArgs...); err != nil {
		return 0, err
	}
	return n, tx.Commit()
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
// revoked by an epoch bump) and returns how many it removed. It walks the
// table in batches of Options.SweepBatch rows, each its own short write
// transaction, so a log-in waiting for the writer waits for one batch, not
// for the whole sweep. It stops early, with what it has removed so far, if
// ctx is done.
func (st *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	var lo, hi int64
	if err := st.onWriter(ctx, func() error { return st.rowids.QueryRowContext(ctx).Scan(&lo, &hi) }); err != nil {
		return 0, fmt.Errorf("sqlitestore: delete expired: %w", err)
	}
	at := micros(now)
	total := 0
	batch := int64(st.sweep)
	adapt := batch <= 0
	if adapt {
		batch = 256
	}
	for from := lo; from <= hi; {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("sqlitestore: delete expired: %w", err)
		}
		start := time.Now()
		to := from + batch
		var n int64
		err := st.onWriter(ctx, func() error {
			res, err := st.sweepBatch.ExecContext(ctx, at, from, to)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sqlitestore: delete expired: %w", err)
		}
		total += int(n)
		from = to
		if adapt {
			// Aim for batches of about sweepTarget, so that a write
			// queued behind one waits about that long.
			switch took := time.Since(start); {
			case took < sweepTarget/2 && batch < 1<<16:
				batch *= 2
			case took > 2*sweepTarget && batch > 16:
				batch /= 2
			}
		}
	}
	return total, nil
}

// sweepTarget is how long one DeleteExpired batch should take.
const sweepTarget = 5 * time.Millisecond

// Len returns the number of sessions in the file, live or not yet swept. It
// is meant for tests and metrics.
func (st *Store) Len(ctx context.Context) (int, error) {
	var n int
	if err := st.onWriter(ctx, func() error { return st.count.QueryRowContext(ctx).Scan(&n) }); err != nil {
		return 0, fmt.Errorf("sqlitestore: count: %w", err)
	}
	return n, nil
}
