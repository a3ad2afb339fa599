package sqlitestore

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/storetest"
)

// crashChildEnv, when set to a database path, turns the test binary into the
// crash test's child process (see TestCrashKeepsCommittedSessions).
const crashChildEnv = "CORDON_SQLITESTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		if err := crashChild(path); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func openTemp(t testing.TB, opt Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sessions.db")
	st, err := Open(path, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

// dbPaths maps a store to its file, for the raw-bytes dump.
type dbPaths struct {
	mu sync.Mutex
	m  map[*Store]string
}

func (d *dbPaths) raw(t *testing.T, s store.Full) []byte {
	d.mu.Lock()
	path := d.m[s.(*Store)]
	d.mu.Unlock()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestConformance(t *testing.T) {
	paths := &dbPaths{m: map[*Store]string{}}
	storetest.Run(t, func(t *testing.T) store.Full {
		st, path := openTemp(t, Options{})
		paths.mu.Lock()
		paths.m[st] = path
		paths.mu.Unlock()
		return st
	},
		storetest.WithRawBytes(paths.raw),
		storetest.WithCount(func(t *testing.T, s store.Full) int {
			n, err := s.(*Store).Len(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return n
		}))
}

func TestConformanceSyncFull(t *testing.T) {
	// The durability setting must not change behaviour; run a sample.
	st, _ := openTemp(t, Options{Durability: SyncFull})
	var mode int
	if err := st.writer.QueryRow("PRAGMA synchronous").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != 2 {
		t.Fatalf("synchronous = %d with SyncFull, want 2 (FULL)", mode)
	}
	s := &store.Session{Hash: store.HashToken("x"), Principal: "alice", Data: []byte("d"),
		Created: time.Now(), LastSeen: time.Now(), IdleDeadline: time.Now().Add(time.Hour), Expires: time.Now().Add(time.Hour)}
	if err := st.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Find(context.Background(), s.Hash); err != nil {
		t.Fatal(err)
	}
}

func TestPragmas(t *testing.T) {
	st, _ := openTemp(t, Options{})
	var journal string
	if err := st.writer.QueryRow("PRAGMA journal_mode").Scan(&journal); err != nil {
		t.Fatal(err)
	}
	if journal != "wal" {
		t.Fatalf("journal_mode = %q, want wal", journal)
	}
	var sync, busy int
	if err := st.writer.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if err := st.writer.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil {
		t.Fatal(err)
	}
	if sync != 1 || busy != 5000 {
		t.Fatalf("synchronous = %d, busy_timeout = %d; want 1 (NORMAL) and 5000", sync, busy)
	}
	// The read pool cannot write.
	if _, err := st.reader.Exec("DELETE FROM sessions"); err == nil {
		t.Fatal("a reader connection could write")
	}
}

// The clock comes from Options.Now.
func TestNowOption(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	st, _ := openTemp(t, Options{Now: clock})
	s := &store.Session{Hash: store.HashToken("tok"), Principal: "alice", Created: now, LastSeen: now,
		IdleDeadline: now.Add(time.Minute), Expires: now.Add(time.Hour)}
	ctx := context.Background()
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Find(ctx, s.Hash); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := st.Find(ctx, s.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Find at the idle deadline by the store's clock: %v, want ErrNotFound", err)
	}
}

func TestTimesRoundTrip(t *testing.T) {
	st, _ := openTemp(t, Options{})
	ctx := context.Background()
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	s := &store.Session{Hash: store.HashToken("times"), Created: time.Time{}, LastSeen: time.Time{},
		IdleDeadline: far, Expires: far}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := st.Find(ctx, s.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.IsZero() || !got.LastSeen.IsZero() || !got.Expires.Equal(far) || !got.IdleDeadline.Equal(far) {
		t.Fatalf("times did not round-trip: created %v seen %v idle %v expires %v", got.Created, got.LastSeen, got.IdleDeadline, got.Expires)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, bytes.Repeat([]byte("this is not a database "), 400), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"empty", "", "empty path"},
		{"memory", ":memory:", "in-memory"},
		{"query", filepath.Join(dir, "a.db?mode=ro"), "must not contain"},
		{"missing dir", filepath.Join(dir, "no", "such", "dir", "s.db"), "no such file or directory"},
		{"parent is a file", filepath.Join(file, "s.db"), "not a directory"},
		{"path is a dir", dir, "is a directory"},
		{"corrupt", corrupt, "not a database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Open(tc.path, Options{})
			if err == nil {
				st.Close()
				t.Fatalf("Open(%q) succeeded", tc.path)
			}
			if !strings.HasPrefix(err.Error(), "sqlitestore: open") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q) = %q; want an error starting with \"sqlitestore: open\" and saying %q", tc.path, err, tc.want)
			}
		})
	}
	// A corrupt file is left as it was.
	b, err := os.ReadFile(corrupt)
	if err != nil || !bytes.HasPrefix(b, []byte("this is not a database")) {
		t.Fatalf("Open changed the corrupt file: %v", err)
	}
}

