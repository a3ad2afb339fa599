package reqlog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Errors WriteLine returns.
var (
	// ErrClosed is returned for a line written after Close: it was not
	// accepted.
	ErrClosed = errors.New("reqlog: writer closed")
	// ErrFull is returned for a line dropped (and counted) because
	// MaxPending bytes were waiting for an output that did not keep up.
	ErrFull = errors.New("reqlog: buffer full, line dropped")
)

// WriterOptions configure a Writer. Zero values take the defaults.
type WriterOptions struct {
	// FlushInterval is how often buffered lines are written out.
	// Default 100 ms.
	FlushInterval time.Duration

	// FlushSize: once this many bytes are buffered they are written out at
	// once, without waiting for the interval. Default 64 KiB.
	FlushSize int

	// SyncInterval is how often the file is fsynced after lines were
	// written to it; negative means only on Close. Default 1 s.
	SyncInterval time.Duration

	// MaxPending bounds the bytes waiting to be written while the output is
	// slow or failing. Default 8 MiB.
	MaxPending int

	// MaxWait is how long WriteLine waits for room when MaxPending is
	// reached before it drops the line. Default 100 ms.
	MaxWait time.Duration

	// Logger receives write failures and dropped lines, at most one record
	// a second. Default slog.Default().
	Logger *slog.Logger

	// Now is the clock for the once-a-second reporting. Default time.Now.
	Now func() time.Time
}

// Stats counts what a Writer has done.
type Stats struct {
	Lines       int64 // lines accepted
	Dropped     int64 // lines refused because the buffer stayed full
	WriteErrors int64 // failed writes and fsyncs of the output
}

// Writer writes request-log lines to a file or stream through an in-memory
// buffer, so that requests never wait on a write system call.
//
// Policy: WriteLine encodes the line and appends it to the buffer under a
// short lock (a memory copy). One background goroutine writes the buffer out
// every FlushInterval and as soon as FlushSize bytes are waiting; another
// fsyncs a file every SyncInterval when something was written since the last
// fsync, so that writing goes on while the disk catches up.
// Flush writes everything out now; Close writes everything out, fsyncs and
// closes: no line accepted before Close is lost unless the output itself
// fails. After a crash of the process (not of the machine) at most the
// last FlushInterval of lines is lost; after a power loss, at most the last
// SyncInterval.
//
// A failed write keeps the unwritten bytes and retries them on the next
// flush, so lines are not torn by a transient error. Errors are counted and
// reported through the Logger at most once a second; they never panic. If
// the output stalls or fails (a full disk) and MaxPending bytes pile up,
// WriteLine waits at most MaxWait for room and then drops the line, counting
// it; until a write succeeds again, further lines that find no room are
// dropped at once: a request is never blocked for long by its log, and only
// the first ones of an outage wait at all.
//
// A Writer also owns the process's request counter (NextSeq): use one
// Writer per process.
type Writer struct {
	out    io.Writer
	syncer interface{ Sync() error }
	closer io.Closer
	opt    WriterOptions
	log    *slog.Logger

	seq     atomic.Int64
	lines   atomic.Int64
	dropped atomic.Int64
	errs    atomic.Int64
	retried atomic.Int64 // bytes waiting in unwritten, for the MaxPending check

	encBufs sync.Pool // *[]byte scratch for encoding, never reachable outside WriteLine

	mu      sync.Mutex
	pending []byte
	closed  bool
	waiting bool          // a WriteLine waits on room
	shed    bool          // a wait for room timed out and no write succeeded since
	room    chan struct{} // closed when pending is taken, if waiting

	kick chan struct{} // cap 1: pending reached FlushSize
	stop chan struct{}
	done chan struct{}

	// fsync runs on its own goroutine so that writes go on while the disk
	// catches up.
	syncKick chan struct{} // cap 1: fsync what was written so far
	syncDone chan struct{}

	errMu   sync.Mutex
	lastErr error

	flushMu    sync.Mutex // held while writing to out; guards the fields below
	spare      []byte
	unwritten  []byte // bytes a failed write left, written first next time
	dirty      bool   // written since the last fsync request
	lastSync   time.Time
	lastReport time.Time
	repErrs    int64
	repDropped int64
}

