package reqlog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testLine(i int) *Line {
	l := fullLine()
	l.Seq = int64(i)
	l.Path = fmt.Sprintf("/%d", i)
	return &l
}

// syncBuffer is a bytes.Buffer safe for the flusher and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func readAll(t *testing.T, r io.Reader) []Line {
	t.Helper()
	ls, err := ReadLines(r)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestOpenFileModeAndAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	for round := 1; round <= 2; round++ {
		w, err := Open(path, WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteLine(testLine(round)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := w.WriteLine(testLine(9)); !errors.Is(err, ErrClosed) {
			t.Fatalf("WriteLine after Close: %v", err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	f, _ := os.Open(path)
	defer f.Close()
	ls := readAll(t, f)
	if len(ls) != 2 || ls[0].Seq != 1 || ls[1].Seq != 2 {
		t.Fatalf("reopening did not append: %+v", ls)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "log"), WriterOptions{}); err == nil || !strings.HasPrefix(err.Error(), "reqlog: open: ") {
		t.Fatalf("Open in a missing directory: %v", err)
	}
	if _, err := Open("", WriterOptions{}); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

func TestOpenStdout(t *testing.T) {
	w, err := Open("-", WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w.out != os.Stdout || w.closer != nil {
		t.Fatalf("Open(-) does not write to stdout or would close it")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stdout.Stat(); err != nil {
		t.Fatalf("stdout closed: %v", err)
	}
}

// TestCloseLosesNothing writes from many goroutines with a flush interval
// that never fires: everything must come out of Close.
func TestCloseLosesNothing(t *testing.T) {
	var out syncBuffer
	w := NewWriter(&out, WriterOptions{FlushInterval: time.Hour, FlushSize: 4096})
	var accepted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; ; i++ {
				if err := w.WriteLine(testLine(g*100000 + i)); err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("WriteLine: %v", err)
					}
					return
				}
				accepted.Add(1)
			}
		}()
	}
	close(start)
	for w.Stats().Lines < 2000 {
		time.Sleep(time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	ls := readAll(t, strings.NewReader(out.String()))
	if int64(len(ls)) != accepted.Load() || w.Stats().Lines != accepted.Load() {
		t.Fatalf("%d lines written, %d accepted, stats %+v", len(ls), accepted.Load(), w.Stats())
	}
	seen := map[int64]bool{}
	for _, l := range ls {
		if seen[l.Seq] || l.Path != fmt.Sprintf("/%d", l.Seq) {
			t.Fatalf("torn or repeated line %+v", l)
		}
		seen[l.Seq] = true
	}
}

func TestFlushInterval(t *testing.T) {
	var out syncBuffer
	w := NewWriter(&out, WriterOptions{FlushInterval: 5 * time.Millisecond})
	defer w.Close()
	w.WriteLine(testLine(1))
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), `"seq":1,`); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("line never flushed by the interval")
		}
	}
}

func TestFlushSize(t *testing.T) {
	var out syncBuffer
	w := NewWriter(&out, WriterOptions{FlushInterval: time.Hour, FlushSize: 1024})
	defer w.Close()
	for i := 0; i < 5; i++ { // > 1 KiB
		w.WriteLine(testLine(i))
	}
	for deadline := time.Now().Add(10 * time.Second); out.String() == ""; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a full buffer was not written out")
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, strings.NewReader(out.String()))); n != 5 {
		t.Fatalf("%d lines after Flush", n)
	}
}

// syncCounter is an output that counts fsyncs.
type syncCounter struct {
	syncBuffer
	syncs atomic.Int64
}

func (s *syncCounter) Sync() error { s.syncs.Add(1); return nil }

func TestSyncPolicy(t *testing.T) {
	clock := &fakeClock{base: time.Unix(0, 0), step: 300 * time.Millisecond}
	out := &syncCounter{}
	w := NewWriter(out, WriterOptions{FlushInterval: time.Millisecond, SyncInterval: time.Second, Now: clock.Now})
	w.WriteLine(testLine(1))
	for deadline := time.Now().Add(10 * time.Second); out.syncs.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no fsync after SyncInterval")
		}
	}
	time.Sleep(20 * time.Millisecond) // many idle flushes: nothing new to sync
	if n := out.syncs.Load(); n != 1 {
		t.Fatalf("%d fsyncs for one write", n)
	}
	w.WriteLine(testLine(2))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := out.syncs.Load(); n != 2 {
		t.Fatalf("%d fsyncs after Close, want 2", n)
	}

	out = &syncCounter{}
	w = NewWriter(out, WriterOptions{SyncInterval: -1})
	w.WriteLine(testLine(1))
	w.Flush()
	if out.syncs.Load() != 0 {
		t.Fatal("fsync with SyncInterval < 0 before Close")
	}
	w.Close()
	if out.syncs.Load() != 1 {
		t.Fatal("no fsync on Close")
	}
}

// flakyWriter fails the first failures writes after writing half of them.
type flakyWriter struct {
	syncBuffer
	failures atomic.Int64
}

