// Package report is cordon's error reporter. Its one rule, learned from the
// 2021 session mix-up: an error report holds a snapshot of plain values
// taken when they were set — never a callback, never a reference to a
// request's objects — and background work reports through a scope of its
// own that can never see a request's values.
//
// A Reporter delivers events to sinks (JSON lines, slog, and the Sentry
// adapter in the separate module report/sentryreport). Events come from a
// Scope:
//
//   - a request scope, created per request by Reporter.Middleware and sealed
//     when the request ends (response complete, panic or client
//     disconnect). Handlers get a handle with FromContext; once the request
//     has ended the handle refuses Set with an error matching
//     scope.ErrRequestEnded that names where the handle was obtained, and a
//     report made through it is still delivered, as a stale_use event that
//     carries no request data;
//   - a background scope, from Reporter.Background(name), which starts empty
//     and is linked to no request. There is no "current" scope anywhere in
//     this package, so nothing can copy a request's context into it.
//
// Values given to Set and to Capture are deep-copied at once into plain
// types by Snapshot; funcs, channels and the like are refused. Keys that
// name secrets (tokens, cookies, passwords, Authorization) are redacted, and
// the request's cookie values and Authorization header are scrubbed from
// every string of its events, so a session token never reaches a sink even
// when an error message quotes it. A request is identified by method, path
// (no query), request id, session fingerprint and principal.
//
// The package imports nothing outside the standard library and cordon's own
// scope, store and internal/ctxvalue packages.
package report

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/internal/ctxvalue"
	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/store"
)

// Scope kinds, the Event.Scope field.
const (
	KindRequest    = "request"
	KindBackground = "background"
	// KindNone marks an event captured through a context that carries no
	// report scope.
	KindNone = "none"
)

// Event names. Capture produces EventError; CaptureEvent takes any name, and
// the session manager sends EventGuardBlock and EventStaleUse. A report made
// through a request scope after its request ended is an EventStaleUse
// whatever it was meant to be (Stale.Event says what).
const (
	EventError      = "error"
	EventPanic      = "panic"
	EventGuardBlock = "guard_block"
	EventStaleUse   = "stale_use"
)

// ErrBadFingerprint is returned by Scope.SetSession when given something that
// is not a session fingerprint (32 lowercase hex digits) — for instance the
// session token itself.
var ErrBadFingerprint = errors.New("report: not a session fingerprint")

// RequestInfo identifies the request an event happened in. It holds plain
// values copied when the event was captured.
type RequestInfo struct {
	Method string `json:"method"`
	// Path is the URL path without the query.
	Path string `json:"path"`
	// ID is the request id (the `req` field of the request log).
	ID string `json:"req,omitempty"`
	// Session is the session's fingerprint, never the cookie.
	Session string `json:"sid,omitempty"`
	// Principal is the user the request is authenticated as.
	Principal string `json:"uid,omitempty"`
}

// Stale describes a report made through a request scope after its request
// ended.
type Stale struct {
	// Event is the event the caller meant to report.
	Event string `json:"event"`
	// Origin is file:line where the stale handle was obtained.
	Origin string `json:"origin"`
	// Ended is when its request ended.
	Ended time.Time `json:"ended"`
}

// Event is one report, as handed to sinks. Every value in it is a plain
// value; sinks must not modify it.
type Event struct {
	ID    string    `json:"id"`
	Time  time.Time `json:"ts"`
	Level string    `json:"level"` // "error" or "warning"
	Event string    `json:"event"`
	// Message is the detail given to CaptureEvent.
	Message string `json:"msg,omitempty"`
	// Error is err.Error() at capture; ErrorType its dynamic type.
	Error     string `json:"error,omitempty"`
	ErrorType string `json:"error_type,omitempty"`
	// Scope is KindRequest, KindBackground or KindNone; ScopeID identifies
	// the scope (events of one request share it); Task names a background
	// scope.
	Scope   string `json:"scope"`
	ScopeID string `json:"scope_id,omitempty"`
	Task    string `json:"task,omitempty"`
	// Request is set only for events of a live request scope.
	Request *RequestInfo `json:"request,omitempty"`
	// Context holds the scope's values (Set / SetContext) at capture.
	Context map[string]any `json:"context,omitempty"`
	// Fields holds the key-value pairs given to the capture call.
	Fields map[string]any `json:"fields,omitempty"`
	// Stale is set when a request scope was used after its request ended.
	Stale *Stale `json:"stale,omitempty"`
}