// Open returns a Writer appending to the file at path (created with mode
// 0600 if missing, opened O_APPEND so lines from several processes do not
// overwrite each other), or to standard output if path is "-". Close closes
// the file (never standard output).
func Open(path string, opt WriterOptions) (*Writer, error) {
	if path == "-" {
		return NewWriter(os.Stdout, opt), nil
	}
	if path == "" {
		return nil, errors.New("reqlog: open: empty path")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("reqlog: open: %w", err)
	}
	w := NewWriter(f, opt)
	w.closer = f
	return w, nil
}

// NewWriter returns a Writer writing to out. If out has a Sync() error method
// (an *os.File that is a regular file) it is fsynced per the policy. Close
// does not close out. The Writer runs two goroutines until Close.
func NewWriter(out io.Writer, opt WriterOptions) *Writer {
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = 100 * time.Millisecond
	}
	if opt.FlushSize <= 0 {
		opt.FlushSize = 64 << 10
	}
	if opt.SyncInterval == 0 {
		opt.SyncInterval = time.Second
	}
	if opt.MaxPending <= 0 {
		opt.MaxPending = 8 << 20
	}
	if opt.MaxPending < opt.FlushSize {
		opt.MaxPending = opt.FlushSize
	}
	if opt.MaxWait <= 0 {
		opt.MaxWait = 100 * time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	w := &Writer{
		out:      out,
		opt:      opt,
		log:      opt.Logger,
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		syncKick: make(chan struct{}, 1),
		syncDone: make(chan struct{}),
	}
	w.encBufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	if s, ok := out.(interface{ Sync() error }); ok && syncable(out) {
		w.syncer = s
	}
	w.lastSync = opt.Now()
	go w.run()
	go w.runSync()
	return w
}

// syncable reports whether out should be fsynced: files that are not
// regular (terminals, pipes) reject fsync.
func syncable(out io.Writer) bool {
	f, ok := out.(*os.File)
	if !ok {
		return true
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode().IsRegular()
}

// NextSeq returns the next value of the per-process request counter,
// starting at 1. Middleware calls it when a request arrives; another
// component logging through the same Writer calls it for its own requests.
func (w *Writer) NextSeq() int64 { return w.seq.Add(1) }

// Stats returns the Writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Lines: w.lines.Load(), Dropped: w.dropped.Load(), WriteErrors: w.errs.Load()}
}

// WriteLine encodes l (see AppendJSON) and buffers it for writing. It returns
// ErrClosed after Close, and ErrFull when the line was dropped because the
// output did not keep up (see Writer; counted in Stats.Dropped).
func (w *Writer) WriteLine(l *Line) error {
	bp := w.encBufs.Get().(*[]byte)
	b := AppendJSON((*bp)[:0], l)
	err := w.append(b)
	if cap(b) <= 64<<10 {
		*bp = b
		w.encBufs.Put(bp)
	}
	return err
}

func (w *Writer) append(b []byte) error {
	var timer *time.Timer
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		backlog := len(w.pending) + int(w.retried.Load())
		if backlog+len(b) <= w.opt.MaxPending || backlog == 0 {
			w.pending = append(w.pending, b...)
			full := len(w.pending) >= w.opt.FlushSize
			w.mu.Unlock()
			w.lines.Add(1)
			if full {
				select {
				case w.kick <- struct{}{}:
				default:
				}
			}
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		if w.shed {
			// The output is still failing after a line waited MaxWait:
			// drop at once instead of making every request wait.
			w.mu.Unlock()
			w.dropped.Add(1)
			return ErrFull
		}
		if !w.waiting {
			w.waiting = true
			w.room = make(chan struct{})
		}
		room := w.room
		w.mu.Unlock()
		select {
		case w.kick <- struct{}{}:
		default:
		}
		if timer == nil {
			timer = time.NewTimer(w.opt.MaxWait)
		}
		select {
		case <-room:
		case <-timer.C:
			w.mu.Lock()
			w.shed = true
			w.mu.Unlock()
			w.dropped.Add(1)
			return ErrFull
		}
	}
}

// run is the background flusher.
func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTicker(w.opt.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.kick:
		}
		w.flushMu.Lock()
		w.flushLocked()
		if w.dirty && w.syncer != nil && w.opt.SyncInterval > 0 && w.opt.Now().Sub(w.lastSync) >= w.opt.SyncInterval {
			w.dirty = false
			w.lastSync = w.opt.Now()
			select {
			case w.syncKick <- struct{}{}:
			default: // one is pending and will cover these writes
			}
		}
		w.reportLocked(false)
		w.flushMu.Unlock()
	}
}