// A directory nobody may create files in, root included: /proc.
func TestOpenUnwritableDirectory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux's /proc, where not even root can create a file")
	}
	_, err := Open("/proc/cordon-sessions.db", Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "sqlitestore: open /proc/cordon-sessions.db:") {
		t.Fatalf("Open in /proc: %v; want a sqlitestore: open error naming the file", err)
	}
	t.Logf("error: %v", err)
}

func TestMigrationsLoad(t *testing.T) {
	ms, err := builtinMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d built-in migrations; the upgrade test needs at least 2", len(ms))
	}
}

func userVersion(t *testing.T, st *Store) int {
	t.Helper()
	var v int
	if err := st.writer.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// A database written at an older schema version is upgraded on Open and
// keeps its sessions.
func TestMigrateFromOlderVersion(t *testing.T) {
	ms, err := builtinMigrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := openWith(path, Options{}, ms[:1])
	if err != nil {
		t.Fatalf("open at version 1: %v", err)
	}
	if v := userVersion(t, old); v != 1 {
		t.Fatalf("user_version = %d after applying one migration", v)
	}
	ctx := context.Background()
	now := time.Now()
	s := &store.Session{Hash: store.HashToken("old"), Principal: "alice", Data: []byte("kept"),
		Created: now, LastSeen: now, IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	if err := old.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := old.RevokePrincipal(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen with every migration: %v", err)
	}
	defer st.Close()
	if v := userVersion(t, st); v != len(ms) {
		t.Fatalf("user_version = %d after upgrade, want %d", v, len(ms))
	}
	var idx int
	if err := st.writer.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'sessions_principal'`).Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("index of migration 2 missing after upgrade: %d, %v", idx, err)
	}
	got, err := st.Find(ctx, s.Hash)
	if err != nil || string(got.Data) != "kept" {
		t.Fatalf("session written at version 1 after upgrade: %v, %v", got, err)
	}
	// Reopening an up-to-date database changes nothing.
	st.Close()
	st2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if v := userVersion(t, st2); v != len(ms) {
		t.Fatalf("user_version = %d after a plain reopen", v)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	st, path := openTemp(t, Options{})
	if _, err := st.writer.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a version-99 database: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q should name the version and the file", err)
	}
}

// Two stores on one file (two processes, in production) see each other's
// writes and revocations.
func TestTwoStoresOneFile(t *testing.T) {
	a, path := openTemp(t, Options{})
	b, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	now := time.Now()
	s := &store.Session{Hash: store.HashToken("shared"), Principal: "alice", Data: []byte("0"),
		Created: now, LastSeen: now, IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	if err := a.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := b.Find(ctx, s.Hash)
	if err != nil {
		t.Fatalf("second store cannot see the first's session: %v", err)
	}
	if err := b.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, s); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update across stores: %v, want ErrConflict", err)
	}
	if err := b.RevokePrincipal(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Find(ctx, s.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revocation through one store not seen by the other: %v", err)
	}
}

// crashChild is the child process of the crash test. It opens the store at
// path, prints "ready", then creates and updates sessions forever, printing
// a line after each commit returns: "c N" when session N was created, "u N
// V" when session N's data was updated to V. The parent kills it with
// SIGKILL at an arbitrary moment.
func crashChild(path string) error {
	st, err := Open(path, Options{})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// os.Stdout is unbuffered: once Fprintf returns, the line is in
		// the pipe and survives our death.
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	say("ready")
	ctx := context.Background()
	created := make(chan int, 1024)
	errc := make(chan error, 2)
	go func() {
		for i := 0; ; i++ {
			now := time.Now()
			s := &store.Session{Hash: store.HashToken(crashToken(i)), Principal: "user" + strconv.Itoa(i%7),
				Data: []byte("0"), Created: now, LastSeen: now, IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
			if err := st.Create(ctx, s); err != nil {
				errc <- err
				return
			}
			say("c %d", i)
			select {
			case created <- i:
			default:
			}
		}
	}()
	go func() {
		for i := range created {
			s, err := st.Find(ctx, store.HashToken(crashToken(i)))
			if err != nil {
				errc <- err
				return
			}
			for v := 1; v <= 3; v++ {
				s.Data = []byte(strconv.Itoa(v))
				if err := st.Update(ctx, s); err != nil {
					errc <- err
					return
				}
				say("u %d %d", i, v)
			}
		}
	}()
	return <-errc
}

// crashToken is the test's stand-in for session i's cookie value.
func crashToken(i int) string { return "crash-test-session-" + strconv.Itoa(i) }

func TestCrashKeepsCommittedSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not get ready: %q %v; stderr: %s", lines.Text(), lines.Err(), stderr.String())
	}
	created := map[int]bool{}
	updated := map[int]int{}
	killed := false
	parse := func(line string) {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "c":
			i, _ := strconv.Atoi(f[1])
			created[i] = true
		case len(f) == 3 && f[0] == "u":
			i, _ := strconv.Atoi(f[1])
			v, _ := strconv.Atoi(f[2])
			updated[i] = v
		default:
			t.Errorf("child said %q", line)
		}
	}
	for lines.Scan() {
		parse(lines.Text())
		if !killed && len(created) >= 300 && len(updated) >= 20 {
			// SIGKILL: no deferred function, no Close, no checkpoint.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
			// Keep reading: lines already in the pipe were committed too.
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("child exited before it was killed: %v; stderr: %s", werr, stderr.String())
	}
	t.Logf("killed the child after %d creates and %d updated sessions were reported", len(created), len(updated))

	st, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer st.Close()
	ctx := context.Background()
	for i := range created {
		s, err := st.Find(ctx, store.HashToken(crashToken(i)))
		if err != nil {
			t.Fatalf("session %d was committed before the kill but is lost: %v", i, err)
		}
		got, _ := strconv.Atoi(string(s.Data))
		// The child may have committed one more update than it reported.
		if want := updated[i]; got != want && got != want+1 {
			t.Fatalf("session %d: data %d after the kill, last reported update %d", i, got, want)
		}
		if s.Version != int64(got)+1 {
			t.Fatalf("session %d: version %d with data %d", i, s.Version, got)
		}
	}
	// The reopened store is writable.
	now := time.Now()
	s := &store.Session{Hash: store.HashToken("after-crash"), Created: now, LastSeen: now,
		IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatalf("Create after the crash: %v", err)
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Full {
		st, _ := openTemp(b, Options{})
		return st
	})
}

func TestUseAfterClose(t *testing.T) {
	st, _ := openTemp(t, Options{Readers: 2})
	ctx := context.Background()
	now := time.Now()
	s := &store.Session{Hash: store.HashToken("closed"), Created: now, LastSeen: now,
		IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for i := 0; i < 3; i++ { // more calls than finders: none may block
		if _, err := st.Find(ctx, s.Hash); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Find after Close: %v, want an error that is not ErrNotFound", err)
		}
	}
	if err := st.Create(ctx, &store.Session{Hash: store.HashToken("x")}); err == nil {
		t.Fatal("Create after Close succeeded")
	}
}

// A Find waiting for a free read connection gives up with its context.
func TestFindWaitHonoursContext(t *testing.T) {
	st, _ := openTemp(t, Options{Readers: 1})
	f := <-st.finders // every read connection busy
	<-st.wtoken       // and the writer
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := st.Find(ctx, store.HashToken("x"))
	st.finders <- f
	st.wtoken <- struct{}{}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Find with every connection busy: %v, want DeadlineExceeded", err)
	}
	if _, err := st.Find(context.Background(), store.HashToken("x")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Find once a connection is free: %v, want ErrNotFound", err)
	}
}

// Find, Update, Touch, revocation by fingerprint and List by principal use
// an index; none scans the sessions table.
func TestQueryPlans(t *testing.T) {
	st, _ := openTemp(t, Options{})
	for name, q := range map[string]string{
		"find":          findQuery + liveWhere("s", "?2"),
		"create":        qCreate,
		"update":        qUpdate,
		"versionOf":     qVersionOf,
		"touch":         qTouch,
		"delete":        qDel,
		"revokeRange":   qRevokeRange,
		"listPrincipal": qListPrincipal,
	} {
		rows, err := st.writer.Query("EXPLAIN QUERY PLAN "+q, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "; ")
		if !strings.Contains(all, "USING INDEX") && !strings.Contains(all, "USING PRIMARY KEY") {
			t.Errorf("%s uses no index: %s", name, all)
		}
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN s") || strings.HasPrefix(step, "SCAN sessions") {
				t.Errorf("%s scans the sessions table: %s", name, all)
			}
		}
		t.Logf("%s: %s", name, all)
	}
}

// Log-ins alone (Creates, nothing else) must not grow the WAL without
// bound: SQLite's automatic checkpoint (every 1000 pages, about 4 MB) has
// to run. 2500 Creates write about 35 MB of WAL frames when it does not.
func TestWALBoundedUnderCreates(t *testing.T) {
	st, path := openTemp(t, Options{})
	ctx := context.Background()
	now := time.Now()
	for i := 0; i < 2500; i++ {
		var tok [32]byte
		binary.BigEndian.PutUint64(tok[:], uint64(i))
		s := &store.Session{Hash: store.HashToken(string(tok[:])), Principal: "user" + strconv.Itoa(i%100),
			Data: bytes.Repeat([]byte("d"), 200), Created: now, LastSeen: now,
			IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour), UserAgent: "Mozilla/5.0"}
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	const bound = 8 << 20 // twice the automatic checkpoint's threshold
	t.Logf("WAL after 2500 Creates: %d bytes", fi.Size())
	if fi.Size() > bound {
		t.Fatalf("WAL is %d bytes after 2500 Creates, want at most %d: automatic checkpoints are not running", fi.Size(), bound)
	}
}

// New runs on a *sql.DB the application opened: the whole conformance
// suite passes, and Close leaves the database open.
func TestNewOnAppDB(t *testing.T) {
	open := func(t *testing.T) *sql.DB {
		t.Helper()
		db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "app.db")+
			"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	storetest.Run(t, func(t *testing.T) store.Full {
		st, err := New(open(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}, storetest.WithRawBytes(func(t *testing.T, s store.Full) []byte {
		var all []byte
		rows, err := s.(*Store).writer.Query(`SELECT hash || principal || data || last_ip || user_agent FROM sessions`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}))
	db := open(t)
	st, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := db.Ping(); err != nil {
		t.Fatalf("the application's database after the store's Close: %v", err)
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	// ExistingOnly on a database without the schema writes nothing.
	empty := open(t)
	if _, err := New(empty, Options{ExistingOnly: true}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("New(ExistingOnly) on an empty database: %v, want ErrNoStore", err)
	}
}

// ExistingOnly: no file, or a file without the schema or with an older
// one, is ErrNoStore and leaves the disk as it was.
func TestOpenExistingOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := Open(missing, Options{ExistingOnly: true}); !errors.Is(err, ErrNoStore) {
		t.Fatalf("Open(ExistingOnly) of a missing file: %v, want ErrNoStore", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused open created the file: %v", err)
	}
	ms, err := builtinMigrations()
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old.db")
	st, err := openWith(old, Options{}, ms[:1])
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := Open(old, Options{ExistingOnly: true}); !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), "cordon migrate") {
		t.Fatalf("Open(ExistingOnly) of an outdated file: %v, want ErrNoStore naming cordon migrate", err)
	}
	st, err = Open(old, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = Open(old, Options{ExistingOnly: true})
	if err != nil {
		t.Fatalf("Open(ExistingOnly) of an up-to-date file: %v", err)
	}
	st.Close()
}
