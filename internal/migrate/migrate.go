// Package migrate is cordon's one schema migration runner, on database/sql:
// the session stores (sqlitestore, pgstore), the feature flags and the
// demo's user table all bring their schemas up to date through it.
//
// A schema is a list of numbered steps, NNNN_description.sql files, read by
// Load; versions run 1, 2, 3... without gaps. Up applies the steps a
// database has not seen in one transaction, so either every step lands or
// none does, and the version each database is at is kept by a Book: SQLite's
// PRAGMA user_version (UserVersion) or a table of applied versions (Table).
// A database at a version newer than the build knows is refused
// (ErrTooNew) rather than guessed at. Check reads the version without
// writing anything, for tools that must never create a schema.
//
// The package imports nothing outside the standard library.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Errors returned by Up and Check; they are wrapped with context.
var (
	// ErrTooNew means the database is at a version newer than the last
	// step this build knows: it was written by a newer program.
	ErrTooNew = errors.New("migrate: schema is newer than this build supports")
	// ErrNoSchema means Check found no schema at all (version 0).
	ErrNoSchema = errors.New("migrate: no schema")
	// ErrOutdated means Check found a schema older than this build's.
	ErrOutdated = errors.New("migrate: schema needs migrating")
)

// Step is one schema change: Version n takes the schema from n-1 to n.
type Step struct {
	Version int
	Name    string // the file name, for messages
	SQL     string
}

// Load reads the NNNN_description.sql files of dir in fsys, in version
// order. Versions must run 1, 2, 3... without gaps or repeats, and there
// must be at least one.
func Load(fsys fs.FS, dir string) ([]Step, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var steps []Step
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migrate: step %q: name must be NNNN_description.sql", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("migrate: step %q: %w", name, err)
		}
		steps = append(steps, Step{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].Version < steps[j].Version })
	for i, s := range steps {
		if s.Version != i+1 {
			return nil, fmt.Errorf("migrate: step %q: version %d, want %d (versions run 1, 2, 3... without gaps)", s.Name, s.Version, i+1)
		}
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("migrate: no steps in %s", dir)
	}
	return steps, nil
}

// Queryer is what a Book reads versions through: a *sql.DB or a *sql.Tx.
type Queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Book keeps the schema version of a database.
type Book interface {
	// Prepare runs first in Up's transaction: it takes whatever lock keeps
	// two processes from migrating at once and creates the book itself.
	Prepare(ctx context.Context, tx *sql.Tx) error
	// Version returns the version recorded, 0 if none. It must work
	// before Prepare has ever run (Check calls it on its own).
	Version(ctx context.Context, q Queryer) (int, error)
	// Record notes that step v has been applied.
	Record(ctx context.Context, tx *sql.Tx, v int) error
}

// UserVersion keeps the version in SQLite's PRAGMA user_version. Only one
// schema in a file can use it. Up's transaction should be BEGIN IMMEDIATE
// (the modernc driver's _txlock=immediate) so that two processes opening a
// new file cannot both apply a step.
type UserVersion struct{}

// Prepare does nothing: the pragma always exists.
func (UserVersion) Prepare(context.Context, *sql.Tx) error { return nil }

// Version reads PRAGMA user_version.
func (UserVersion) Version(ctx context.Context, q Queryer) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// Record sets PRAGMA user_version.
func (UserVersion) Record(ctx context.Context, tx *sql.Tx, v int) error {
	// PRAGMA takes no parameters; v is an int.
	_, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(v))
	return err
}

// Table keeps the applied versions as rows of a table with an integer
// column named version.
type Table struct {
	// Name is the table, qualified if need be ("cordon.schema_migrations").
	// It is written into SQL as is: a constant, never input.
	Name string
	// Create creates the table if it does not exist; default
	// "CREATE TABLE IF NOT EXISTS <Name> (version INTEGER PRIMARY KEY)".
	Create string
	// Lock, if not empty, runs first in the transaction (for example
	// PostgreSQL's pg_advisory_xact_lock).
	Lock string
	// Exists, if not empty, is a query returning one boolean: whether the
	// table exists. Version runs it first, so that Check works on a
	// database without the table. Without it, Version is only meaningful
	// after Prepare.
	Exists string
	// Dollar selects $1 placeholders (PostgreSQL) instead of ?.
	Dollar bool
}