// Clone returns a deep copy of e.
func (e *Event) Clone() *Event {
	c := *e
	if e.Request != nil {
		r := *e.Request
		c.Request = &r
	}
	if e.Stale != nil {
		s := *e.Stale
		c.Stale = &s
	}
	c.Context = cloneMap(e.Context, nil)
	c.Fields = cloneMap(e.Fields, nil)
	return &c
}

// Sink receives events. Send is called synchronously by the capturing
// goroutine, possibly from many goroutines at once; implementations are
// safe for concurrent use.
type Sink interface {
	Send(e *Event) error
}

// ScopeInfo describes a scope to a ScopedSink.
type ScopeInfo struct {
	ID   string
	Kind string // KindRequest, KindBackground or KindNone
	Task string
}

// ScopedSink is a Sink that keeps state per scope (the Sentry adapter: a hub
// per scope). Open is called once per scope, when the scope first captures
// an event, and the Sink it returns receives that scope's events instead of
// the ScopedSink itself.
type ScopedSink interface {
	Sink
	Open(s ScopeInfo) Sink
}

// Options configure a Reporter. The zero value is usable: it reports to no
// sink.
type Options struct {
	// Sinks receive every event.
	Sinks []Sink
	// SessionCookie is the name of the session cookie: its fingerprint
	// becomes RequestInfo.Session. Every cookie value of the request is
	// scrubbed from its events whatever this is.
	SessionCookie string
	// RequestID returns the request id of a request; nil means a random
	// 128-bit id in hex. Wire it to the request log's id.
	RequestID func(*http.Request) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of event and scope ids; nil means crypto/rand.
	Rand io.Reader
	// Logger receives sink failures; nil means slog.Default().
	Logger *slog.Logger
}

// Reporter captures events and delivers them to its sinks. It is safe for
// concurrent use.
type Reporter struct {
	sinks     []Sink
	cookie    string
	requestID func(*http.Request) string
	now       func() time.Time
	rand      io.Reader
	randMu    sync.Mutex
	log       *slog.Logger
}

