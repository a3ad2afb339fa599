package sqlitestore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
)

// The writer connection also serves Finds, whenever no write is using it.
// Every commit made through another connection of the file drops the page
// cache of a read-only connection, so after each write a reader reads the
// pages of the next Find again from the OS; the connection that made the
// commit keeps its cache, which is still exact. Reads on it are the same
// reads: each statement starts its own read transaction and sees every
// commit made before it, by this process or any other.
//
// Who may use the writer connection is decided by a token (Store.wtoken),
// taken by every write for the length of a statement or transaction and
// given back after. A write waits for the token; a Find only tries to take
// it, and reads on a read-only connection if a write holds it, so a Find
// never waits for a write and a write waits for at most one Find (Go
// hands a returned token to a write already waiting before a Find can
// try again). A store made by New, on the application's pool, has no
// token and no writer connection of its own.

// hot holds the statements of the requests' path, Find, Update and Touch,
// prepared on the driver connection dc of the writer, and their argument
// buffers. Only the holder of the token uses it.
type hot struct {
	dc            any
	find          *findStmt
	update, touch driver.StmtExecContext
	args          [8]driver.NamedValue
}

var errClosed = errors.New("store is closed")

// lockWriter waits for the writer token, or for ctx to be done. The
// caller must call st.unlockWriter when it is done with the writer. On a
// store made by New it does nothing.
func (st *Store) lockWriter(ctx context.Context) error {
	if st.wtoken == nil {
		return nil
	}
	select {
	case <-st.wtoken:
		return nil
	default:
	}
	select {
	case <-st.wtoken:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (st *Store) unlockWriter() {
	if st.wtoken != nil {
		st.wtoken <- struct{}{}
	}
}

// onWriter runs f holding the writer token.
func (st *Store) onWriter(ctx context.Context, f func() error) error {
	if err := st.lockWriter(ctx); err != nil {
		return err
	}
	defer st.unlockWriter()
	return f()
}

// tryLockWriter takes the writer token if it is free at once, and reports
// whether it did.
func (st *Store) tryLockWriter() bool {
	select {
	case <-st.wtoken:
		return true
	default:
		return false
	}
}

// withHot runs f on the writer connection with the hot statements
// prepared on it. The caller holds the token.
func (st *Store) withHot(ctx context.Context, f func(*hot) error) error {
	if st.closed.Load() {
		return errClosed
	}
	conn, err := st.writer.Conn(ctx)
	if err != nil {
		return err
	}
	err = conn.Raw(func(dc any) error {
		if st.hot == nil || st.hot.dc != dc {
			// First use, or database/sql replaced a broken connection.
			h, err := prepareHot(ctx, dc)
			if err != nil {
				return err
			}
			st.hot = h
		}
		return f(st.hot)
	})
	return errors.Join(err, conn.Close())
}

func prepareHot(ctx context.Context, dc any) (*hot, error) {
	p, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, errors.New("driver cannot prepare with a context")
	}
	find, err := prepareFind(ctx, dc)
	if err != nil {
		return nil, err
	}
	h := &hot{dc: dc, find: find}
	for _, s := range []struct {
		dst   *driver.StmtExecContext
		query string
	}{{&h.update, qUpdate}, {&h.touch, qTouch}} {
		ds, err := p.PrepareContext(ctx, s.query)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("prepare: %w in %s", err, s.query), h.close())
		}
		e, ok := ds.(driver.StmtExecContext)
		if !ok {
			return nil, errors.Join(errors.New("driver statement cannot run with a context"), ds.Close(), h.close())
		}
		*s.dst = e
	}
	for i := range h.args {
		h.args[i].Ordinal = i + 1
	}
	return h, nil
}

// exec runs s, one of h's statements, with args as ?1, ?2, … and returns
// how many rows it changed.
func (h *hot) exec(ctx context.Context, s driver.StmtExecContext, args ...driver.Value) (int64, error) {
	ctx, err := unwatched(ctx)
	if err != nil {
		return 0, err
	}
	named := h.args[:len(args)]
	for i, a := range args {
		named[i].Value = a
	}
	res, err := s.ExecContext(ctx, named)
	for i := range named {
		named[i].Value = nil
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// unwatched returns ctx's error if it is done, and otherwise a context
// for one of the hot statements that the driver need not watch. Under a
// context that can end, the driver starts a goroutine per statement to
// interrupt it when the context ends; a hot statement touches one row and
// takes microseconds (a wait for another process's lock is bounded by
// busy_timeout), and a write once begun is better finished than
// interrupted for a client that went away.
func unwatched(ctx context.Context) (context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.Background(), nil
}

// close closes the statements h has prepared. The caller holds the token.
func (h *hot) close() error {
	var errs []error
	for _, s := range []any{h.update, h.touch} {
		if s != nil {
			errs = append(errs, s.(driver.Stmt).Close())
		}
	}
	return errors.Join(append(errs, h.find.close())...)
}
