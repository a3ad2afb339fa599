package flags_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/flags"
	"github.com/cordon-sec/cordon/report"

	_ "modernc.org/sqlite"
)

func openDB(tb testing.TB) *sql.DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "flags.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

var quietLog = slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))

func openFlags(tb testing.TB, db *sql.DB, o flags.Options) *flags.Flags {
	tb.Helper()
	if o.Logger == nil {
		o.Logger = quietLog
	}
	f, err := flags.Open(context.Background(), db, o)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// staff is a group predicate: actor ids starting with "staff_".
func staff(actor string) bool { return strings.HasPrefix(actor, "staff_") }

func TestGates(t *testing.T) { forEachBackend(t, testGates) }

func testGates(t *testing.T, db *sql.DB, d flags.Dialect) {
	ctx := context.Background()
	f := openFlags(t, db, flags.Options{Dialect: d, Groups: map[string]func(string) bool{"staff": staff, "nobody": func(string) bool { return false }}})

	must(t, f.Enable(ctx, "everyone"))
	must(t, f.EnableActor(ctx, "beta", "u_1"))
	must(t, f.EnableActor(ctx, "beta", "u_2"))
	must(t, f.DisableActor(ctx, "beta", "u_2"))
	must(t, f.EnableGroup(ctx, "internal", "staff"))
	must(t, f.EnableGroup(ctx, "internal", "nobody"))
	must(t, f.EnableGroup(ctx, "ghost", "unregistered"))
	must(t, f.SetPercentage(ctx, "all_pct", 100))
	must(t, f.SetPercentage(ctx, "zero_pct", 50))
	must(t, f.SetPercentage(ctx, "zero_pct", 0))
	must(t, f.Add(ctx, "off"))
	must(t, f.Enable(ctx, "was_on"))
	must(t, f.EnableActor(ctx, "was_on", "u_1"))
	must(t, f.Disable(ctx, "was_on"))
	must(t, f.Enable(ctx, "removed"))
	must(t, f.Remove(ctx, "removed"))
	must(t, f.EnableActor(ctx, "mixed", "u_9"))
	must(t, f.EnableGroup(ctx, "mixed", "staff"))

	if f.Enabled("everyone", "") {
		t.Fatal("a write reached Enabled before a refresh")
	}
	must(t, f.Refresh(ctx))

	tests := []struct {
		flag, actor string
		want        bool
	}{
		{"everyone", "", true},
		{"everyone", "u_1", true},
		{"beta", "u_1", true},
		{"beta", "u_2", false},
		{"beta", "", false},
		{"internal", "staff_ann", true},
		{"internal", "u_1", false},
		{"internal", "", false},
		{"ghost", "staff_ann", false},
		{"all_pct", "anyone", true},
		{"all_pct", "", false},
		{"zero_pct", "anyone", false},
		{"off", "u_1", false},
		{"was_on", "u_1", false},
		{"removed", "u_1", false},
		{"unknown", "u_1", false},
		{"mixed", "u_9", true},
		{"mixed", "staff_bob", true},
		{"mixed", "u_8", false},
	}
	for _, tt := range tests {
		t.Run(tt.flag+"/"+tt.actor, func(t *testing.T) {
			if got := f.Enabled(tt.flag, tt.actor); got != tt.want {
				t.Fatalf("Enabled(%q, %q) = %v, want %v", tt.flag, tt.actor, got, tt.want)
			}
		})
	}
	s := f.Snapshot()
	if g, ok := s.Gates("internal"); !ok || fmt.Sprint(g.Groups) != "[nobody staff]" {
		t.Fatalf("Gates(internal) = %+v %v", g, ok)
	}
	if _, ok := s.Gates("removed"); ok {
		t.Fatal("removed flag still present")
	}
	if groups, gates := s.Ignored(); groups != 1 || gates != 0 {
		t.Fatalf("Ignored() = %d, %d", groups, gates)
	}
	want := "[all_pct beta everyone ghost internal mixed off was_on zero_pct]"
	if got := fmt.Sprint(s.Names()); got != want {
		t.Fatalf("Names() = %s, want %s", got, want)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	f := openFlags(t, openDB(t), flags.Options{})
	for name, err := range map[string]error{
		"empty name":    f.Enable(ctx, ""),
		"long name":     f.Enable(ctx, strings.Repeat("x", 201)),
		"empty actor":   f.EnableActor(ctx, "f", ""),
		"negative pct":  f.SetPercentage(ctx, "f", -1),
		"pct over 100":  f.SetPercentage(ctx, "f", 100.5),
		"NaN pct":       f.SetPercentage(ctx, "f", math.NaN()),
		"empty group":   f.EnableGroup(ctx, "f", ""),
		"empty disable": f.DisableActor(ctx, "f", ""),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := flags.Open(ctx, nil, flags.Options{}); err == nil {
		t.Error("Open(nil db) succeeded")
	}
	if _, err := flags.Open(ctx, openDB(t), flags.Options{Dialect: 7}); err == nil {
		t.Error("Open with an unknown dialect succeeded")
	}
	if _, err := flags.Open(ctx, openDB(t), flags.Options{Groups: map[string]func(string) bool{"g": nil}}); err == nil {
		t.Error("Open with a nil group predicate succeeded")
	}
}

func TestPercentageIsFlippersHash(t *testing.T) {
	ctx := context.Background()
	f := openFlags(t, openDB(t), flags.Options{})
	must(t, f.SetPercentage(ctx, "search", 12.345))
	must(t, f.Refresh(ctx))
	for i := range 2000 {
		actor := fmt.Sprintf("user-%d", i)
		want := crc32.ChecksumIEEE([]byte("search"+actor))%100000 < 12345
		if got := f.Enabled("search", actor); got != want {
			t.Fatalf("Enabled(search, %s) = %v; Flipper's rule says %v", actor, got, want)
		}
	}
}

func TestPercentageDistribution(t *testing.T) {
	ctx := context.Background()
	f := openFlags(t, openDB(t), flags.Options{})
	const n = 20000
	count := func(flag string) (int, map[int]bool) {
		in := map[int]bool{}
		for i := range n {
			if f.Enabled(flag, fmt.Sprintf("actor-%d", i)) {
				in[i] = true
			}
		}
		return len(in), in
	}
	must(t, f.SetPercentage(ctx, "a", 10))
	must(t, f.SetPercentage(ctx, "b", 10))
	must(t, f.Refresh(ctx))
	n10, in10 := count("a")
	_, inB := count("b")
	must(t, f.SetPercentage(ctx, "a", 25))
	must(t, f.Refresh(ctx))
	n25, in25 := count("a")
	// Binomial: sd = sqrt(n p (1-p)) ≈ 42 for 10%, 61 for 25%; allow ~6 sd.
	if n10 < 1750 || n10 > 2250 {
		t.Fatalf("10%% of %d actors: %d", n, n10)
	}
	if n25 < 4630 || n25 > 5370 {
		t.Fatalf("25%% of %d actors: %d", n, n25)
	}
	for i := range in10 {
		if !in25[i] {
			t.Fatalf("actor-%d was in at 10%% and out at 25%%: raising a percentage must only add actors", i)
		}
	}
	// The name is part of the hash: two flags at 10% pick different actors
	// (independent sets overlap by about 1%).
	both := 0
	for i := range in10 {
		if inB[i] {
			both++
		}
	}
	if both > n10/2 {
		t.Fatalf("flags a and b share %d of %d actors: the flag name is not in the hash", both, n10)
	}
}

func TestMigrateIsIdempotent(t *testing.T) { forEachBackend(t, testMigrateIsIdempotent) }

func testMigrateIsIdempotent(t *testing.T, db *sql.DB, d flags.Dialect) {
	ctx := context.Background()
	f := openFlags(t, db, flags.Options{Dialect: d})
	must(t, f.Enable(ctx, "x"))
	g := openFlags(t, db, flags.Options{Dialect: d})
	if !g.Enabled("x", "") {
		t.Fatal("second Open lost the data")
	}
	var versions int
	must(t, db.QueryRow(`SELECT COUNT(*) FROM cordon_flags_schema`).Scan(&versions))
	if versions != 1 {
		t.Fatalf("%d migrations recorded, want 1", versions)
	}
}

func TestFailedRefreshKeepsLastGoodSnapshot(t *testing.T) {
	forEachBackend(t, testFailedRefreshKeepsLastGoodSnapshot)
}

func testFailedRefreshKeepsLastGoodSnapshot(t *testing.T, db *sql.DB, d flags.Dialect) {
	ctx := context.Background()
	f := openFlags(t, db, flags.Options{Dialect: d})
	must(t, f.Enable(ctx, "on"))
	must(t, f.Refresh(ctx))
	before := f.Snapshot()

	expired, cancel := context.WithDeadline(ctx, time.Unix(0, 0))
	defer cancel()
	if err := f.Refresh(expired); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refresh(expired) = %v, want a deadline error", err)
	}
	// A corrupt row fails the refresh as a whole.
	_, err := db.Exec(`INSERT INTO cordon_flag_gates (flag, gate, value) VALUES ('on', 'percentage_of_actors', 'lots')`)
	must(t, err)
	if err := f.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "bad percentage") {
		t.Fatalf("Refresh(corrupt) = %v", err)
	}
	must(t, db.Close())
	if err := f.Refresh(ctx); err == nil {
		t.Fatal("Refresh on a closed database succeeded")
	}
	if f.Snapshot() != before || !f.Enabled("on", "") || f.Failures() != 3 {
		t.Fatalf("a failed refresh replaced the snapshot (gen %d → %d) or failures=%d",
			before.Generation(), f.Snapshot().Generation(), f.Failures())
	}
}

type memSink struct {
	mu     sync.Mutex
	events []*report.Event
	ch     chan struct{}
}

func (m *memSink) Send(e *report.Event) error {
	m.mu.Lock()
	m.events = append(m.events, e)
	m.mu.Unlock()
	select {
	case m.ch <- struct{}{}:
	default:
	}
	return nil
}

// TestRefreshErrorsGoToTheBackgroundScope is the 2021 moment: a request is
// in flight, with a principal, context values and a session cookie, when the
// background refresh fails. The report must hold the refresh's own values
// and nothing of the request.
func TestRefreshErrorsGoToTheBackgroundScope(t *testing.T) {
	const planted = "sess_PLANTED_TOKEN_5f4e3d2c1b0a99887766"
	mem := &memSink{ch: make(chan struct{}, 1)}
	var jsonOut bytes.Buffer
	var jmu sync.Mutex
	rep := report.New(report.Options{
		Sinks:         []report.Sink{mem, report.NewJSONSink(writerFunc(func(p []byte) (int, error) { jmu.Lock(); defer jmu.Unlock(); return jsonOut.Write(p) }))},
		SessionCookie: "cordon_session",
	})
	db := openDB(t)
	f := openFlags(t, db, flags.Options{Reporter: rep, Interval: time.Millisecond})
	must(t, f.Enable(context.Background(), "on"))
	must(t, f.Refresh(context.Background()))

	inRequest := make(chan struct{})
	release := make(chan struct{})
	h := rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := report.FromContext(r.Context())
		must(t, s.SetPrincipal("u_request_2"))
		must(t, s.Set("controller", "request-controller"))
		close(inRequest)
		<-release
	}))
	served := make(chan struct{})
	go func() {
		defer close(served)
		r := httptest.NewRequest("GET", "/dashboard", nil)
		r.AddCookie(&http.Cookie{Name: "cordon_session", Value: planted})
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	<-inRequest
	must(t, db.Close()) // every refresh fails from now on
	stop := f.Start()
	<-mem.ch
	stop()
	close(release)
	<-served

	if !f.Enabled("on", "") {
		t.Fatal("the last good snapshot was dropped")
	}
	mem.mu.Lock()
	defer mem.mu.Unlock()
	if len(mem.events) == 0 {
		t.Fatal("no report")
	}
	for _, e := range mem.events {
		if e.Scope != report.KindBackground || e.Task != "flags.refresh" || e.Request != nil || len(e.Context) != 0 {
			t.Fatalf("refresh report = %+v", e)
		}
		if !strings.Contains(e.Error, "closed") || e.Fields["kept_generation"] == nil {
			t.Fatalf("refresh report lacks its own facts: %+v", e)
		}
	}
	jmu.Lock()
	out := jsonOut.String()
	jmu.Unlock()
	for _, leak := range []string{planted, "u_request_2", "request-controller", "/dashboard"} {
		if strings.Contains(out, leak) {
			t.Fatalf("refresh report carries request data %q: %s", leak, out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// TestConcurrentChecksDuringSwaps runs readers against the refresher while a
// writer flips two flags together in one transaction. Every snapshot must
// show both flags in the same state, and generations never go backwards.
func TestConcurrentChecksDuringSwaps(t *testing.T) {
	forEachBackend(t, testConcurrentChecksDuringSwaps)
}

func testConcurrentChecksDuringSwaps(t *testing.T, db *sql.DB, d flags.Dialect) {
	ctx := context.Background()
	f := openFlags(t, db, flags.Options{Dialect: d, Interval: time.Millisecond})
	must(t, f.Add(ctx, "a"))
	must(t, f.Add(ctx, "b"))
	must(t, f.Refresh(ctx))
	stop := f.Start()
	defer stop()

	var done atomic.Bool
	var wg sync.WaitGroup
	var seenOn, seenOff atomic.Int64
	errs := make(chan error, 8)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for !done.Load() {
				runtime.Gosched() // leave the two CPUs to the writer and refresher too
				s := f.Snapshot()
				if s.Generation() < last {
					errs <- fmt.Errorf("generation went back from %d to %d", last, s.Generation())
					return
				}
				last = s.Generation()
				a, b := s.Enabled("a", "u"), s.Enabled("b", "u")
				if a != b {
					errs <- fmt.Errorf("generation %d: a=%v b=%v: a partial state was published", last, a, b)
					return
				}
				if a {
					seenOn.Add(1)
				} else {
					seenOff.Add(1)
				}
				_ = f.Enabled("a", "u") // the lock-free path, under the race detector
			}
		}()
	}
	gen0 := f.Snapshot().Generation()
	const flips = 60
	for i := range flips {
		on := "true"
		if i%2 == 1 {
			on = "false"
		}
		must(t, inTx(ctx, db, func(tx *sql.Tx) error {
			for _, name := range []string{"a", "b"} {
				if _, err := tx.Exec(rebind(d, `DELETE FROM cordon_flag_gates WHERE flag = ?`), name); err != nil {
					return err
				}
				if on == "true" {
					if _, err := tx.Exec(rebind(d, `INSERT INTO cordon_flag_gates (flag, gate, value) VALUES (?, 'boolean', 'true')`), name); err != nil {
						return err
					}
				}
			}
			return nil
		}))
		must(t, f.Refresh(ctx)) // racing the refresher's own swaps
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if swaps := f.Snapshot().Generation() - gen0; swaps < flips {
		t.Fatalf("only %d swaps", swaps)
	}
	if seenOn.Load() == 0 || seenOff.Load() == 0 {
		t.Fatalf("readers saw on %d times and off %d times: the swaps did not reach them", seenOn.Load(), seenOff.Load())
	}
}

func TestEnabledDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	f := openFlags(t, openDB(t), flags.Options{Groups: map[string]func(string) bool{"staff": staff}})
	must(t, f.EnableActor(ctx, "f", "u_1"))
	must(t, f.SetPercentage(ctx, "f", 30))
	must(t, f.EnableGroup(ctx, "f", "staff"))
	must(t, f.Refresh(ctx))
	actors := []string{"u_1", "u_2", "staff_x", "", "someone-else-entirely"}
	allocs := testing.AllocsPerRun(200, func() {
		for _, a := range actors {
			_ = f.Enabled("f", a)
			_ = f.Enabled("missing", a)
		}
	})
	if allocs != 0 {
		t.Fatalf("Enabled allocates %.1f times per run", allocs)
	}
}

func TestOpenFailsOnDeadDatabase(t *testing.T) {
	db := openDB(t)
	must(t, db.Close())
	if _, err := flags.Open(context.Background(), db, flags.Options{}); err == nil {
		t.Fatal("Open on a closed database succeeded")
	}
}

// rebind writes a query with ? placeholders in d's dialect, as the package
// does for its own queries.
func rebind(d flags.Dialect, q string) string {
	if d != flags.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// inTx runs f in one transaction, committed if f succeeds.
func inTx(ctx context.Context, db *sql.DB, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
