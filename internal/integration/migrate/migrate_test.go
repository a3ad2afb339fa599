package migrate_test

import (
	"context"
	"database/sql"
	"errors"
	"github.com/cordon-sec/cordon/internal/migrate"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	_ "modernc.org/sqlite"
)

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"gap", fstest.MapFS{"m/0001_a.sql": {Data: []byte("SELECT 1")}, "m/0003_c.sql": {Data: []byte("SELECT 1")}}, "without gaps"},
		{"repeat", fstest.MapFS{"m/0001_a.sql": {Data: []byte("SELECT 1")}, "m/1_b.sql": {Data: []byte("SELECT 1")}}, "without gaps"},
		{"bad name", fstest.MapFS{"m/first.sql": {Data: []byte("SELECT 1")}}, "NNNN_description.sql"},
		{"zero", fstest.MapFS{"m/0000_a.sql": {Data: []byte("SELECT 1")}}, "NNNN_description.sql"},
		{"empty", fstest.MapFS{"m/README": {Data: []byte("x")}}, "no steps"},
		{"no dir", fstest.MapFS{}, "m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := migrate.Load(tc.fs, "m")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	return db
}

var synthetic = fstest.MapFS{
	"m/0001_t.sql":   {Data: []byte("-- a table\nCREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);")},
	"m/0002_u.sql":   {Data: []byte(`ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'two'; INSERT INTO t (a) VALUES (2);`)},
	"m/0003_bad.sql": {Data: []byte(`INSERT INTO t (a) VALUES (3); THIS IS NOT SQL;`)},
}

// Each kind of book, each way of running steps: steps apply in order, a
// failing step rolls back entirely, a newer database is refused, and migrate.Check
// says where a database stands without writing.
func TestUp(t *testing.T) {
	all, err := migrate.Load(synthetic, "m")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		book migrate.Book
		opt  migrate.Options
	}{
		{"user_version", migrate.UserVersion{}, migrate.Options{}},
		{"table", migrate.Table{Name: "schema_versions", Exists: `SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'schema_versions'`}, migrate.Options{}},
		{"table split", migrate.Table{Name: "v", Create: "CREATE TABLE IF NOT EXISTS v (version INTEGER NOT NULL)"}, migrate.Options{Split: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t)
			ctx := context.Background()
			if tc.name != "table split" { // without Exists, migrate.Check needs the table
				if _, err := migrate.Check(ctx, db, tc.book, all[:2]); !errors.Is(err, migrate.ErrNoSchema) {
					t.Fatalf("migrate.Check of an empty database: %v, want migrate.ErrNoSchema", err)
				}
			}
			var before int
			hook := tc.opt
			hook.BeforeEach = func(ctx context.Context, tx *sql.Tx) error { before++; return nil }
			if from, err := migrate.Up(ctx, db, tc.book, all[:1], hook); err != nil || from != 0 {
				t.Fatalf("migrate.Up to 1: from %d, %v", from, err)
			}
			if _, err := migrate.Check(ctx, db, tc.book, all[:2]); !errors.Is(err, migrate.ErrOutdated) {
				t.Fatalf("migrate.Check at 1 of 2: %v, want migrate.ErrOutdated", err)
			}
			if from, err := migrate.Up(ctx, db, tc.book, all[:2], hook); err != nil || from != 1 {
				t.Fatalf("migrate.Up to 2: from %d, %v", from, err)
			}
			if before != 2 {
				t.Fatalf("BeforeEach ran %d times, want 2", before)
			}
			if v, err := migrate.Check(ctx, db, tc.book, all[:2]); err != nil || v != 2 {
				t.Fatalf("migrate.Check at 2: %d, %v", v, err)
			}
			if from, err := migrate.Up(ctx, db, tc.book, all[:2], tc.opt); err != nil || from != 2 {
				t.Fatalf("migrate.Up again: from %d, %v; want a no-op", from, err)
			}
			var n int
			var b string
			if err := db.QueryRow(`SELECT count(*), min(b) FROM t`).Scan(&n, &b); err != nil || n != 2 || b != "two" {
				t.Fatalf("after migrating 1 then 2: %d rows, b %q, %v", n, b, err)
			}
			// A failing step rolls back entirely and leaves the version alone.
			_, err = migrate.Up(ctx, db, tc.book, all, tc.opt)
			if err == nil || !strings.Contains(err.Error(), "0003_bad.sql") {
				t.Fatalf("failing step: %v, want an error naming it", err)
			}
			if v, err := tc.book.Version(ctx, db); err != nil || v != 2 {
				t.Fatalf("version after a failed step = %d, %v; want 2", v, err)
			}
			if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != 2 {
				t.Fatalf("failed step left %d rows, want 2", n)
			}
			// A database newer than the build is refused.
			if _, err := migrate.Up(ctx, db, tc.book, all[:1], tc.opt); !errors.Is(err, migrate.ErrTooNew) {
				t.Fatalf("migrate.Up with fewer steps than applied: %v, want migrate.ErrTooNew", err)
			}
			if _, err := migrate.Check(ctx, db, tc.book, all[:1]); !errors.Is(err, migrate.ErrTooNew) {
				t.Fatalf("migrate.Check with fewer steps than applied: %v, want migrate.ErrTooNew", err)
			}
		})
	}
}

// migrate.Check writes nothing: a database checked stays empty.
func TestCheckWritesNothing(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	all, _ := migrate.Load(synthetic, "m")
	book := migrate.Table{Name: "schema_versions", Exists: `SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'schema_versions'`}
	if _, err := migrate.Check(ctx, db, book, all); !errors.Is(err, migrate.ErrNoSchema) {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after migrate.Check the database has %d objects, %v; want none", n, err)
	}
}
