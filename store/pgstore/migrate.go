package pgstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"

	"github.com/cordon-sec/cordon/internal/migrate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// ErrNoStore means Options.ExistingOnly was set and the database has no
// cordon session schema of that name, or one that needs migrating first.
var ErrNoStore = errors.New("pgstore: no cordon session store")

// book keeps the schema's applied versions in <schema>.schema_migrations;
// an advisory lock keeps concurrent nodes from applying a step twice.
func book(schema string) migrate.Table {
	ident := pgx.Identifier{schema}.Sanitize()
	lit := "'" + schema + "'" // validSchema allows only [a-z0-9_]
	return migrate.Table{
		Name: ident + ".schema_migrations",
		Lock: "SELECT pg_advisory_xact_lock(hashtext('cordon-migrate:' || " + lit + "))",
		Create: "CREATE SCHEMA IF NOT EXISTS " + ident + "; CREATE TABLE IF NOT EXISTS " + ident +
			".schema_migrations (version int PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())",
		Exists: "SELECT to_regclass(" + "'" + schema + ".schema_migrations') IS NOT NULL",
		Dollar: true,
	}
}

// withDB runs fn on a database/sql view of pool.
func withDB(pool *pgxpool.Pool, fn func(db *sql.DB) error) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return fn(db)
}

// migrateSchema creates the schema if needed and applies, in one
// transaction, the embedded steps not yet recorded in schema_migrations.
func migrateSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	steps, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	ident := pgx.Identifier{schema}.Sanitize()
	return withDB(pool, func(db *sql.DB) error {
		_, err := migrate.Up(ctx, db, book(schema), steps, migrate.Options{
			BeforeEach: func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "SET LOCAL search_path TO "+ident)
				return err
			},
		})
		return err
	})
}

// checkSchema fails unless the database holds this build's schema, writing
// nothing.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	steps, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return err
	}
	return withDB(pool, func(db *sql.DB) error {
		_, err := migrate.Check(ctx, db, book(schema), steps)
		switch {
		case errors.Is(err, migrate.ErrNoSchema):
			return fmt.Errorf("%w: the database has no cordon schema %q (a mistyped ?schema=? create it with `cordon migrate -store URL`, or by opening the store from the application)", ErrNoStore, schema)
		case errors.Is(err, migrate.ErrOutdated):
			return fmt.Errorf("%w: schema %q: %v (run `cordon migrate -store URL`)", ErrNoStore, schema, err)
		}
		return err
	})
}