func (f *flakyWriter) Write(p []byte) (int, error) {
	if f.failures.Add(-1) >= 0 {
		n, _ := f.syncBuffer.Write(p[:len(p)/2])
		return n, errors.New("transient")
	}
	return f.syncBuffer.Write(p)
}

func TestWriteErrorsRetriedWithoutTearing(t *testing.T) {
	var logs syncBuffer
	out := &flakyWriter{}
	out.failures.Store(3)
	clock := &fakeClock{base: time.Unix(0, 0)} // frozen: one report a second means one report
	w := NewWriter(out, WriterOptions{FlushInterval: time.Hour, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Now: clock.Now})
	for i := 1; i <= 10; i++ {
		w.WriteLine(testLine(i))
		if err := w.Flush(); (err != nil) != (i <= 3) {
			t.Fatalf("flush %d: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ls := readAll(t, strings.NewReader(out.String()))
	if len(ls) != 10 {
		t.Fatalf("%d lines", len(ls))
	}
	for i, l := range ls {
		if l.Seq != int64(i+1) {
			t.Fatalf("line %d has seq %d", i, l.Seq)
		}
	}
	if st := w.Stats(); st.WriteErrors != 3 || st.Lines != 10 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Reports come from the flusher goroutine, and Flush is called here, so
	// only Close's final report is expected.
	if n := strings.Count(logs.String(), "request log output failing"); n != 1 {
		t.Fatalf("%d reports:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"write_errors":3`) {
		t.Fatalf("report does not count errors: %s", logs.String())
	}
}

// TestFullDisk writes to /dev/full, where every write fails with ENOSPC:
// requests must not block beyond MaxWait, errors are counted and reported at
// most once a second, and Close reports the loss.
func TestFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("this test needs Linux's /dev/full: %v", err)
	}
	var logs syncBuffer
	clock := &fakeClock{base: time.Unix(0, 0)} // frozen clock
	w, err := Open("/dev/full", WriterOptions{
		FlushInterval: time.Millisecond, FlushSize: 1024, MaxPending: 4096, MaxWait: time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	var full int
	for i := 0; i < 200; i++ {
		switch err := w.WriteLine(testLine(i)); {
		case errors.Is(err, ErrFull):
			full++
		case err != nil:
			t.Fatal(err)
		}
	}
	for w.Stats().WriteErrors < 3 {
		time.Sleep(time.Millisecond)
	}
	st := w.Stats()
	if full == 0 || st.Dropped != int64(full) || st.Lines+st.Dropped != 200 {
		t.Fatalf("full %d, stats %+v", full, st)
	}
	if n := strings.Count(logs.String(), "request log output failing"); n != 1 {
		t.Fatalf("%d reports within one second, want 1:\n%s", n, logs.String())
	}
	// Shedding: with the output still failing, a line that finds no room is
	// dropped without waiting (this would hang for an hour otherwise).
	w.mu.Lock()
	w.opt.MaxWait = time.Hour
	w.mu.Unlock()
	for i := 0; i < 20; i++ {
		if err := w.WriteLine(testLine(i)); err != nil && !errors.Is(err, ErrFull) {
			t.Fatal(err)
		}
	}
	err = w.Close()
	if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "bytes of request log lost") {
		t.Fatalf("Close: %v", err)
	}
	if !strings.Contains(logs.String(), "no space left") {
		t.Fatalf("reports do not say why: %s", logs.String())
	}
}

// stallWriter blocks every write until released.
type stallWriter struct {
	syncBuffer
	release chan struct{}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	<-s.release
	return s.syncBuffer.Write(p)
}

// TestStalledOutputDoesNotBlockRequests: with the output stuck in a write,
// concurrent writers all return (accepted into the buffer or dropped after
// MaxWait), and once the output recovers every accepted line is written.
func TestStalledOutputDoesNotBlockRequests(t *testing.T) {
	out := &stallWriter{release: make(chan struct{})}
	w := NewWriter(out, WriterOptions{FlushInterval: time.Millisecond, FlushSize: 2048, MaxPending: 8192, MaxWait: 2 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	var wg sync.WaitGroup
	var accepted, dropped atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				switch err := w.WriteLine(testLine(g*1000 + i)); {
				case err == nil:
					accepted.Add(1)
				case errors.Is(err, ErrFull):
					dropped.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait() // would hang if requests waited on the stalled write
	if dropped.Load() == 0 {
		t.Fatal("nothing dropped although the output is stalled and the buffer bounded")
	}
	close(out.release)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// The output works again: lines are accepted, no longer shed.
	if err := w.WriteLine(testLine(99999)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	accepted.Add(1)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ls := readAll(t, strings.NewReader(out.String()))
	if int64(len(ls)) != accepted.Load() || w.Stats().Dropped != dropped.Load() {
		t.Fatalf("%d lines, %d accepted, %d dropped, stats %+v", len(ls), accepted.Load(), dropped.Load(), w.Stats())
	}
}

// TestCloseWakesWaiters: lines waiting for room when Close is called return
// ErrClosed at once, even while the output is still stuck.
func TestCloseWakesWaiters(t *testing.T) {
	out := &stallWriter{release: make(chan struct{})}
	defer close(out.release)
	w := NewWriter(out, WriterOptions{FlushInterval: time.Hour, FlushSize: 1024, MaxPending: 1024, MaxWait: time.Hour})
	for i := 0; i < 3; i++ { // more than FlushSize: the flusher gets stuck writing
		w.WriteLine(testLine(i))
	}
	errc := make(chan error)
	for i := 0; i < 4; i++ {
		go func() { errc <- w.WriteLine(testLine(3)) }()
	}
	time.Sleep(10 * time.Millisecond) // let them block (if they return first, fine too)
	go w.Close()
	timeout := time.After(10 * time.Second)
	closedErrs := 0
	for i := 0; i < 4; i++ {
		select {
		case err := <-errc:
			if errors.Is(err, ErrClosed) {
				closedErrs++
			} else if err != nil {
				t.Fatalf("waiter: %v", err)
			}
		case <-timeout:
			t.Fatal("a WriteLine waiting for room was not released by Close")
		}
	}
	if closedErrs == 0 {
		t.Fatal("no WriteLine was waiting for room")
	}
}

func TestReadLines(t *testing.T) {
	var buf bytes.Buffer
	for i := 1; i <= 3; i++ {
		buf.Write(AppendJSON(nil, testLine(i)))
	}
	buf.WriteString("\n{\"v\":1,\"seq\":4,\"future_field\":[1,2]}") // blank line, unknown field, no final newline
	ls := readAll(t, &buf)
	if len(ls) != 4 || ls[3].Seq != 4 || ls[0] != *testLine(1) {
		t.Fatalf("%+v", ls)
	}
	if _, err := ReadLines(strings.NewReader("{\"v\":1}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %v", err)
	}
	if _, err := ReadLines(strings.NewReader("\x1f\x8bnot gzip")); err == nil {
		t.Fatal("bad gzip accepted")
	}
}

func TestReadLinesGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzipWriter(&buf)
	zw.Write(AppendJSON(nil, testLine(7)))
	zw.Close()
	ls := readAll(t, &buf)
	if len(ls) != 1 || ls[0].Seq != 7 {
		t.Fatalf("%+v", ls)
	}
}

func TestWriteLineOutputIsJSON(t *testing.T) {
	var out syncBuffer
	w := NewWriter(&out, WriterOptions{})
	l := testLine(1)
	l.UA = "\"\n\xff"
	w.WriteLine(l)
	w.Close()
	if !json.Valid([]byte(strings.TrimSpace(out.String()))) {
		t.Fatalf("invalid: %q", out.String())
	}
}

func gzipWriter(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }

// slowSync is an output whose fsync blocks until released.
type slowSync struct {
	syncBuffer
	started chan struct{}
	release chan struct{}
}

func (s *slowSync) Sync() error {
	select {
	case s.started <- struct{}{}:
	default:
	}
	<-s.release
	return nil
}

// TestSlowFsyncDoesNotHoldUpWrites: while an fsync is stuck, lines are
// still written out.
func TestSlowFsyncDoesNotHoldUpWrites(t *testing.T) {
	clock := &fakeClock{base: time.Unix(0, 0), step: time.Second}
	out := &slowSync{started: make(chan struct{}, 1), release: make(chan struct{})}
	w := NewWriter(out, WriterOptions{FlushInterval: time.Millisecond, SyncInterval: time.Second, Now: clock.Now})
	w.WriteLine(testLine(1))
	<-out.started // the flusher asked for an fsync, which is now stuck
	for i := 2; i <= 50; i++ {
		w.WriteLine(testLine(i))
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Count(out.String(), "\n") < 50; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("lines not written while fsync is stuck: %d", strings.Count(out.String(), "\n"))
		}
	}
	close(out.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// settableClock is a clock the test moves.
type settableClock struct{ ns atomic.Int64 }

func (c *settableClock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("device gone") }

// TestErrorReportsOncePerSecond: continuous failures give one report per
// second of the Writer's clock, each counting the failures since the last.
func TestErrorReportsOncePerSecond(t *testing.T) {
	var logs syncBuffer
	clock := &settableClock{}
	w := NewWriter(brokenWriter{}, WriterOptions{FlushInterval: time.Millisecond, Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Now: clock.Now})
	defer w.Close()
	reports := func() int { return strings.Count(logs.String(), "request log output failing") }
	w.WriteLine(testLine(1))
	waitFor := func(cond func() bool, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs.String())
			}
		}
	}
	waitFor(func() bool { return reports() == 1 }, "the first report")
	errsAtFirst := w.Stats().WriteErrors
	waitFor(func() bool { return w.Stats().WriteErrors >= errsAtFirst+5 }, "more failures")
	if n := reports(); n != 1 {
		t.Fatalf("%d reports within the same second", n)
	}
	clock.ns.Add(int64(time.Second))
	waitFor(func() bool { return reports() == 2 }, "the second report after a second")
	if !strings.Contains(logs.String(), "device gone") {
		t.Fatalf("report without the cause: %s", logs.String())
	}
}
