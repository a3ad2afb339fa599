package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew means the database was written by a newer cordon whose
// schema this build does not know. Open refuses it rather than guess.
var ErrSchemaTooNew = errors.New("sqlitestore: database schema is newer than this build supports")

// migration is one schema step. Version n takes the schema from n-1 to n.
type migration struct {
	version int
	name    string
	sql     string
}

// parseMigrations reads NNNN_name.sql files from dir in fsys. Versions must
// run 1, 2, 3... without gaps or repeats.
func parseMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlitestore: migration %q: name must be NNNN_description.sql", name)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: migration %q: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlitestore: migration %q: version %d, want %d (versions run 1, 2, 3... without gaps)", m.name, m.version, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("sqlitestore: no migrations")
	}
	return ms, nil
}

// builtinMigrations returns the schema steps embedded in this build.
func builtinMigrations() ([]migration, error) {
	return parseMigrations(migrationFiles, "migrations")
}

// migrate brings the database up to the last of ms inside one immediate
// transaction, so two processes opening a new database at once cannot both
// apply a step. The schema version lives in PRAGMA user_version.
func migrate(ctx context.Context, db *sql.DB, ms []migration) error {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see the writer's DSN
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	var cur int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		return err
	}
	latest := ms[len(ms)-1].version
	if cur > latest {
		return fmt.Errorf("schema version %d, this build knows up to %d: %w", cur, latest, ErrSchemaTooNew)
	}
	if cur == latest {
		return nil
	}
	for _, m := range ms[cur:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	// PRAGMA takes no parameters; latest is an int we produced.
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(latest)); err != nil {
		return fmt.Errorf("record schema version %d: %w", latest, err)
	}
	return tx.Commit()
}
