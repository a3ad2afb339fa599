package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/cordon-sec/cordon/store"
	"os"
	"strings"
	"testing"
	"time"
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
