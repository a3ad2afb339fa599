package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"github.com/cordon-sec/cordon/store"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store/storetest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// testURL returns the scratch database's URL or fails the test saying how
// to get one.
func testURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("CORDON_TEST_POSTGRES")
	if url == "" {
		t.Fatal("CORDON_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts PostgreSQL and Redis")
	}
	return url
}

// openTest opens a store in a fresh schema that is dropped after the test.
func openTest(t testing.TB, opt Options) *Store {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	if opt.Schema == "" {
		opt.Schema = "t_" + hex.EncodeToString(b[:])
	}
	st, err := Open(context.Background(), testURL(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		st.Pool().Exec(context.Background(), "DROP SCHEMA "+opt.Schema+" CASCADE")
		st.Close()
	})
	return st
}

func TestNotify(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := openTest(t, Options{})
	st.pingEvery = 20 * time.Millisecond // the listener pings while waiting
	other := openTest(t, Options{})      // another schema must not hear st's events
	events := make(chan store.Event, 16)
	foreign := make(chan store.Event, 16)
	go st.Subscribe(ctx, func(ev store.Event) { events <- ev })
	go other.Subscribe(ctx, func(ev store.Event) { foreign <- ev })
	if ev := <-events; ev.Kind != store.KindFlush {
		t.Fatalf("first event %v, want the flush after subscribing", ev.Kind)
	}
	<-foreign
	time.Sleep(200 * time.Millisecond) // several quiet waits and pings
	if err := st.RevokePrincipal(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Kind != store.KindPrincipal || ev.Principal != "carol" || ev.Seq != 1 || ev.At.IsZero() {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5 s")
	}
	if seq, err := st.RevocationSeq(ctx); err != nil || seq != 1 {
		t.Fatalf("seq %d, %v", seq, err)
	}
	select {
	case ev := <-foreign:
		t.Fatalf("another schema's subscriber got %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestBadSchema(t *testing.T) {
	for _, name := range []string{"Upper", "a,b", "1abc", "x; DROP TABLE y", strings.Repeat("a", 41)} {
		if st, err := Open(context.Background(), testURL(t), Options{Schema: name}); err == nil {
			st.Close()
			t.Errorf("schema %q accepted", name)
		}
	}
}

// New runs on a pool the application made, with no search_path of its own:
// the whole conformance suite passes, and Close leaves the pool open.
func TestNewOnAppPool(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // after the suite's parallel subtests
	storetest.Run(t, func(t *testing.T) store.Full {
		var b [6]byte
		rand.Read(b[:])
		schema := "t_" + hex.EncodeToString(b[:])
		st, err := New(ctx, pool, Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			st.Close()
			pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		})
		return st
	}, storetest.WithRawBytes(dump), storetest.WithCount(count))
	st, err := New(ctx, pool, Options{Schema: "t_new_close"})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Exec(ctx, "DROP SCHEMA t_new_close CASCADE")
	st.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("the application's pool after the store's Close: %v", err)
	}
	if _, err := New(ctx, nil, Options{}); err == nil {
		t.Fatal("New(nil pool) succeeded")
	}
}

// ExistingOnly refuses a schema that does not exist and creates nothing;
// once the schema exists it opens it.
func TestExistingOnly(t *testing.T) {
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	_, err := Open(ctx, testURL(t), Options{Schema: schema, ExistingOnly: true})
	if !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), schema) {
		t.Fatalf("Open(ExistingOnly) of a missing schema: %v, want ErrNoStore naming it", err)
	}
	pool, err := pgxpool.New(ctx, testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused open created the schema: %d, %v", n, err)
	}
	st := openTest(t, Options{Schema: schema})
	now := time.Now()
	mustCreate := &store.Session{Hash: store.HashToken("existing-only"), Principal: "alice", Created: now,
		LastSeen: now, IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	if err := st.Create(ctx, mustCreate); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, testURL(t), Options{Schema: schema, ExistingOnly: true})
	if err != nil {
		t.Fatalf("Open(ExistingOnly) of an existing schema: %v", err)
	}
	defer again.Close()
	if _, err := again.Find(ctx, mustCreate.Hash); err != nil {
		t.Fatal(err)
	}
	// An outdated schema is refused too, not migrated.
	if _, err := pool.Exec(ctx, "DELETE FROM "+schema+".schema_migrations"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, testURL(t), Options{Schema: schema, ExistingOnly: true}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("Open(ExistingOnly) of a schema without its versions: %v, want ErrNoStore", err)
	}
}
