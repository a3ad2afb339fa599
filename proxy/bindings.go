package proxy

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Binding ties an app session (by fingerprint) to the browser device it was
// first issued to or first presented by.
type Binding struct {
	// Device is the fingerprint of the device cookie.
	Device string
	// Principal is the user the app named when it issued the session, if it
	// names users (-user-header); "" otherwise.
	Principal string
	// Created is when the binding was made.
	Created time.Time
	// Presented marks a binding made because a device presented a session
	// the proxy had not seen the app issue. Such bindings are kept in a
	// smaller class of their own (Limits.MaxPresented), are not written to
	// a bindings file, and move to the issued class when the app sets the
	// session in a response to the same device.
	Presented bool
	// epoch is the revoke-all epoch the binding was made under.
	epoch int64
}

// BindingStore is where the proxy keeps which app session belongs to which
// device and which sessions are revoked at the edge. Get is on every
// request's path and answers from memory; Bind may ask a shared store.
// Bindings (memory, optionally persisted in SQLite) serves one node;
// RedisBindings serves many.
type BindingStore interface {
	// Get returns the state of fp and its binding, from memory. Unbound
	// means "not known here": the caller then calls Bind.
	Get(fp string) (Binding, State)
	// Bind binds fp to bd.Device unless it is bound already, and returns
	// the binding in force and its state (first binding wins; a revoked
	// fingerprint is never bound again). When the binding cannot be
	// checked it returns Unbound and an error, and the proxy fails closed.
	Bind(ctx context.Context, fp string, bd Binding) (Binding, State, error)
	// Revoke revokes fingerprints at the edge, on every node sharing the
	// store.
	Revoke(ctx context.Context, fps []string) error
	// RevokeAll revokes every session bound so far.
	RevokeAll(ctx context.Context) error
}

// Bindings is the proxy's memory of which app session belongs to which
// device, and which sessions are revoked at the edge, for one node. Lookups
// are answered from memory; with a SQLite file (OpenBindings) it writes
// through and picks up revocations made by other processes within its poll
// interval.
type Bindings struct {
	tab     *table
	mu      sync.RWMutex // guards revoked and epoch
	revoked map[string]bool
	epoch   int64

	db       *sql.DB
	pollMu   sync.Mutex // serializes poll; guards lastSeq
	lastSeq  int64
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// NewBindings returns bindings kept in memory only, with the default
// Limits.
func NewBindings() *Bindings { return NewBindingsLimited(Limits{}) }

// NewBindingsLimited returns bindings kept in memory only, bounded by l.
func NewBindingsLimited(l Limits) *Bindings {
	return &Bindings{tab: newTable(l), revoked: map[string]bool{}}
}

// State of a session fingerprint at the edge.
type State int

const (
	// Unbound: the proxy has not seen the session yet.
	Unbound State = iota
	// Bound: the session belongs to a device.
	Bound
	// Revoked: the session is revoked at the edge and is stripped.
	Revoked
)

// Get returns the state of fp and its binding, and marks it used.
func (b *Bindings) Get(fp string) (Binding, State) {
	bd, ok, _, _ := b.tab.get(fp, b.tab.now().UnixNano(), nil)
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.revoked[fp] {
		return Binding{}, Revoked
	}
	if !ok {
		return Binding{}, Unbound
	}
	if bd.epoch < b.epoch {
		return bd, Revoked
	}
	return bd, Bound
}

// Bind binds fp to bd.Device unless it is bound already; it returns the
// binding in force and its state (a revoked fingerprint is never bound
// again). A binding without Presented is written to the bindings file, if
// any; so is a presented one when it is bound again without Presented.
func (b *Bindings) Bind(ctx context.Context, fp string, bd Binding) (Binding, State, error) {
	b.mu.RLock()
	revoked, epoch := b.revoked[fp], b.epoch
	b.mu.RUnlock()
	if revoked {
		return Binding{}, Revoked, nil
	}
	bd.epoch = epoch
	cur, fresh, promoted := b.tab.put(fp, bd, b.tab.now().UnixNano())
	if !fresh && !promoted {
		if cur.epoch < b.epochNow() {
			return cur, Revoked, nil
		}
		return cur, Bound, nil
	}
	if b.db != nil && !cur.Presented {
		_, err := b.db.ExecContext(ctx, `INSERT OR IGNORE INTO bindings (fp, device, principal, created, epoch) VALUES (?, ?, ?, ?, ?)`,
			fp, cur.Device, cur.Principal, cur.Created.UnixNano(), cur.epoch)
		if err != nil {
			return cur, Bound, fmt.Errorf("proxy: persist binding: %w", err)
		}
	}
	if cur.epoch < b.epochNow() {
		return cur, Revoked, nil
	}
	return cur, Bound, nil
}

func (b *Bindings) epochNow() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.epoch
}

