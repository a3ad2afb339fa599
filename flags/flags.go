// Package flags is cordon's feature-flag store, with Flipper's gates: a
// boolean gate (on for everyone), an actor list, a percentage of actors
// (deterministic: crc32 of flag name + actor id, as Flipper computes it) and
// groups whose predicates are registered in code at setup.
//
// Flags live in cordon's database, reached through database/sql: SQLite
// (modernc.org/sqlite) or PostgreSQL (github.com/jackc/pgx/v5/stdlib); the
// SQL is portable and a Dialect switch rewrites placeholders. The package
// imports no driver. Reads never touch the database: a refresher loads the whole
// table into a new immutable Snapshot and publishes it with one
// atomic.Pointer swap (invariant 5 of cordon's design). A reader sees one
// snapshot or the next, never a mix; a failed refresh keeps the last good
// snapshot and is reported through a background report scope, which can
// never carry request data — the 2021 incident began with exactly such a
// background refresh reporting a query timeout through a reporter that
// copied the current request's context.
//
// Enabled is lock-free and does not allocate.
package flags

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cordon-sec/cordon/report"
)

// scale is Flipper's scaling factor: percentages keep three decimals, and
// an actor is in when crc32(name+actor) % (100*scale) < percent*scale.
const scale = 1000

// Options configure Open. The zero value is usable.
type Options struct {
	// Dialect of the database; SQLite by default.
	Dialect Dialect
	// Groups maps group names to their predicates, given an actor id. They
	// are fixed at Open and must be safe for concurrent use; Enabled calls
	// them, so they should be fast and not allocate.
	Groups map[string]func(actor string) bool
	// Interval between refreshes in Run; default 30s.
	Interval time.Duration
	// Timeout of one refresh; default 5s.
	Timeout time.Duration
	// Reporter receives refresh errors, in a background scope of its own
	// (task "flags.refresh"). Nil means they are only logged.
	Reporter *report.Reporter
	// Logger receives refresh errors too; nil means slog.Default().
	Logger *slog.Logger
	// Now stamps snapshots; nil means time.Now.
	Now func() time.Time
}

// Flags reads and writes feature flags. It is safe for concurrent use.
type Flags struct {
	db       *sql.DB
	dialect  Dialect
	groups   map[string]func(string) bool
	interval time.Duration
	timeout  time.Duration
	bg       *report.Scope
	log      *slog.Logger
	now      func() time.Time

	snap      atomic.Pointer[Snapshot]
	refreshMu sync.Mutex // one refresh at a time, so generations only grow
	failures  atomic.Int64
}

// Open migrates the database, loads the first snapshot and returns the
// flags. It does not start the refresher: call Run (or Start).
func Open(ctx context.Context, db *sql.DB, o Options) (*Flags, error) {
	if db == nil {
		return nil, errors.New("flags: nil database")
	}
	if o.Dialect != SQLite && o.Dialect != Postgres {
		return nil, fmt.Errorf("flags: unknown dialect %v", o.Dialect)
	}
	f := &Flags{
		db:       db,
		dialect:  o.Dialect,
		groups:   maps.Clone(o.Groups),
		interval: o.Interval,
		timeout:  o.Timeout,
		log:      o.Logger,
		now:      o.Now,
	}
	for name, pred := range f.groups {
		if pred == nil {
			return nil, fmt.Errorf("flags: group %q has a nil predicate", name)
		}
	}
	if f.interval <= 0 {
		f.interval = 30 * time.Second
	}
	if f.timeout <= 0 {
		f.timeout = 5 * time.Second
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.now == nil {
		f.now = time.Now
	}
	if o.Reporter != nil {
		f.bg = o.Reporter.Background("flags.refresh")
	}
	if err := Migrate(ctx, db, o.Dialect); err != nil {
		return nil, err
	}
	if err := f.Refresh(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// Enabled reports whether flag is on for the actor (an actor id; "" for
// none) in the current snapshot. An unknown flag is off. It takes no lock
// and does not allocate (group predicates aside).
func (f *Flags) Enabled(flag, actor string) bool {
	return f.snap.Load().Enabled(flag, actor)
}

// Snapshot returns the current snapshot. Checks made on one snapshot see
// one consistent state of the flags.
func (f *Flags) Snapshot() *Snapshot { return f.snap.Load() }

// Failures returns how many refreshes have failed since Open.
func (f *Flags) Failures() int64 { return f.failures.Load() }

// Refresh loads the flags from the database and publishes them as a new
// snapshot. On error the current snapshot stays and the error is returned
// (Run also reports it).
func (f *Flags) Refresh(ctx context.Context) error {
	f.refreshMu.Lock()
	defer f.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	s, err := f.load(ctx)
	if err != nil {
		f.failures.Add(1)
		return fmt.Errorf("flags: refresh: %w", err)
	}
	s.loaded = f.now()
	if prev := f.snap.Load(); prev != nil {
		s.gen = prev.gen + 1
	} else {
		s.gen = 1
	}
	f.snap.Store(s)
	return nil
}

// Run refreshes every Interval until ctx is done. Give it a context of its
// own (context.Background or scope.Detach), not a request's. A failed
// refresh keeps the last good snapshot and goes to the reporter's
// background scope and to the logger; nothing of any request is in it.
func (f *Flags) Run(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := f.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return // shutting down, not a failure worth a report
			}
			f.reportFailure(err)
		}
	}
}

