package storeurl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/pgstore"
	"github.com/cordon-sec/cordon/store/redisstore"
	"github.com/cordon-sec/cordon/store/sqlitestore"
)

func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the tests with ./test.sh, which starts PostgreSQL and Redis", name)
	}
	return v
}

func withParam(t *testing.T, raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

func roundTrip(t *testing.T, st Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	s := &store.Session{Hash: store.HashToken("storeurl-test"), Principal: "alice", Data: []byte("x"),
		Created: now, LastSeen: now, IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Find(ctx, s.Hash); err != nil || got.Principal != "alice" {
		t.Fatalf("find: %v, %v", got, err)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])

	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.db")
		st, err := Open(ctx, "sqlite:"+path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, ok := st.(*sqlitestore.Store); !ok {
			t.Fatalf("sqlite URL opened a %T", st)
		}
		roundTrip(t, st)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("no database file at the URL's path: %v", err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := Open(ctx, withParam(t, env(t, "CORDON_TEST_POSTGRES"), "schema", name), Options{})
		if err != nil {
			t.Fatal(err)
		}
		pg, ok := st.(*pgstore.Store)
		if !ok {
			t.Fatalf("postgres URL opened a %T", st)
		}
		defer func() {
			pg.Pool().Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
			st.Close()
		}()
		roundTrip(t, st)
		var n int
		if err := pg.Pool().QueryRow(ctx, "SELECT count(*) FROM "+name+".sessions").Scan(&n); err != nil || n != 1 {
			t.Fatalf("the schema parameter was not used: %d rows, %v", n, err)
		}
	})
	t.Run("redis", func(t *testing.T) {
		prefix := name + ":"
		st, err := Open(ctx, withParam(t, env(t, "CORDON_TEST_REDIS"), "prefix", prefix), Options{})
		if err != nil {
			t.Fatal(err)
		}
		rs, ok := st.(*redisstore.Store)
		if !ok {
			t.Fatalf("redis URL opened a %T", st)
		}
		defer func() {
			keys, _ := rs.Client().Keys(ctx, prefix+"*").Result()
			if len(keys) > 0 {
				rs.Client().Del(ctx, keys...)
			}
			st.Close()
		}()
		roundTrip(t, st)
		if keys, err := rs.Client().Keys(ctx, prefix+"s:*").Result(); err != nil || len(keys) != 1 {
			t.Fatalf("the prefix parameter was not used: %v, %v", keys, err)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{"", "mysql://u@h/db", "nothing", "./file.db"} {
		if _, err := Open(ctx, raw, Options{}); !errors.Is(err, ErrUnknownScheme) {
			t.Errorf("Open(%q) = %v, want ErrUnknownScheme", raw, err)
		}
	}
	if _, err := Open(ctx, "sqlite:", Options{}); err == nil || !strings.Contains(err.Error(), "without a path") {
		t.Errorf("sqlite without a path: %v", err)
	}
	// A password never appears in an error.
	_, err := Open(ctx, "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=1", Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable postgres: %v", err)
	}
	_, err = Open(ctx, "redis://:hunter2@127.0.0.1:1/0?dial_timeout=1s", Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable redis: %v", err)
	}
	if got := Redact("postgres://u:hunter2@h/db"); strings.Contains(got, "hunter2") {
		t.Errorf("Redact kept the password: %s", got)
	}
}

// Malformed URLs of every backend are clear errors, never a panic.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want error
		say  string
	}{
		{"sqlite", ErrMalformed, "has no path"},
		{"SQLITE3", ErrMalformed, "has no path"},
		{"sqlite:", ErrMalformed, "without a path"},
		{"sqlite://", ErrMalformed, "without a path"},
		{"sqlite:a\x00b", ErrMalformed, "control character"},
		{"postgres", ErrMalformed, "no address"},
		{"postgres:", ErrMalformed, "no host"},
		{"postgres:u:pw@h/db", ErrMalformed, "no host"},
		{"postgres://u:hunter2@h:port/db", ErrMalformed, "not a URL"},
		{"postgres://h/db?schema=a&schema=b", ErrMalformed, "given 2 times"},
		{"postgres://h/db?%zz", ErrMalformed, "malformed query"},
		{"redis", ErrMalformed, "no address"},
		{"rediss://", ErrMalformed, "no host"},
		{"redis://h/0?prefix=a&prefix=b", ErrMalformed, "given 2 times"},
		{"", ErrUnknownScheme, ""},
		{"nothing", ErrUnknownScheme, ""},
		{"./file.db", ErrUnknownScheme, ""},
		{"mysql://u@h/db", ErrUnknownScheme, ""},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := Parse(tc.raw)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("Parse(%q) = %v; want %v saying %q", tc.raw, err, tc.want, tc.say)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error repeats the password: %v", err)
			}
			if _, err := Open(context.Background(), tc.raw, Options{}); !errors.Is(err, tc.want) {
				t.Fatalf("Open(%q) = %v; want %v", tc.raw, err, tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want URL
	}{
		{"sqlite:./a.db", URL{Backend: SQLite, Path: "./a.db"}},
		{"sqlite3:///abs/a.db", URL{Backend: SQLite, Path: "/abs/a.db"}},
		{"sqlite:/tmp/a@b.db", URL{Backend: SQLite, Path: "/tmp/a@b.db"}},
		{"postgres://u:p@h/db?schema=s&sslmode=disable", URL{Backend: Postgres, DSN: "postgres://u:p@h/db?sslmode=disable", Schema: "s"}},
		{"postgresql://h/db", URL{Backend: Postgres, DSN: "postgresql://h/db"}},
		{"redis://h:6379/2?prefix=app:", URL{Backend: Redis, DSN: "redis://h:6379/2", Prefix: "app:"}},
	} {
		got, err := Parse(tc.raw)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.raw, got, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://u:hunter2@h/db":           "postgres://u:xxxxx@h/db",
		"postgres://h/db?password=hunter2":    "postgres://h/db?password=xxxxx",
		"postgres:u:hunter2@h/db":             "(unparsable URL)",
		"postgres://u:hunter2@h:port/db":      "(unparsable URL)",
		"sqlite:/tmp/a@b.db":                  "sqlite:/tmp/a@b.db",
		"redis://h:6379/0?prefix=x":           "redis://h:6379/0?prefix=x",
		"redis://:hunter2@h:6379/0?prefix=x:": "redis://:xxxxx@h:6379/0?prefix=x:",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}