// Revoke revokes the given fingerprints at the edge: from now on the proxy
// strips them from requests and blocks them in responses.
func (b *Bindings) Revoke(ctx context.Context, fps []string) error {
	if b.db == nil {
		b.mu.Lock()
		for _, fp := range fps {
			b.revoked[fp] = true
		}
		b.mu.Unlock()
		return nil
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("proxy: revoke: %w", err)
	}
	defer tx.Rollback()
	for _, fp := range fps {
		if _, err := tx.ExecContext(ctx, `INSERT INTO revocations (fp) VALUES (?)`, fp); err != nil {
			return fmt.Errorf("proxy: revoke: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("proxy: revoke: %w", err)
	}
	return b.poll(ctx) // the file is the truth: apply what it now says
}

// RevokeAll revokes every session bound so far.
func (b *Bindings) RevokeAll(ctx context.Context) error {
	if b.db == nil {
		b.mu.Lock()
		b.epoch++
		b.mu.Unlock()
		return nil
	}
	if _, err := b.db.ExecContext(ctx, `INSERT INTO revocations (fp) VALUES ('*')`); err != nil {
		return fmt.Errorf("proxy: revoke all: %w", err)
	}
	return b.poll(ctx)
}

// Count returns how many sessions are bound and not revoked.
func (b *Bindings) Count() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := 0
	b.tab.each(func(fp string, bd Binding) {
		if !b.revoked[fp] && bd.epoch >= b.epoch {
			n++
		}
	})
	return n
}

// Sizes returns how many bindings of each class the memory holds (issued,
// presented-only), live or expired but not yet dropped.
func (b *Bindings) Sizes() (issued, presented int) { return b.tab.counts() }

const bindingsSchema = `
CREATE TABLE IF NOT EXISTS bindings (
	fp        TEXT PRIMARY KEY,
	device    TEXT NOT NULL,
	principal TEXT NOT NULL,
	created   INTEGER NOT NULL,
	epoch     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revocations (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	fp  TEXT NOT NULL -- a fingerprint, or '*' for everything bound so far
);`

// OpenBindings opens (creating if needed) bindings persisted in the SQLite
// file at path. Everything is loaded into memory; new bindings are written
// through, and revocations written to the file by any process (such as
// `cordon revoke -store proxy:PATH`) are picked up every poll interval
// (default 250 ms).
//
// The memory holds at most the default Limits; OpenBindingsLimited takes
// others.
func OpenBindings(path string, poll time.Duration) (*Bindings, error) {
	return OpenBindingsLimited(path, poll, Limits{})
}

// OpenBindingsLimited is OpenBindings with the memory bounded by l. The
// file holds the sessions the app issued; at startup the most recently
// made ones, up to l.MaxIssued, are loaded.
func OpenBindingsLimited(path string, poll time.Duration, l Limits) (*Bindings, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("proxy: open bindings %s: %w", path, err)
	}
	if _, err := db.Exec(bindingsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("proxy: open bindings %s: %w", path, err)
	}
	b := NewBindingsLimited(l)
	b.db = db
	rows, err := db.Query(`SELECT fp, device, principal, created, epoch FROM bindings ORDER BY created DESC LIMIT ?`, b.tab.lim.MaxIssued)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("proxy: load bindings: %w", err)
	}
	for rows.Next() {
		var fp string
		var bd Binding
		var created int64
		if err := rows.Scan(&fp, &bd.Device, &bd.Principal, &created, &bd.epoch); err != nil {
			rows.Close()
			db.Close()
			return nil, fmt.Errorf("proxy: load bindings: %w", err)
		}
		bd.Created = time.Unix(0, created)
		b.tab.load(fp, bd, b.tab.now().UnixNano())
	}
	rows.Close()
	if err := b.poll(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	go b.pollLoop(poll)
	return b, nil
}

// RevokeInFile records revocations in the bindings file at path, for proxies
// that have it open to pick up; it is what `cordon revoke -store proxy:PATH`
// does. An empty fps with all set revokes everything bound so far.
func RevokeInFile(ctx context.Context, path string, fps []string, all bool) error {
	b, err := OpenBindings(path, time.Hour)
	if err != nil {
		return err
	}
	defer b.Close()
	if all {
		return b.RevokeAll(ctx)
	}
	return b.Revoke(ctx, fps)
}

// CountInFile returns how many sessions the bindings file at path holds
// bound and not revoked, and which of fps are among them.
func CountInFile(path string, fps []string) (bound int, known []string, err error) {
	b, err := OpenBindings(path, time.Hour)
	if err != nil {
		return 0, nil, err
	}
	defer b.Close()
	for _, fp := range fps {
		if _, st := b.Get(fp); st == Bound {
			known = append(known, fp)
		}
	}
	return b.Count(), known, nil
}

func (b *Bindings) pollLoop(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every*4)
			_ = b.poll(ctx) // a failed poll is retried at the next tick
			cancel()
		}
	}
}

func (b *Bindings) poll(ctx context.Context) error {
	b.pollMu.Lock()
	defer b.pollMu.Unlock()
	rows, err := b.db.QueryContext(ctx, `SELECT seq, fp FROM revocations WHERE seq > ? ORDER BY seq`, b.lastSeq)
	if err != nil {
		return fmt.Errorf("proxy: poll revocations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var fp string
		if err := rows.Scan(&seq, &fp); err != nil {
			return fmt.Errorf("proxy: poll revocations: %w", err)
		}
		b.mu.Lock()
		if fp == "*" {
			b.epoch++
		} else {
			b.revoked[fp] = true
		}
		b.mu.Unlock()
		b.lastSeq = seq
	}
	return rows.Err()
}

// Close stops polling and closes the file.
func (b *Bindings) Close() error {
	if b.db == nil {
		return nil
	}
	b.stopOnce.Do(func() { close(b.stop) })
	<-b.done
	return b.db.Close()
}
