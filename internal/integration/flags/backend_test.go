package flags_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/cordon-sec/cordon/flags"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// forEachBackend runs a test against SQLite and against PostgreSQL (the
// server ./test.sh starts, found through CORDON_TEST_POSTGRES).
func forEachBackend(t *testing.T, test func(t *testing.T, db *sql.DB, d flags.Dialect)) {
	t.Run("sqlite", func(t *testing.T) { test(t, openDB(t), flags.SQLite) })
	t.Run("postgres", func(t *testing.T) { test(t, openPostgres(t), flags.Postgres) })
}

// openPostgres returns a database whose connections use a schema of their
// own, dropped when the test ends.
func openPostgres(t *testing.T) *sql.DB {
	t.Helper()
	base := os.Getenv("CORDON_TEST_POSTGRES")
	if base == "" {
		t.Fatal("CORDON_TEST_POSTGRES is not set: run the tests through ./test.sh, which starts PostgreSQL, " +
			"or set it to a postgres:// URL of a scratch database")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	var b [8]byte
	rand.Read(b[:])
	schema := "flags_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("postgres at CORDON_TEST_POSTGRES: %v", err)
	}
	t.Cleanup(func() { admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
