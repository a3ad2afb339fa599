package storecache_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
	"github.com/cordon-sec/cordon/store/pgstore"
	"github.com/cordon-sec/cordon/store/redisstore"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// server is a private database server the test may kill; the shared ones
// that ./test.sh starts are never touched.
type server struct {
	url   string
	kill  func()
	start func()
}

// privatePostgres initialises and starts a PostgreSQL of the test's own.
// As root it runs the server as the postgres user, which PostgreSQL
// requires.
func privatePostgres(t *testing.T) *server {
	t.Helper()
	bin := os.Getenv("CORDON_TEST_PG_BIN")
	if bin == "" {
		t.Fatal("CORDON_TEST_PG_BIN is not set: run the tests with ./test.sh, which installs PostgreSQL and exports its bin directory")
	}
	dir, err := os.MkdirTemp("", "cordon-fault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var prefix []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user to run PostgreSQL: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		prefix = []string{"runuser", "-u", "postgres", "--"}
	}
	run := func(args ...string) {
		t.Helper()
		args = append(append([]string(nil), prefix...), args...)
		cmd := exec.Command(args[0], args[1:]...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	port := freePort(t)
	run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync")
	s := &server{url: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", port)}
	s.start = func() {
		run(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w",
			"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", port, dir), "start")
	}
	// Immediate shutdown is PostgreSQL's crash: no checkpoint, recovery from
	// the WAL on the next start.
	s.kill = func() { run(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop") }
	s.start()
	t.Cleanup(func() {
		args := append(append([]string(nil), prefix...), filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop")
		exec.Command(args[0], args[1:]...).Run()
	})
	return s
}

// privateRedis starts a redis-server of the test's own, with an
// append-only file synced on every write; kill is SIGKILL.
func privateRedis(t *testing.T) *server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found: run the tests with ./test.sh, which installs it")
	}
	dir := t.TempDir()
	port := freePort(t)
	var (
		mu  sync.Mutex
		cmd *exec.Cmd
	)
	s := &server{url: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	s.start = func() {
		t.Helper()
		c := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--appendonly", "yes", "--appendfsync", "always", "--save", "")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		cmd = c
		mu.Unlock()
		for i := 0; ; i++ {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				conn.Close()
				break
			}
			if i == 100 {
				t.Fatal("private redis-server did not start")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	s.kill = func() {
		mu.Lock()
		c := cmd
		mu.Unlock()
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
	}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// faultLoad creates sessions and finds random committed ones, through a
// cache and directly, checking every answer.
type faultLoad struct {
	c  *cache.Cache
	st store.Full

	mu        sync.Mutex
	committed []*store.Session
	wrong     []string

	ok, failed    atomic.Int64
	lateSuccesses atomic.Int64 // successful Finds that started after killedAt+bound
	killedAt      atomic.Int64 // unix nanos; 0 while up
	bound         time.Duration
}

func (l *faultLoad) worker(ctx context.Context, id int) {
	r := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	for n := 0; ctx.Err() == nil; n++ {
		if n%3 == 0 {
			p := fmt.Sprintf("user%d", r.IntN(50))
			s := session(nil, p)
			s.Data = []byte("owner=" + p)
			opCtx, cancel := context.WithTimeout(ctx, time.Second)
			err := l.c.Create(opCtx, s)
			cancel()
			if err == nil {
				l.mu.Lock()
				l.committed = append(l.committed, s)
				l.mu.Unlock()
			}
			continue
		}
		l.mu.Lock()
		if len(l.committed) == 0 {
			l.mu.Unlock()
			time.Sleep(time.Millisecond)
			continue
		}
		want := l.committed[r.IntN(len(l.committed))]
		l.mu.Unlock()
		var src store.Store = l.c
		if n%2 == 0 {
			src = l.st
		}
		started := time.Now()
		opCtx, cancel := context.WithTimeout(ctx, time.Second)
		got, err := src.Find(opCtx, want.Hash)
		cancel()
		if err != nil {
			l.failed.Add(1)
			continue
		}
		l.ok.Add(1)
		if k := l.killedAt.Load(); k != 0 && started.After(time.Unix(0, k).Add(l.bound)) {
			l.lateSuccesses.Add(1)
		}
		if got.Hash != want.Hash || got.Principal != want.Principal || !bytes.Equal(got.Data, want.Data) {
			l.mu.Lock()
			l.wrong = append(l.wrong, fmt.Sprintf("Find(%s) returned %s of %q", want.Fingerprint(), got.Fingerprint(), got.Principal))
			l.mu.Unlock()
		}
	}
}

// TestFault kills a private database server under load and restarts it.
func TestFault(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  func(*testing.T) *server
		open func(t *testing.T, url string) store.Full
	}{
		{"postgres", privatePostgres, func(t *testing.T, url string) store.Full {
			st, err := pgstore.Open(context.Background(), url, pgstore.Options{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
		{"redis", privateRedis, func(t *testing.T, url string) store.Full {
			st, err := redisstore.Open(context.Background(), url, redisstore.Options{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.srv(t)
			st := tc.open(t, srv.url)
			const bound = 300 * time.Millisecond
			l := &faultLoad{st: st, bound: bound, c: newCache(t, st, cache.Options{Bound: bound, TTL: time.Minute})}
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); l.worker(ctx, i) }()
			}
			waitFor(t, "load before the outage", func() bool { return l.ok.Load() > 200 })
			l.mu.Lock()
			before := len(l.committed)
			l.mu.Unlock()

			srv.kill()
			l.killedAt.Store(time.Now().UnixNano())
			okAtKill := l.ok.Load()
			time.Sleep(3 * bound)
			// Clients retry for a while before they give up; the outage
			// lasts until operations visibly fail.
			waitFor(t, "operations to fail during the outage", func() bool { return l.failed.Load() > 0 })
			failedInOutage := l.failed.Load()
			if n := l.lateSuccesses.Load(); n > 0 {
				t.Errorf("%d Finds that started a bound after the server died succeeded: stale answers", n)
			}
			t.Logf("%s: %d finds ok before the kill, %d failed during the outage", tc.name, okAtKill, failedInOutage)

			srv.start()
			l.killedAt.Store(0)
			okAtRestart := l.ok.Load()
			waitFor(t, "recovery after the restart", func() bool { return l.ok.Load() > okAtRestart+200 })
			stop()
			wg.Wait()

			l.mu.Lock()
			defer l.mu.Unlock()
			for _, w := range l.wrong {
				t.Error(w)
			}
			for i, s := range l.committed {
				for _, src := range []store.Store{st, l.c} {
					got, err := src.Find(context.Background(), s.Hash)
					if err != nil {
						t.Fatalf("session %d of %d (%d before the outage) lost: %v", i, len(l.committed), before, err)
					}
					if got.Principal != s.Principal {
						t.Fatalf("session %s came back as %q's", s.Fingerprint(), got.Principal)
					}
				}
			}
			t.Logf("%s: %d sessions committed (%d before the outage), all found after recovery", tc.name, len(l.committed), before)
		})
	}
}

var quiet = slog.New(slog.DiscardHandler)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