// Prepare takes the lock and creates the table.
func (t Table) Prepare(ctx context.Context, tx *sql.Tx) error {
	if t.Lock != "" {
		if _, err := tx.ExecContext(ctx, t.Lock); err != nil {
			return err
		}
	}
	create := t.Create
	if create == "" {
		create = "CREATE TABLE IF NOT EXISTS " + t.Name + " (version INTEGER PRIMARY KEY)"
	}
	_, err := tx.ExecContext(ctx, create)
	return err
}

// Version returns the largest version in the table.
func (t Table) Version(ctx context.Context, q Queryer) (int, error) {
	if t.Exists != "" {
		var ok bool
		if err := q.QueryRowContext(ctx, t.Exists).Scan(&ok); err != nil {
			return 0, err
		}
		if !ok {
			return 0, nil
		}
	}
	var v int
	err := q.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM "+t.Name).Scan(&v)
	return v, err
}

// Record inserts v.
func (t Table) Record(ctx context.Context, tx *sql.Tx, v int) error {
	ph := "?"
	if t.Dollar {
		ph = "$1"
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO "+t.Name+" (version) VALUES ("+ph+")", v)
	return err
}

// Options adjust Up.
type Options struct {
	// BeforeEach, if not nil, runs in the transaction before each step's
	// SQL (for example to set PostgreSQL's search_path).
	BeforeEach func(ctx context.Context, tx *sql.Tx) error
	// Split runs each step statement by statement (split at ";", comment
	// lines dropped), for drivers that execute one statement per call.
	// Steps must then have no ";" inside literals.
	Split bool
}

// Up brings db to the last of steps, in one transaction: it prepares the
// book, reads the version, applies every later step and records each. It
// returns the version the database was at before. A database newer than
// steps gives ErrTooNew.
func Up(ctx context.Context, db *sql.DB, book Book, steps []Step, opt Options) (from int, err error) {
	if len(steps) == 0 {
		return 0, errors.New("migrate: no steps")
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := book.Prepare(ctx, tx); err != nil {
		return 0, err
	}
	cur, err := book.Version(ctx, tx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	latest := steps[len(steps)-1].Version
	if cur > latest {
		return cur, fmt.Errorf("schema version %d, this build knows up to %d: %w", cur, latest, ErrTooNew)
	}
	if cur == latest {
		return cur, nil
	}
	for _, s := range steps[cur:] {
		if opt.BeforeEach != nil {
			if err := opt.BeforeEach(ctx, tx); err != nil {
				return cur, err
			}
		}
		stmts := []string{s.SQL}
		if opt.Split {
			stmts = split(s.SQL)
		}
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return cur, fmt.Errorf("migration %s: %w", s.Name, err)
			}
		}
		if err := book.Record(ctx, tx, s.Version); err != nil {
			return cur, fmt.Errorf("record schema version %d: %w", s.Version, err)
		}
	}
	return cur, tx.Commit()
}

// Check reports the version db is at without writing anything. It returns
// ErrNoSchema for version 0, ErrOutdated for a version older than the last
// of steps and ErrTooNew for a newer one, each with the version.
func Check(ctx context.Context, q Queryer, book Book, steps []Step) (int, error) {
	cur, err := book.Version(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	latest := 0
	if len(steps) > 0 {
		latest = steps[len(steps)-1].Version
	}
	switch {
	case cur == 0:
		return 0, ErrNoSchema
	case cur < latest:
		return cur, fmt.Errorf("schema version %d, this build's is %d: %w", cur, latest, ErrOutdated)
	case cur > latest:
		return cur, fmt.Errorf("schema version %d, this build knows up to %d: %w", cur, latest, ErrTooNew)
	}
	return cur, nil
}

// split splits a step into statements, dropping comment lines.
func split(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	var out []string
	for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
		if stmt = strings.TrimSpace(stmt); stmt != "" {
			out = append(out, stmt)
		}
	}
	return out
}
