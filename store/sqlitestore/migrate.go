package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/cordon-sec/cordon/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchemaTooNew means the database was written by a newer cordon whose
// schema this build does not know. Open refuses it rather than guess.
var ErrSchemaTooNew = errors.New("sqlitestore: database schema is newer than this build supports")

// ErrNoStore means Options.ExistingOnly was set and the path holds no
// cordon session store (no file, or a file without the schema), or one
// whose schema needs migrating first.
var ErrNoStore = errors.New("sqlitestore: no cordon session store")

// builtinMigrations returns the schema steps embedded in this build.
func builtinMigrations() ([]migrate.Step, error) {
	return migrate.Load(migrationFiles, "migrations")
}

// migrateDB brings the database up to the last of steps inside one
// immediate transaction (see the writer's DSN), so two processes opening a
// new database at once cannot both apply a step. The schema version lives in
// PRAGMA user_version.
func migrateDB(ctx context.Context, db *sql.DB, steps []migrate.Step) error {
	_, err := migrate.Up(ctx, db, migrate.UserVersion{}, steps, migrate.Options{})
	if errors.Is(err, migrate.ErrTooNew) {
		return fmt.Errorf("%w: %v", ErrSchemaTooNew, err)
	}
	return err
}

// checkSchema fails unless db holds this build's schema, writing nothing.
func checkSchema(ctx context.Context, db *sql.DB, steps []migrate.Step) error {
	_, err := migrate.Check(ctx, db, migrate.UserVersion{}, steps)
	switch {
	case errors.Is(err, migrate.ErrNoSchema):
		return fmt.Errorf("%w: the file has no cordon session tables (create them with `cordon migrate -store sqlite:PATH`, or by opening the store from the application)", ErrNoStore)
	case errors.Is(err, migrate.ErrOutdated):
		return fmt.Errorf("%w: %v (run `cordon migrate -store sqlite:PATH`)", ErrNoStore, err)
	case errors.Is(err, migrate.ErrTooNew):
		return fmt.Errorf("%w: %v", ErrSchemaTooNew, err)
	}
	return err
}