// takePending swaps the buffer out and wakes WriteLines waiting for room.
func (w *Writer) takePending() []byte {
	w.mu.Lock()
	buf := w.pending
	w.pending = w.spare[:0]
	w.spare = nil
	if w.waiting {
		w.waiting = false
		close(w.room)
	}
	w.mu.Unlock()
	return buf
}

// flushLocked writes out everything buffered. flushMu is held.
func (w *Writer) flushLocked() error {
	buf := w.takePending()
	data := buf
	if len(w.unwritten) > 0 {
		w.unwritten = append(w.unwritten, buf...)
		data = w.unwritten
	}
	var err error
	if len(data) > 0 {
		var n int
		n, err = w.out.Write(data)
		if err == nil && n < len(data) {
			err = io.ErrShortWrite
		}
		if n > 0 {
			w.dirty = true
		}
		if err != nil {
			w.failed(err)
			if len(w.unwritten) > 0 {
				w.unwritten = w.unwritten[:copy(w.unwritten, data[n:])]
			} else {
				w.unwritten = append(w.unwritten[:0], data[n:]...)
			}
		} else {
			w.unwritten = w.unwritten[:0]
			w.mu.Lock()
			w.shed = false
			w.mu.Unlock()
		}
		w.retried.Store(int64(len(w.unwritten)))
	}
	// Keep the buffer for the next swap: at most MaxPending plus a line, and
	// what append's growth adds to that.
	if cap(buf) <= 2*w.opt.MaxPending {
		w.spare = buf[:0]
	}
	if err != nil {
		return fmt.Errorf("reqlog: write: %w", err)
	}
	return nil
}

// runSync fsyncs on request until Close.
func (w *Writer) runSync() {
	defer close(w.syncDone)
	for range w.syncKick {
		w.sync()
	}
}

func (w *Writer) sync() error {
	if err := w.syncer.Sync(); err != nil {
		w.failed(err)
		return fmt.Errorf("reqlog: sync: %w", err)
	}
	return nil
}

// failed counts a failed write or fsync.
func (w *Writer) failed(err error) {
	w.errs.Add(1)
	w.errMu.Lock()
	w.lastErr = err
	w.errMu.Unlock()
}

// reportLocked logs write errors and drops not reported yet, at most once a
// second unless final.
func (w *Writer) reportLocked(final bool) {
	errs, dropped := w.errs.Load(), w.dropped.Load()
	if errs == w.repErrs && dropped == w.repDropped {
		return
	}
	now := w.opt.Now()
	if !final && !w.lastReport.IsZero() && now.Sub(w.lastReport) < time.Second {
		return
	}
	attrs := []any{
		slog.Int64("write_errors", errs-w.repErrs),
		slog.Int64("dropped_lines", dropped-w.repDropped),
		slog.Int("unwritten_bytes", len(w.unwritten)),
	}
	w.errMu.Lock()
	if w.lastErr != nil {
		attrs = append(attrs, slog.String("err", w.lastErr.Error()))
	}
	w.errMu.Unlock()
	w.log.Error("reqlog: request log output failing", attrs...)
	w.lastReport, w.repErrs, w.repDropped = now, errs, dropped
}

// Flush writes every line accepted so far to the output now (without
// fsync).
func (w *Writer) Flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	return w.flushLocked()
}

// Close stops accepting lines, writes out every line accepted before it,
// fsyncs, and closes the file if Open opened it. Its error joins what
// failed, and says how many bytes of lines could not be written.
// Closing again returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	if w.waiting { // they will see closed
		w.waiting = false
		close(w.room)
	}
	w.mu.Unlock()
	close(w.stop)
	<-w.done

	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	err := w.flushLocked()
	if len(w.unwritten) > 0 {
		// One more try: the first may have been a transient short write.
		err = w.flushLocked()
	}
	if len(w.unwritten) > 0 {
		err = fmt.Errorf("%w (%d bytes of request log lost)", err, len(w.unwritten))
	}
	close(w.syncKick)
	<-w.syncDone // fsyncs requested before are done
	if w.dirty && w.syncer != nil {
		err = errors.Join(err, w.sync())
	}
	if w.closer != nil {
		if cerr := w.closer.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("reqlog: close: %w", cerr))
		}
	}
	w.reportLocked(true)
	return err
}
