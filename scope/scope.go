// Package scope seals request-scoped handles when their request ends.
//
// Everything request-scoped that cordon hands out (the session handle, the
// request information given to error reports) carries a *Seal from the
// request's Scope. When the request ends the scope is closed, and from then
// on every Check of its seals fails with an error that matches
// ErrRequestEnded and says where the handle was obtained and when its
// request ended. A handle kept past its request therefore can neither read
// nor write anything: not its own request's state, and never another's.
//
// Detach gives background work a context that keeps nothing of the request.
//
// The package imports nothing outside the standard library and cordon's
// internal/ctxvalue.
package scope

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-sec/cordon/internal/ctxvalue"
)

// ErrRequestEnded is matched (with errors.Is) by every error a sealed handle
// returns.
var ErrRequestEnded = errors.New("request has ended")

// EndedError is the error a sealed handle returns. It matches
// ErrRequestEnded.
type EndedError struct {
	// Handle names the kind of handle ("session", "report scope").
	Handle string
	// Origin is file:line of the code that obtained the handle.
	Origin string
	// Ended is when the handle's request ended.
	Ended time.Time
}

func (e *EndedError) Error() string {
	return fmt.Sprintf("cordon: %s handle obtained at %s used after its request ended at %s",
		e.Handle, e.Origin, e.Ended.UTC().Format(time.RFC3339Nano))
}

// Is reports whether target is ErrRequestEnded.
func (e *EndedError) Is(target error) bool { return target == ErrRequestEnded }

// Scope is the lifetime of one request. The zero value is not usable; call
// New.
type Scope struct {
	ended atomic.Int64    // unix nanoseconds of End; 0 while open
	done  context.Context // EndOnDone's context; nil if none
	mu    sync.Mutex
	hooks []func()
	stop  func() bool // stops the watch of done that OnEnd started; nil if none
	now   func() time.Time
}

// New returns an open scope. now is the clock used for End's timestamp; nil
// means time.Now.
func New(now func() time.Time) *Scope {
	if now == nil {
		now = time.Now
	}
	return &Scope{now: now}
}

// Init makes s, a zero Scope embedded in a caller's own struct (to save an
// allocation), an open scope, as New does. It must not be called on a
// scope in use.
func Init(s *Scope, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.now = now
}

// EndOnDone makes s end when ctx is done: for a request's context, when
// its client goes away. It must be called before s is shared.
//
// It costs nothing while ctx is not done. Check, Ended and EndedAt look at
// ctx first and end s if ctx is done, so no seal of s passes once ctx is
// done, whether or not anything else has noticed. Functions given to OnEnd
// are the only thing that must happen without a look: the first OnEnd
// starts a watch of ctx (context.AfterFunc) that runs them when ctx is
// done, on its own goroutine; End stops the watch. A look that finds ctx
// done leaves the functions to that watch. The end time is when the end
// was first seen: by a look, by the watch or by End.
func (s *Scope) EndOnDone(ctx context.Context) { s.done = ctx }

// End closes the scope: every seal taken from it fails from now on, and the
// functions given to OnEnd run once, in reverse order of registration. End
// is idempotent and safe for concurrent use.
func (s *Scope) End() {
	if s == nil {
		return
	}
	s.end(true)
}

// end closes s if it is open. With runHooks it then takes the functions
// given to OnEnd, stops the watch of s.done and runs them; without (a look
// that found s.done done), it leaves them to that watch, which exists
// whenever there are functions to run.
func (s *Scope) end(runHooks bool) {
	s.mu.Lock()
	if s.ended.Load() == 0 {
		t := s.now().UnixNano()
		if t == 0 {
			t = 1
		}
		s.ended.Store(t)
	}
	if !runHooks {
		s.mu.Unlock()
		return
	}
	hooks, stop := s.hooks, s.stop
	s.hooks, s.stop = nil, nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	for i := len(hooks) - 1; i >= 0; i-- {
		hooks[i]()
	}
}

// endedNanos returns when s ended in unix nanoseconds, 0 while it is open,
// first ending it if the context given to EndOnDone is done.
func (s *Scope) endedNanos() int64 {
	if t := s.ended.Load(); t != 0 || s.done == nil || s.done.Err() == nil {
		return t
	}
	s.end(false)
	return s.ended.Load()
}

// Ended reports whether the scope has ended: End has been called or the
// context given to EndOnDone is done.
func (s *Scope) Ended() bool { return s == nil || s.endedNanos() != 0 }

// EndedAt returns when the scope ended, or the zero time while it is open.
func (s *Scope) EndedAt() time.Time {
	if s == nil {
		return time.Time{}
	}
	if t := s.endedNanos(); t != 0 {
		return time.Unix(0, t)
	}
	return time.Time{}
}

// OnEnd registers f to run when the scope ends. If it has already ended, f
// runs at once.
func (s *Scope) OnEnd(f func()) {
	s.endedNanos()
	s.mu.Lock()
	if s.ended.Load() != 0 {
		s.mu.Unlock()
		f()
		return
	}
	s.hooks = append(s.hooks, f)
	if s.done != nil && s.stop == nil {
		s.stop = context.AfterFunc(s.done, s.End)
	}
	s.mu.Unlock()
}

// Seal is a handle's link to its scope, with the place the handle was
// obtained. It is a small value meant to be embedded in the handle; the
// zero Seal refuses every Check.
type Seal struct {
	scope  *Scope
	handle string
	// The program counters of the frames above Seal's caller, physical
	// (frame-pointer walk) or logical (runtime.Callers), and which logical
	// frame the origin is.
	pcs  [maxSealDepth]uintptr
	n    uint8
	skip uint8
}