// New returns a Reporter.
func New(o Options) *Reporter {
	r := &Reporter{
		sinks:     slices.Clone(o.Sinks),
		cookie:    o.SessionCookie,
		requestID: o.RequestID,
		now:       o.Now,
		rand:      o.Rand,
		log:       o.Logger,
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.rand == nil {
		r.rand = rand.Reader
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r
}

func (r *Reporter) newID() string {
	var b [16]byte
	r.randMu.Lock()
	_, err := io.ReadFull(r.rand, b[:])
	r.randMu.Unlock()
	if err != nil {
		// A broken random source must not stop a report; the clock still
		// tells events apart for a reader.
		return fmt.Sprintf("t%x", r.now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

// state is one scope's data. Handles (Scope) point at it; only the handle
// and the Reporter reach it.
type state struct {
	rep  *Reporter
	id   string
	kind string
	task string
	life *scope.Scope // the request's lifetime; nil for background scopes

	mu      sync.Mutex
	values  map[string]any
	req     RequestInfo
	secrets []string
	opened  []Sink // per-scope sinks, opened at the first capture
	isOpen  bool

	// What a request scope copies from the request when it starts, as
	// plain strings (immutable in Go). Turning them into secrets, the
	// session fingerprint and ids costs hashing and random reads, so it is
	// done at the first capture (derive) — from these copies, never from
	// the request, which by then may be gone.
	derived    bool
	sessionSet bool // SetSession was called: keep its fingerprint
	rawCookies []string
	rawAuth    []string
}

// derive completes the scope's plain values from the copies taken at the
// start of the request. Called with st.mu held.
func (st *state) derive() {
	if st.derived {
		return
	}
	st.derived = true
	r := st.rep
	if st.id == "" {
		st.id = r.newID()
	}
	if st.kind == KindRequest && st.req.ID == "" {
		st.req.ID = r.newID()
	}
	for _, line := range st.rawCookies {
		cookies, _ := http.ParseCookie(line)
		for _, c := range cookies {
			if c.Value == "" {
				continue
			}
			if r.cookie != "" && c.Name == r.cookie && !st.sessionSet && st.req.Session == "" {
				st.req.Session = store.Fingerprint(c.Value)
			}
			st.secrets = append(st.secrets, c.Value)
		}
	}
	for _, h := range st.rawAuth {
		st.secrets = append(st.secrets, h)
		if _, cred, ok := strings.Cut(h, " "); ok {
			st.secrets = append(st.secrets, strings.TrimSpace(cred))
		}
	}
	st.rawCookies, st.rawAuth = nil, nil
	// Longest first, so a secret containing another is replaced whole.
	slices.SortFunc(st.secrets, func(a, b string) int { return len(b) - len(a) })
}

// Scope is a handle on a request or background scope. A request scope's
// handle is sealed with the place it was obtained; see FromContext. Methods
// on a nil *Scope return errors or do nothing.
type Scope struct {
	st   *state
	seal *scope.Seal // nil for background scopes
}

type stateKey struct{}

// Background returns a new scope for a background task: it holds no request
// data and is linked to no request, so nothing a request sets can appear in
// its events. Keep one per task (or per run of it); it is safe for
// concurrent use and never ends.
func (r *Reporter) Background(name string) *Scope {
	st := &state{rep: r, kind: KindBackground, task: name}
	return &Scope{st: st}
}

// NewContext returns ctx carrying s, so Reporter.Capture(ctx, ...) and
// FromContext find it. Use it to hand a background scope down a call chain.
func NewContext(ctx context.Context, s *Scope) context.Context {
	if s == nil {
		return ctx
	}
	return context.WithValue(ctx, stateKey{}, s.st)
}

// FromContext returns a handle on the scope carried by ctx, or nil if it
// carries none. A request scope's handle is sealed: it records the file and
// line of the code that called FromContext, and once the request ends it
// refuses every Set with an error matching scope.ErrRequestEnded that names
// that place.
func FromContext(ctx context.Context) *Scope {
	return handle(ctx, 2)
}

// handle returns a handle whose origin is skip frames above handle's caller.
func handle(ctx context.Context, skip int) *Scope {
	if ctx == nil {
		return nil
	}
	st, _ := ctx.Value(stateKey{}).(*state)
	if st == nil {
		return nil
	}
	h := &Scope{st: st}
	if st.life != nil {
		sl := st.life.Seal("report scope", skip)
		h.seal = &sl
	}
	return h
}

// check returns the EndedError of a stale request handle, or nil.
func (s *Scope) check() error {
	if s.seal == nil {
		return nil
	}
	return s.seal.Check()
}

var errNilScope = errors.New("report: nil scope")

// Set snapshots value (see Snapshot) and stores it under key in the scope's
// context, replacing any previous value. A key that names a secret stores
// Redacted instead. It returns an error matching ErrUnsupported for a value
// that cannot be copied, and one matching scope.ErrRequestEnded on a request
// scope whose request has ended.
func (s *Scope) Set(key string, value any) error {
	return s.SetContext(map[string]any{key: value})
}

// SetContext sets several keys at once, as Set does: either all of them are
// stored or, on error, none.
func (s *Scope) SetContext(values map[string]any) error {
	if s == nil || s.st == nil {
		return errNilScope
	}
	if err := s.check(); err != nil {
		return fmt.Errorf("report: set: %w", err)
	}
	snap := make(map[string]any, len(values))
	for k, v := range values {
		if SecretKey(k) {
			snap[k] = Redacted
			continue
		}
		c, err := Snapshot(v)
		if err != nil {
			return fmt.Errorf("report: set %q: %w", k, err)
		}
		snap[k] = c
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if s.st.values == nil {
		s.st.values = make(map[string]any, len(snap))
	}
	for k, v := range snap {
		s.st.values[k] = v
	}
	return nil
}

// SetPrincipal records the user the request is authenticated as (the
// session manager calls it after loading or logging in). It fails on a
// background scope and on a stale handle.
func (s *Scope) SetPrincipal(uid string) error {
	return s.setRequest(func(ri *RequestInfo) { ri.Principal = uid })
}

// SetSession records the fingerprint of the request's session (after a
// login or renewal issued a new one). It refuses anything that is not a
// fingerprint with ErrBadFingerprint, so a token passed by mistake never
// lands in a report.
func (s *Scope) SetSession(fingerprint string) error {
	if !store.ValidFingerprint(fingerprint) {
		return ErrBadFingerprint
	}
	return s.setRequest(func(ri *RequestInfo) {
		ri.Session = fingerprint
		s.st.sessionSet = true
	})
}

func (s *Scope) setRequest(f func(*RequestInfo)) error {
	if s == nil || s.st == nil {
		return errNilScope
	}
	if s.st.kind != KindRequest {
		return errors.New("report: a background scope has no request")
	}
	if err := s.check(); err != nil {
		return fmt.Errorf("report: set request: %w", err)
	}
	s.st.mu.Lock()
	f(&s.st.req)
	s.st.mu.Unlock()
	return nil
}

// AddSecret registers a value that must never appear in this scope's
// events (a session token issued during the request, an API key the task
// uses): every occurrence in any string is replaced by Redacted. Values
// shorter than 8 bytes are ignored. The secret itself is never emitted.
func (s *Scope) AddSecret(secret string) error {
	if s == nil || s.st == nil {
		return errNilScope
	}
	if err := s.check(); err != nil {
		return fmt.Errorf("report: add secret: %w", err)
	}
	if len(secret) < minSecretLen {
		return nil
	}
	s.st.mu.Lock()
	s.st.derive()
	s.st.secrets = append(s.st.secrets, secret)
	slices.SortFunc(s.st.secrets, func(a, b string) int { return len(b) - len(a) })
	s.st.mu.Unlock()
	return nil
}

// Kind returns KindRequest or KindBackground.
func (s *Scope) Kind() string {
	if s == nil || s.st == nil {
		return ""
	}
	return s.st.kind
}

// Capture reports err with the scope's context and the given key-value
// pairs (as for slog: "key", value, ...), snapshotted now. It returns the
// event id. Through a stale request handle the event is delivered as
// stale_use without request data or context.
func (s *Scope) Capture(err error, kv ...any) string {
	if s == nil || s.st == nil {
		return ""
	}
	return s.capture(EventError, "", err, kv)
}

// CaptureEvent reports a named event (guard_block, stale_use, ...) with a
// detail and an optional error. It returns the event id.
func (s *Scope) CaptureEvent(event, detail string, err error, kv ...any) string {
	if s == nil || s.st == nil {
		return ""
	}
	return s.capture(event, detail, err, kv)
}

// Capture reports err through the scope carried by ctx (see Scope.Capture).
// If ctx carries no scope the event has Scope KindNone and no request data.
func (r *Reporter) Capture(ctx context.Context, err error, kv ...any) string {
	return r.scopeFor(ctx).capture(EventError, "", err, kv)
}

// CaptureEvent reports a named event through the scope carried by ctx.
func (r *Reporter) CaptureEvent(ctx context.Context, event, detail string, err error, kv ...any) string {
	return r.scopeFor(ctx).capture(event, detail, err, kv)
}

// Hook returns a function of the shape the session manager calls to report
// guard_block and stale_use events. It captures through the scope carried by
// ctx; when that request has ended, the event is marked stale and carries no
// request data.
func (r *Reporter) Hook() func(ctx context.Context, event, detail string, err error) {
	return func(ctx context.Context, event, detail string, err error) {
		r.scopeFor(ctx).capture(event, detail, err, nil)
	}
}

// scopeFor returns a handle on ctx's scope whose origin is the caller of
// scopeFor's caller, or a fresh unscoped handle.
func (r *Reporter) scopeFor(ctx context.Context) *Scope {
	if h := handle(ctx, 3); h != nil && h.st.rep == r {
		return h
	}
	return &Scope{st: &state{rep: r, kind: KindNone}}
}

func (s *Scope) capture(event, detail string, err error, kv []any) string {
	st := s.st
	r := st.rep
	e := &Event{
		ID:      r.newID(),
		Time:    r.now(),
		Level:   "error",
		Event:   event,
		Message: detail,
		Scope:   st.kind,
		Task:    st.task,
	}
	if err != nil {
		msg, rerr := render(err.Error, err)
		if rerr != nil {
			e.Error = rerr.Error()
		} else {
			e.Error = msg.(string)
		}
		e.ErrorType = fmt.Sprintf("%T", err)
	} else if event != EventError && event != EventGuardBlock && event != EventPanic {
		e.Level = "warning"
	}
	e.Fields = fieldsOf(kv)

	stale := s.check()
	st.mu.Lock()
	st.derive()
	e.ScopeID = st.id
	secrets := slices.Clone(st.secrets)
	if stale == nil {
		if st.kind == KindRequest {
			ri := st.req
			e.Request = &ri
		}
		e.Context = cloneMap(st.values, nil) // a copy, taken under the lock
	}
	st.mu.Unlock()
	if stale != nil {
		var ended *scope.EndedError
		e.Stale = &Stale{Event: event}
		if errors.As(stale, &ended) {
			e.Stale.Origin, e.Stale.Ended = ended.Origin, ended.Ended
		}
		e.Event = EventStaleUse
		e.Level = "error"
	}
	scrubEvent(e, secrets)
	r.deliver(st, e)
	return e.ID
}

// fieldsOf snapshots slog-style key-value pairs. A value that cannot be
// copied is replaced by a note saying why, so the report still goes out.
func fieldsOf(kv []any) map[string]any {
	if len(kv) == 0 {
		return nil
	}
	out := make(map[string]any, len(kv)/2+1)
	for i := 0; i < len(kv); i += 2 {
		key, ok := kv[i].(string)
		if !ok || i+1 == len(kv) {
			out[fmt.Sprintf("!BADKEY%d", i)] = fmt.Sprintf("%T", kv[i])
			if !ok {
				continue
			}
			break
		}
		if SecretKey(key) {
			out[key] = Redacted
			continue
		}
		v, err := Snapshot(kv[i+1])
		if err != nil {
			v = "[unsupported: " + err.Error() + "]"
		}
		out[key] = v
	}
	return out
}

func scrubEvent(e *Event, secrets []string) {
	if len(secrets) == 0 {
		return
	}
	e.Message = scrub(e.Message, secrets)
	e.Error = scrub(e.Error, secrets)
	if e.Request != nil {
		e.Request.Path = scrub(e.Request.Path, secrets)
		e.Request.Principal = scrub(e.Request.Principal, secrets)
	}
	e.Context = cloneMap(e.Context, secrets)
	e.Fields = cloneMap(e.Fields, secrets)
}

func (r *Reporter) deliver(st *state, e *Event) {
	st.mu.Lock()
	if !st.isOpen {
		st.isOpen = true
		info := ScopeInfo{ID: st.id, Kind: st.kind, Task: st.task}
		st.opened = make([]Sink, len(r.sinks))
		for i, s := range r.sinks {
			if ss, ok := s.(ScopedSink); ok {
				st.opened[i] = ss.Open(info)
			} else {
				st.opened[i] = s
			}
		}
	}
	sinks := st.opened
	st.mu.Unlock()
	for i, s := range sinks {
		ev := e
		if i < len(sinks)-1 {
			ev = e.Clone()
		}
		if err := send(s, ev); err != nil {
			r.log.Warn("report: sink failed", "sink", fmt.Sprintf("%T", s), "event", e.ID, "err", err)
		}
	}
}

// send calls s.Send, turning a panic into an error: a broken sink must not
// take down the request or task that reports.
func send(s Sink, e *Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("report: sink panicked: %v", p)
		}
	}()
	return s.Send(e)
}

// Middleware gives every request a request scope and seals it when the
// request ends: when the handler returns or panics, and when the client
// disconnects (the request's context is done: every use of the scope looks
// at it, see scope.Scope.EndOnDone). If an outer layer already put an open
// scope.Scope in the request's context, the report scope shares that
// lifetime instead of making its own. A panic is reported (as EventPanic)
// before the scope is sealed, then re-raised.
func (r *Reporter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mem := &requestMem{}
		ctx := req.Context()
		life := scope.FromContext(ctx)
		if life == nil || life.Ended() {
			life = &mem.life
			scope.Init(life, r.now)
			life.EndOnDone(ctx)
			defer life.End()
		}
		st := r.requestState(mem, req, life)
		mem.lifeCtx.Init(ctx, life)
		mem.ctx.Context, mem.ctx.V = &mem.lifeCtx, st
		defer func() {
			if p := recover(); p != nil {
				if p != http.ErrAbortHandler {
					(&Scope{st: st}).capture(EventPanic, "", fmt.Errorf("panic: %v", p), nil)
				}
				panic(p)
			}
		}()
		next.ServeHTTP(w, req.WithContext(&mem.ctx))
	})
}

// requestMem is what Middleware needs per request, in one allocation: the
// scope's state, its lifetime (unless an outer layer's is shared), the
// contexts that carry them, as scope.NewContext and NewContext would, and
// room for the copies of the request's Cookie and Authorization lines. It
// is fresh for every request and never reused: a handle kept past its
// request reaches this memory, and only this request's.
type requestMem struct {
	st      state
	life    scope.Scope
	lifeCtx scope.Context
	ctx     ctxvalue.Context[stateKey, *state]
	cookies [2]string
	auth    [1]string
}

func (r *Reporter) requestState(mem *requestMem, req *http.Request, life *scope.Scope) *state {
	st := &mem.st
	st.rep, st.kind, st.life = r, KindRequest, life
	st.req.Method = req.Method
	st.req.Path = req.URL.Path
	if r.requestID != nil {
		st.req.ID = r.requestID(req)
	}
	// Copies of the header values (strings are immutable; the slices are
	// copied because a handler may change the request's headers).
	st.rawCookies = append(mem.cookies[:0:len(mem.cookies)], req.Header["Cookie"]...)
	st.rawAuth = append(mem.auth[:0:len(mem.auth)], req.Header["Authorization"]...)
	return st
}
