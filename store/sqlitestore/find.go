package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/cordon-sec/cordon/store"
)

// Find runs on every request, so it skips database/sql's per-query
// machinery: each finder owns one read-only connection with the Find query
// prepared on the driver, and its argument and result buffers. That saves
// about a quarter of Find's CPU time and a third of its allocations. The
// query is the same one prepared statement as ever: key, both deadlines and
// both epochs in one read.
//
// The query answers one column, the row packed by findRow, rather than the
// session's eleven: the driver turns the name and declared type of every
// column into Go strings on every query, and reads each value with calls
// that take the connection's mutex, which made that half of a Find.
const findQuery = `SELECT ` + findRow + ` FROM sessions s WHERE s.hash = ?1 AND `

// findRow packs a session row into one BLOB: the decimal numbers version,
// created, last_seen, idle_deadline, expires, global_epoch, principal_epoch
// and the byte lengths of principal, last_ip and user_agent, each followed
// by a space, then the bytes of principal, last_ip, user_agent and data.
// decodeFound reads it back. The lengths are of the bytes (octet_length):
// length() counts the characters of a TEXT. Concatenating a BLOB copies its
// bytes unchanged.
const findRow = `CAST(printf('%d %d %d %d %d %d %d %d %d %d ', s.version, s.created, s.last_seen,
	s.idle_deadline, s.expires, s.global_epoch, s.principal_epoch, octet_length(s.principal),
	octet_length(s.last_ip), octet_length(s.user_agent))
	|| s.principal || s.last_ip || s.user_agent || s.data AS BLOB)`

type finder struct {
	conn *sql.Conn
	q    *findStmt
}

// findStmt is the Find query prepared on one driver connection, with its
// argument and result buffers. Its owner runs it on that connection.
type findStmt struct {
	stmt driver.StmtQueryContext
	key  [32]byte
	args []driver.NamedValue
	dest []driver.Value
}

// prepareFind prepares the Find query on dc, a driver connection.
func prepareFind(ctx context.Context, dc any) (*findStmt, error) {
	p, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, errors.New("driver cannot prepare with a context")
	}
	query := findQuery + liveWhere("s", "?2")
	ds, err := p.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w in %s", err, query)
	}
	q, ok := ds.(driver.StmtQueryContext)
	if !ok {
		ds.Close()
		return nil, errors.New("driver statement cannot query with a context")
	}
	f := &findStmt{stmt: q, dest: make([]driver.Value, 1)}
	f.args = []driver.NamedValue{{Ordinal: 1, Value: f.key[:]}, {Ordinal: 2}}
	return f, nil
}

func (f *findStmt) close() error { return f.stmt.(driver.Stmt).Close() }

// newFinders opens n finders on the read pool.
func newFinders(ctx context.Context, db *sql.DB, n int) (chan *finder, error) {
	ch := make(chan *finder, n)
	for i := 0; i < n; i++ {
		conn, err := db.Conn(ctx)
		if err != nil {
			closeFinders(ch, len(ch))
			return nil, err
		}
		f := &finder{conn: conn}
		err = conn.Raw(func(dc any) (err error) {
			f.q, err = prepareFind(ctx, dc)
			return err
		})
		if err != nil {
			conn.Close()
			closeFinders(ch, len(ch))
			return nil, err
		}
		ch <- f
	}
	return ch, nil
}

// closeFinders takes n finders from ch (waiting for those out on a Find),
// closes them, and puts them back closed, so that a Find after Close fails
// with an error instead of blocking.
func closeFinders(ch chan *finder, n int) error {
	var errs []error
	taken := make([]*finder, 0, n)
	for i := 0; i < n; i++ {
		f := <-ch
		taken = append(taken, f)
		if f.q != nil {
			errs = append(errs, f.conn.Raw(func(any) error { return f.q.close() }))
		}
		errs = append(errs, f.conn.Close())
	}
	for _, f := range taken {
		ch <- f
	}
	return errors.Join(errs...)
}

// find runs the Find query on f. The caller owns f.
func (f *finder) find(ctx context.Context, h store.Hash, now int64) (*store.Session, error) {
	var s *store.Session
	err := f.conn.Raw(func(any) error {
		var err error
		s, err = f.q.run(ctx, h, now)
		return err
	})
	return s, err
}