// maxSealDepth is how many frames Seal records cheaply; a deeper skip takes
// the slow path.
const maxSealDepth = 4

// fpWorks reports whether the frame-pointer walk finds the frames that
// runtime.Callers finds on this build; it is checked once, at
// initialisation, and Seal falls back to runtime.Callers if not.
var fpWorks bool

func init() { fpWorks = checkFramePCs() }

// Seal returns a seal for a handle of the given kind, recording as its origin
// a place on the caller's stack: skip 0 is the line that calls Seal, 1 the
// line that called that function, and so on. Only program counters are
// recorded, by a walk of the frame pointers that costs a few instructions
// per frame; they are turned into file:line when an error needs it.
//
//go:noinline
func (s *Scope) Seal(handle string, skip int) Seal {
	var sl Seal
	s.SealInto(&sl, handle, skip+1) // Seal's own frame is one more
	return sl
}

// SealInto is Seal writing into *sl, a zero Seal in the handle being built
// (which spares copying the seal); skip 0 is the line that calls SealInto.
//
//go:noinline
func (s *Scope) SealInto(sl *Seal, handle string, skip int) {
	sl.scope, sl.handle = s, handle
	if skip < 0 {
		skip = 0
	}
	if skip < maxSealDepth && fpWorks {
		// Every physical frame holds at least one logical one, so skip+1
		// physical frames reach the skip-th logical frame.
		sl.n = uint8(framePCs(sl.pcs[:skip+1]))
		sl.skip = uint8(skip)
		return
	}
	// runtime.Callers gives logical frames: keep only the one wanted.
	sl.n = uint8(runtime.Callers(skip+2, sl.pcs[:1]))
}

// checkFramePCs compares the frame-pointer walk with runtime.Callers.
func checkFramePCs() bool {
	fp, logical := probeFrames()
	return fp != "" && fp == logical
}

// probeFrames returns the functions of its two callers, as the
// frame-pointer walk and as runtime.Callers see them.
//
//go:noinline
func probeFrames() (fp, logical string) {
	var pcs [2]uintptr
	n := framePCs(pcs[:])
	var want [2]uintptr
	m := runtime.Callers(2, want[:])
	return funcNames(pcs[:n]), funcNames(want[:m])
}

func funcNames(pcs []uintptr) string {
	var b strings.Builder
	frames := runtime.CallersFrames(pcs)
	for range 2 {
		f, more := frames.Next()
		b.WriteString(f.Function)
		b.WriteByte(' ')
		if !more {
			break
		}
	}
	return b.String()
}

// Check returns nil while the scope is open, and an *EndedError once it has
// ended (or for the zero Seal).
func (sl *Seal) Check() error {
	if sl == nil || sl.scope == nil {
		return &EndedError{Handle: "unbound", Origin: "unknown"}
	}
	if t := sl.scope.endedNanos(); t != 0 {
		return &EndedError{Handle: sl.handle, Origin: sl.Origin(), Ended: time.Unix(0, t)}
	}
	return nil
}

// Origin returns file:line of the code that obtained the handle.
func (sl *Seal) Origin() string {
	if sl == nil || sl.n == 0 {
		return "unknown"
	}
	frames := runtime.CallersFrames(sl.pcs[:sl.n])
	for i := 0; ; i++ {
		f, more := frames.Next()
		if i == int(sl.skip) {
			if f.File == "" {
				return "unknown"
			}
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}

// Scope returns the seal's scope.
func (sl *Seal) Scope() *Scope { return sl.scope }

// Caller returns "file:line" of a place on the caller's stack: skip 0 is the
// line that calls Caller, 1 the line that called that function, and so on.
func Caller(skip int) string {
	_, file, line, ok := runtime.Caller(skip + 1)
	if !ok {
		return "unknown"
	}
	return fmt.Sprintf("%s:%d", file, line)
}

type scopeKey struct{}

// Context is a context that carries a Scope, the kind NewContext returns,
// as a type that a caller can keep in memory it allocates for the request
// anyway (one allocation fewer). Init it before handing it on, and not
// after.
type Context struct {
	c ctxvalue.Context[scopeKey, *Scope]
}

// Init makes c the context parent carrying s.
func (c *Context) Init(parent context.Context, s *Scope) { c.c.Context, c.c.V = parent, s }

// Deadline returns the parent's deadline.
func (c *Context) Deadline() (time.Time, bool) { return c.c.Deadline() }

// Done returns the parent's Done channel.
func (c *Context) Done() <-chan struct{} { return c.c.Done() }

// Err returns the parent's error.
func (c *Context) Err() error { return c.c.Err() }

// Value returns the scope for FromContext's key and asks the parent for
// any other.
func (c *Context) Value(key any) any { return c.c.Value(key) }

// NewContext returns ctx carrying s.
func NewContext(ctx context.Context, s *Scope) context.Context {
	c := new(Context)
	c.Init(ctx, s)
	return c
}

// FromContext returns the request scope carried by ctx, or nil.
func FromContext(ctx context.Context) *Scope {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s
}

// Detach returns a context for background work started by a request: it
// keeps nothing of the request — no deadline, no cancellation, no values
// (unlike context.WithoutCancel, which keeps the values, and with them the
// request's handles). Copy the plain values the goroutine needs into
// variables before starting it:
//
//	user := sess.Principal()   // a string, copied now
//	go func(ctx context.Context) { audit(ctx, user) }(scope.Detach(r.Context()))
//
// The returned context is cancelled by nothing; give it a timeout of its own
// with context.WithTimeout.
func Detach(ctx context.Context) context.Context {
	_ = ctx // the parameter documents where the work comes from; nothing of it is kept
	return context.Background()
}