// Start runs the refresher in a goroutine of its own, with a context that
// holds nothing of the caller's; stop ends it and waits for it.
func (f *Flags) Start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (f *Flags) reportFailure(err error) {
	prev := f.snap.Load()
	f.log.Warn("flags: refresh failed; keeping the last good snapshot",
		"err", err, "generation", prev.gen, "failures", f.failures.Load())
	if f.bg != nil {
		f.bg.Capture(err,
			"kept_generation", prev.gen,
			"kept_loaded_at", prev.loaded,
			"failures", f.failures.Load())
	}
}

// Snapshot is an immutable view of every flag. Its methods are safe for
// concurrent use.
type Snapshot struct {
	flags         map[string]*flag
	gen           uint64
	loaded        time.Time
	unknownGroups int
	unknownGates  int
}

type flag struct {
	name       string
	nameCRC    uint32 // crc32 of the name, continued with the actor id
	boolean    bool
	actors     map[string]struct{}
	percent    float64
	scaled     uint32 // percent * scale
	groups     []func(string) bool
	groupNames []string
}

// Enabled reports whether flag is on for actor in this snapshot: its
// boolean gate is open, or actor is non-empty and is in its actor list, or
// falls in its percentage, or satisfies one of its groups' predicates.
func (s *Snapshot) Enabled(name, actor string) bool {
	fl := s.flags[name]
	if fl == nil {
		return false
	}
	if fl.boolean {
		return true
	}
	if actor == "" {
		return false
	}
	if _, ok := fl.actors[actor]; ok {
		return true
	}
	if fl.scaled > 0 && crcString(fl.nameCRC, actor)%(100*scale) < fl.scaled {
		return true
	}
	for _, g := range fl.groups {
		if g(actor) {
			return true
		}
	}
	return false
}

// Generation counts published snapshots: 1 for the first, +1 per refresh.
func (s *Snapshot) Generation() uint64 { return s.gen }

// LoadedAt returns when the snapshot was loaded.
func (s *Snapshot) LoadedAt() time.Time { return s.loaded }

// Names returns the flags' names, sorted.
func (s *Snapshot) Names() []string {
	return slices.Sorted(maps.Keys(s.flags))
}

// Gates describes one flag's gates.
type Gates struct {
	Boolean    bool
	Actors     []string // sorted
	Percentage float64
	Groups     []string // sorted; includes groups with no registered predicate
}

// Gates returns a copy of a flag's gates, and whether the flag exists.
func (s *Snapshot) Gates(name string) (Gates, bool) {
	fl := s.flags[name]
	if fl == nil {
		return Gates{}, false
	}
	g := Gates{Boolean: fl.boolean, Percentage: fl.percent, Groups: slices.Sorted(slices.Values(fl.groupNames))}
	g.Actors = slices.Sorted(maps.Keys(fl.actors))
	return g, true
}

// Ignored returns how many stored group gates name a group without a
// registered predicate, and how many gates are of a kind this version does
// not know. Both enable nobody.
func (s *Snapshot) Ignored() (groups, gates int) { return s.unknownGroups, s.unknownGates }

// crcString continues the IEEE crc32 crc with the bytes of s, so that
// crcString(crcString(0, a), b) == crc32.ChecksumIEEE([]byte(a+b)). It
// hands crc32 a read-only view of the string's bytes (unsafe.Slice over
// unsafe.StringData) instead of a copy, so checks do not allocate while
// keeping crc32's table-slicing and hardware paths; crc32 only reads its
// input and keeps no reference to it.
func crcString(crc uint32, s string) uint32 {
	if len(s) == 0 {
		return crc
	}
	return crc32.Update(crc, crc32.IEEETable, unsafe.Slice(unsafe.StringData(s), len(s)))
}