// run runs the query for the session with hash h, live at now; it returns
// nil and no error if there is none.
func (f *findStmt) run(ctx context.Context, h store.Hash, now int64) (*store.Session, error) {
	ctx, err := unwatched(ctx)
	if err != nil {
		return nil, err
	}
	copy(f.key[:], h[:])
	f.args[1].Value = now
	rows, err := f.stmt.QueryContext(ctx, f.args)
	if err != nil {
		return nil, err
	}
	err = rows.Next(f.dest)
	cerr := rows.Close()
	if errors.Is(err, io.EOF) {
		return nil, cerr // no live session
	}
	if err != nil {
		return nil, err
	}
	s, err := decodeFound(h, f.dest)
	clear(f.dest)
	if err = errors.Join(err, cerr); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeFound turns a row of findQuery, one packed column (see findRow),
// into a session. The session's Data is a slice of the row, which the
// driver allocated for this query alone; the three strings share one copy.
func decodeFound(h store.Hash, v []driver.Value) (*store.Session, error) {
	row, ok := v[0].([]byte)
	if !ok {
		return nil, fmt.Errorf("find: column holds %T", v[0])
	}
	var n [10]int64
	rest := row
	for i := range n {
		sp := bytes.IndexByte(rest, ' ')
		x, ok := parseDecimal(rest[:max(sp, 0)])
		if sp < 0 || !ok {
			return nil, errors.New("find: malformed row")
		}
		n[i], rest = x, rest[sp+1:]
	}
	np, ni, nu := n[7], n[8], n[9]
	if np < 0 || ni < 0 || nu < 0 || np+ni+nu > int64(len(rest)) {
		return nil, errors.New("find: malformed row: lengths past its end")
	}
	text := string(rest[:np+ni+nu])
	data := rest[np+ni+nu:]
	s := &store.Session{Hash: h, Principal: text[:np], LastIP: text[np : np+ni], UserAgent: text[np+ni:],
		Version: n[0], GlobalEpoch: n[5], PrincipalEpoch: n[6]}
	if len(data) > 0 {
		s.Data = data[:len(data):len(data)]
	}
	s.Created, s.LastSeen = fromMicros(n[1]), fromMicros(n[2])
	s.IdleDeadline, s.Expires = fromMicros(n[3]), fromMicros(n[4])
	return s, nil
}

// parseDecimal reads b, an int64 as printf's %d writes it. It reports
// false for anything else: an empty b, a character that is not a digit, a
// value out of range.
func parseDecimal(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= 1<<63:
		return int64(-u), true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// Find returns the live session with hash h, or store.ErrNotFound. One
// prepared query on a read-only connection checks the key, both deadlines
// and both epochs; it sees every commit made before it started, by this
// process or any other (a `cordon revoke` run included).
func (st *Store) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: find %s: %w", h.Fingerprint(), err)
	}
	if st.finders == nil {
		return st.findShared(ctx, h)
	}
	// The query is one primary-key read, and a WAL reader waits for a lock
	// only while another connection recovers the WAL after a crash (bounded
	// by busy_timeout), so it runs without the context's cancellation: with
	// a cancelable context the driver would start a goroutine per query to
	// watch it. The context was checked above and while waiting for a
	// connection.
	qctx := context.WithoutCancel(ctx)
	var (
		s   *store.Session
		err error
	)
	if st.tryLockWriter() {
		// The writer is idle: its page cache holds what the last writes
		// wrote (see writer.go).
		err = st.withHot(ctx, func(w *hot) error {
			var err error
			s, err = w.find.run(qctx, h, micros(st.now()))
			return err
		})
		st.unlockWriter()
	} else {
		var f *finder
		select {
		case f = <-st.finders:
		case <-ctx.Done():
			return nil, fmt.Errorf("sqlitestore: find %s: %w", h.Fingerprint(), ctx.Err())
		}
		s, err = f.find(qctx, h, micros(st.now()))
		st.finders <- f
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: find %s: %w", h.Fingerprint(), err)
	}
	if s == nil {
		return nil, fmt.Errorf("sqlitestore: find %s: %w", h.Fingerprint(), store.ErrNotFound)
	}
	return s, nil
}

// findShared is Find on a store made by New, through database/sql.
func (st *Store) findShared(ctx context.Context, h store.Hash) (*store.Session, error) {
	var row []byte
	err := st.find.QueryRowContext(ctx, h[:], micros(st.now())).Scan(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlitestore: find %s: %w", h.Fingerprint(), store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: find %s: %w", h.Fingerprint(), err)
	}
	s, err := decodeFound(h, []driver.Value{row})
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: find %s: %w", h.Fingerprint(), err)
	}
	return s, nil
}
