package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"math"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// Find packs a row into one column (findRow) and decodeFound takes it
// apart: every field comes back as stored, through the store's own read
// connections and through an application's *sql.DB, whatever bytes the
// strings and the data hold (multi-byte characters, whose byte and
// character counts differ; spaces and digits, which the packing uses;
// NULs), and whatever the numbers.
func TestFindRoundTripsEveryField(t *testing.T) {
	opened, _ := openTemp(t, Options{})
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "app.db")+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	shared, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.Close() })

	far := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	cases := []store.Session{
		{Principal: "alice", Data: []byte("hello"), LastIP: "192.0.2.1", UserAgent: "Mozilla/5.0"},
		{}, // every string and the data empty
		{Principal: "Zoë 名前 12 34 ", Data: []byte("\x00 1 2 \x00\xff"), LastIP: "2001:db8::1", UserAgent: "ü 7 \x00 x"},
		{Principal: "-1 ", Data: bytes.Repeat([]byte{0, ' ', '9'}, 2000), UserAgent: " "},
	}
	for _, st := range []*Store{opened, shared} {
		for i, c := range cases {
			s := c
			s.Hash = store.HashToken("round trip " + strconv.Itoa(i))
			s.Created = time.Time{}.Add(time.Duration(i) * time.Microsecond) // negative micros
			s.LastSeen = time.UnixMicro(int64(i))
			s.IdleDeadline, s.Expires = far, far
			ctx := context.Background()
			if err := st.Create(ctx, &s); err != nil {
				t.Fatal(err)
			}
			for range 3 { // Update moves the version on, and the row is read again
				if err := st.Update(ctx, &s); err != nil {
					t.Fatal(err)
				}
			}
			got, err := st.Find(ctx, s.Hash)
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			switch {
			case got.Hash != s.Hash, got.Principal != s.Principal, !bytes.Equal(got.Data, s.Data),
				got.LastIP != s.LastIP, got.UserAgent != s.UserAgent, got.Version != 4,
				!got.Created.Equal(s.Created), !got.LastSeen.Equal(s.LastSeen),
				!got.IdleDeadline.Equal(far), !got.Expires.Equal(far),
				got.GlobalEpoch != s.GlobalEpoch, got.PrincipalEpoch != s.PrincipalEpoch:
				t.Fatalf("case %d did not round-trip:\n got %+v\nwant %+v", i, got, s)
			}
			if len(got.Data) > 0 && cap(got.Data) != len(got.Data) {
				// An append by the caller must not run into bytes of the row
				// the strings were cut from.
				t.Fatalf("case %d: Data has capacity %d past its length %d", i, cap(got.Data), len(got.Data))
			}
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"-62135596800000000", -62135596800000000, true},
		{strconv.FormatInt(math.MaxInt64, 10), math.MaxInt64, true},
		{strconv.FormatInt(math.MinInt64, 10), math.MinInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"+1", 0, false},
		{"1 ", 0, false},
		{"1a", 0, false},
	} {
		got, ok := parseDecimal([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("parseDecimal(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// Find reads on the writer connection when it is idle and on a read-only
// one while a write holds it; it never waits for the write, and both see
// every commit.
func TestFindWhileTheWriterIsBusy(t *testing.T) {
	st, _ := openTemp(t, Options{Readers: 1})
	ctx := context.Background()
	now := time.Now()
	s := &store.Session{Hash: store.HashToken("busy writer"), Principal: "alice", Data: []byte("v1"),
		Created: now, LastSeen: now, IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	check := func(how string, wantData string, wantVersion int64) {
		t.Helper()
		got, err := st.Find(ctx, s.Hash)
		if err != nil {
			t.Fatalf("Find %s: %v", how, err)
		}
		if string(got.Data) != wantData || got.Version != wantVersion {
			t.Fatalf("Find %s: data %q version %d, want %q %d", how, got.Data, got.Version, wantData, wantVersion)
		}
	}
	for i := range 3 {
		s.Data = []byte("v" + strconv.Itoa(i+2))
		if err := st.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		check("on the idle writer", string(s.Data), s.Version)

		<-st.wtoken // a write in progress
		done := make(chan struct{})
		go func() {
			defer close(done)
			check("while a write holds the writer", string(s.Data), s.Version)
		}()
		<-done // would hang here if Find waited for the writer
		st.wtoken <- struct{}{}
	}

	// A write waiting for the writer gets it when the holder is done.
	<-st.wtoken
	updated := make(chan error, 1)
	go func() { updated <- st.Touch(ctx, s.Hash, now, now.Add(time.Hour), "192.0.2.9", "ua") }()
	select {
	case err := <-updated:
		t.Fatalf("Touch ran while the writer was held: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	st.wtoken <- struct{}{}
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	if got, err := st.Find(ctx, s.Hash); err != nil || got.LastIP != "192.0.2.9" {
		t.Fatalf("Find after Touch: %v, %v", got, err)
	}
}

// The hot writes (Update, Touch) cost the same under a request's
// context, which can end, as under one that cannot: the driver is not
// handed a context to watch, which would start a goroutine per statement
// (its watch of a query allocates nothing this test could see, so Find is
// only checked below). A context already done still fails all three at
// once.
func TestHotStatementsUnwatched(t *testing.T) {
	st, _ := openTemp(t, Options{})
	s := liveSession(t)
	if err := st.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	live, cancel := context.WithCancel(context.Background())
	defer cancel()
	ops := map[string]func(ctx context.Context) error{
		"Find": func(ctx context.Context) error { _, err := st.Find(ctx, s.Hash); return err },
		"Update": func(ctx context.Context) error {
			got, err := st.Find(ctx, s.Hash)
			if err != nil {
				return err
			}
			got.Data = append(got.Data[:0], 'x')
			return st.Update(ctx, got)
		},
		"Touch": func(ctx context.Context) error {
			return st.Touch(ctx, s.Hash, time.Now(), s.IdleDeadline, "192.0.2.1", "ua")
		},
	}
	for name, op := range ops {
		if name == "Find" {
			continue
		}
		allocs := func(ctx context.Context) float64 {
			return testing.AllocsPerRun(200, func() {
				if err := op(ctx); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			})
		}
		if bg, req := allocs(context.Background()), allocs(live); req > bg {
			t.Errorf("%s: %.0f allocations under a context that can end, %.0f under one that cannot", name, req, bg)
		}
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	for name, op := range ops {
		if err := op(done); !errors.Is(err, context.Canceled) {
			t.Errorf("%s under a done context: %v, want context.Canceled", name, err)
		}
	}
}
