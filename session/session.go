package session

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/store"
)

// Errors returned by Session methods.
var (
	// ErrRequestEnded is matched by every error from a handle whose request
	// has ended (it is scope.ErrRequestEnded).
	ErrRequestEnded = scope.ErrRequestEnded
	// ErrNoSession means the request did not pass through the session
	// middleware.
	ErrNoSession = errors.New("session: no session middleware on this request")
	// ErrHeadersSent means the change needs a new session cookie but the
	// response headers have already been written.
	ErrHeadersSent = errors.New("session: response headers already sent")
	// ErrWrongType is returned by the typed getters for a value of another
	// type.
	ErrWrongType = errors.New("session: value has another type")
	// ErrStoreUnavailable means the store could not be read when the request
	// arrived; the request is served as anonymous and nothing is written.
	ErrStoreUnavailable = errors.New("session: store unavailable")
)

// maxRawReads is how many values a request reads straight from the stored
// encoding before it decodes them all.
const maxRawReads = 4

// commitTimeout bounds the store writes of one request. Commits use a
// context detached from the request's cancellation, so a client that goes
// away mid-commit cannot leave a half-done change.
const commitTimeout = 5 * time.Second

// maxCommitAttempts bounds the optimistic-concurrency retries of a commit.
const maxCommitAttempts = 16

type cookieAction uint8

const (
	cookieNone cookieAction = iota
	cookieSet
	cookieClear
)

type change struct {
	v   any
	del bool
}

// reqState is the session state of one request. Every field after mu is
// guarded by mu; ended is set, under mu, when the request ends, after which
// no handle may touch anything.
type reqState struct {
	m    *Manager
	sc   *scope.Scope
	rctx context.Context // the request's context, for reads
	ctx  *stateCtx       // memory for the context carrying the state, or nil
	// first is memory for the request's first handles, or nil; taken
	// counts those handed out.
	first *[inlineHandles]Session
	taken atomic.Int32
	spec  cookieSpec
	rec   *reqlog.Record
	ip    string
	ua    string

	mu        sync.Mutex
	ended     bool
	sent      bool // final response headers written
	storeDown bool
	loaded    *store.Session // the stored session this request uses, or nil
	fpOf      *store.Session // the session fp is the fingerprint of, or nil
	fp        string
	badReason string         // why the request's cookie was not honoured (a Bad* reason), or ""
	badFP     string         // the fingerprint of the session that cookie named, or ""
	token     string         // the raw token, only when issued in this request
	values    map[string]any // decoded loaded.Data plus changes; nil until needed
	rawReads  int            // values read from loaded.Data without decoding it
	changes   map[string]change
	cookie    cookieAction
	arrival   string // principal the request arrived with
	loginP    string // principal logged in as during this request
	loggedIn  bool
	anonNew   bool        // an anonymous session was created in this request
	hdr       http.Header // the response's header, for DBSC's registration offer
	dbscOffer string      // the registration challenge a log-in offered
}

// Session is a request-bound handle on the request's session. Get one with
// From or FromContext. It may be used by several goroutines during its
// request; when the request ends it is sealed and every method returns an
// error matching ErrRequestEnded that names where the handle was obtained.
type Session struct {
	st   *reqState
	seal scope.Seal
}

type stateKey struct{}

// From returns the session handle of r. The handle records the caller's
// file:line so that a use after the request has ended can say where the
// handle came from. Without the middleware every method returns
// ErrNoSession.
func From(r *http.Request) *Session { return fromContext(r.Context(), 1) }

// FromContext returns the session handle of the request whose context is
// ctx; see From.
func FromContext(ctx context.Context) *Session { return fromContext(ctx, 1) }

// fromContext returns the handle, recording as its origin the line skip
// frames above fromContext's caller's line (1: the caller's caller).
func fromContext(ctx context.Context, skip int) *Session {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	if st == nil {
		return &Session{}
	}
	h := st.handle()
	h.st = st
	if !st.m.noSeal {
		st.sc.SealInto(&h.seal, "session", skip+1)
	}
	return h
}

// lock takes the state lock and checks the seal. On success the caller must
// unlock st.mu.
func (s *Session) lock() (*reqState, error) {
	st := s.st
	if st == nil {
		return nil, ErrNoSession
	}
	st.mu.Lock()
	st.checkGone()
	// The handle's own seal is checked, not the state's: a seal belongs to
	// one request, so it refuses even if the state were ever recycled for a
	// later request (as frameworks that pool their contexts do).
	if !st.m.noSeal && s.seal.Scope().Ended() {
		st.mu.Unlock()
		return nil, s.stale(st)
	}
	return st, nil
}

// stale reports a use of a sealed handle and returns its error.
func (s *Session) stale(st *reqState) error {
	err := s.seal.Check()
	var ee *scope.EndedError
	if !errors.As(err, &ee) {
		ee = &scope.EndedError{Handle: "session", Origin: s.seal.Origin(), Ended: s.seal.Scope().EndedAt()}
		err = ee
	}
	detail := "handle from " + ee.Origin + " used after its request ended at " + ee.Ended.UTC().Format(time.RFC3339Nano)
	st.m.log.Warn("session: handle used after its request ended", "origin", ee.Origin, "ended", ee.Ended)
	st.m.event(context.Background(), Event{Name: reqlog.EventStaleUse, Detail: detail, Origin: ee.Origin, Err: err})
	st.rec.Late(reqlog.EventStaleUse, detail)
	return err
}

// ensureValues decodes the loaded data and applies pending changes. Called
// with mu held.
func (st *reqState) ensureValues() error {
	if st.values != nil {
		return nil
	}
	vals := map[string]any{}
	if st.loaded != nil {
		v, err := decodeValues(st.loaded.Data)
		if err != nil {
			return fmt.Errorf("session %s: %w", st.loaded.Fingerprint(), err)
		}
		vals = v
	}
	for k, c := range st.changes {
		if c.del {
			delete(vals, k)
		} else {
			vals[k] = c.v
		}
	}
	st.values = vals
	return nil
}

// Get returns a deep copy of the value stored under key, and whether there
// was one.
func (s *Session) Get(key string) (any, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	st, err := s.lock()
	if err != nil {
		return nil, false, err
	}
	defer st.mu.Unlock()
	return st.get(key)
}

// get returns a deep copy of the value under key. Called with mu held.
func (st *reqState) get(key string) (any, bool, error) {
	v, raw, ok, err := st.lookup(key)
	if err != nil || !ok {
		return nil, false, err
	}
	if raw != nil {
		v, err = decodeRaw(raw) // freshly built: nothing to copy
		return v, err == nil, err
	}
	return clone(v), true, nil
}

// lookup finds key's value: a pending change or decoded value (v), or
// else the encoding of its value in the loaded data (raw). A request that
// only reads therefore decodes only the values it reads. Called with mu
// held; raw aliases st.loaded.Data, which is never written in place.
func (st *reqState) lookup(key string) (v any, raw []byte, ok bool, err error) {
	if c, ok := st.changes[key]; ok {
		if c.del {
			return nil, nil, false, nil
		}
		return c.v, nil, true, nil
	}
	if st.loaded == nil || len(st.loaded.Data) == 0 {
		return nil, nil, false, nil
	}
	if st.values == nil && st.rawReads >= maxRawReads {
		// Each raw read walks the whole encoding: a handler that reads
		// many values gets them decoded once instead.
		if err := st.ensureValues(); err != nil {
			return nil, nil, false, err
		}
	}
	if st.values != nil {
		v, ok = st.values[key]
		return v, nil, ok, nil
	}
	st.rawReads++
	raw, ok, err = lookupValue(st.loaded.Data, key)
	if err != nil {
		return nil, nil, false, fmt.Errorf("session %s: %w", st.loaded.Fingerprint(), err)
	}
	return nil, raw, ok, nil
}

// getAs returns the value under key as a T; fast reads T straight from
// its encoding, so a typed read of a stored value builds only the value.
func getAs[T any](s *Session, key string, fast func([]byte) (T, bool)) (T, error) {
	var zero T
	if err := checkKey(key); err != nil {
		return zero, err
	}
	st, err := s.lock()
	if err != nil {
		return zero, err
	}
	defer st.mu.Unlock()
	v, raw, ok, err := st.lookup(key)
	if err != nil || !ok {
		return zero, err
	}
	if raw != nil {
		if t, ok := fast(raw); ok {
			return t, nil
		}
		if v, err = decodeRaw(raw); err != nil {
			return zero, err
		}
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("%w: %q holds %T", ErrWrongType, key, v)
	}
	return t, nil
}

// GetString returns the string under key, "" if there is none.
func (s *Session) GetString(key string) (string, error) { return getAs(s, key, rawString) }

// GetInt64 returns the integer under key (any signed integer type put is
// stored as int64), 0 if there is none.
func (s *Session) GetInt64(key string) (int64, error) { return getAs(s, key, rawInt64) }

// GetBool returns the bool under key, false if there is none.
func (s *Session) GetBool(key string) (bool, error) { return getAs(s, key, rawBool) }

// GetTime returns the time under key, the zero time if there is none.
func (s *Session) GetTime(key string) (time.Time, error) { return getAs(s, key, rawTime) }

// Keys returns the keys that hold values, sorted.
func (s *Session) Keys() ([]string, error) {
	st, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer st.mu.Unlock()
	if err := st.ensureValues(); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(st.values))
	for k := range st.values {
		if !internalKey(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Put stores v under key. v must be one of the types listed in the package
// documentation; it is copied, so later changes to v are not seen. Changes
// are committed to the store before the response headers are written (or,
// for a session that already has its cookie, when the handler returns), and
// merged key by key with concurrent requests on the same session.
func (s *Session) Put(key string, v any) error {
	if err := checkKey(key); err != nil {
		return err
	}
	n, err := normalize(v, 0)
	if err != nil {
		return fmt.Errorf("session: put %q: %w", key, err)
	}
	return s.change(key, change{v: n})
}

// Delete removes the value under key. Deleting an absent key is not an
// error.
func (s *Session) Delete(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return s.change(key, change{del: true})
}

func (s *Session) change(key string, c change) error {
	st, err := s.lock()
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	return st.change(key, c)
}

// change records a put or delete of key. Called with mu held.
func (st *reqState) change(key string, c change) error {
	if st.storeDown {
		return ErrStoreUnavailable
	}
	if st.loaded == nil && st.sent && !c.del {
		return fmt.Errorf("session: put %q needs a new session cookie: %w", key, ErrHeadersSent)
	}
	if st.changes == nil {
		st.changes = make(map[string]change, 2)
	}
	st.changes[key] = c
	if st.values != nil {
		if c.del {
			delete(st.values, key)
		} else {
			st.values[key] = c.v
		}
	}
	return nil
}

// Principal returns the principal the session is authenticated as, "" for
// an anonymous request.
func (s *Session) Principal() (string, error) {
	st, err := s.lock()
	if err != nil {
		return "", err
	}
	defer st.mu.Unlock()
	return st.principal(), nil
}

func (st *reqState) principal() string {
	if st.loaded == nil {
		return ""
	}
	return st.loaded.Principal
}

// Fingerprint returns the fingerprint of the request's current session, ""
// if it has none. It is what the request log and revocation lists use.
func (s *Session) Fingerprint() (string, error) {
	st, err := s.lock()
	if err != nil {
		return "", err
	}
	defer st.mu.Unlock()
	return st.loadedFingerprint(), nil
}

// BadCookie reports why the session cookie the request arrived with was
// not honoured: one of the Bad* reasons (BadUnknown, BadExpired,
// BadRevoked, BadMalformed, BadOversized, BadAmbiguous), the one the
// request's bad_cookie event carried, with the fingerprint of the session
// the cookie named ("" when it named none, as a malformed cookie does).
// Both are "" when the request carried no session cookie or one that
// was honoured. A page can tell from it a session that ended from one
// that never was without watching the manager's events.
func (s *Session) BadCookie() (reason, fingerprint string, err error) {
	st, err := s.lock()
	if err != nil {
		return "", "", err
	}
	defer st.mu.Unlock()
	return st.badReason, st.badFP, nil
}

// loadedFingerprint returns the fingerprint of st.loaded ("" for none),
// computed once per stored session the request uses (a session's hash
// never changes; a log-in or renewal loads another). Called with st.mu
// held.
func (st *reqState) loadedFingerprint() string {
	if st.loaded == nil {
		return ""
	}
	if st.fpOf != st.loaded {
		st.fp, st.fpOf = st.loaded.Fingerprint(), st.loaded
	}
	return st.fp
}

// Login authenticates the session as principal. It always issues a brand-new
// token and destroys the old session (the defence against session
// fixation). Values carry over from an anonymous session or one of the same
// principal; logging in as someone else starts with no values. The new
// session has the manager's Lifetime and IdleTimeout and a browser-session
// cookie (unless Options.Persist); LoginWith can choose "remember me".
func (s *Session) Login(principal string) error {
	return s.LoginWith(principal, LoginOptions{})
}

// LoginWith is Login with options: LoginOptions.Remember gives the session a
// persistent cookie and the manager's RememberLifetime and
// RememberIdleTimeout instead.
func (s *Session) LoginWith(principal string, opt LoginOptions) error {
	if principal == "" {
		return errors.New("session: login: empty principal")
	}
	st, err := s.lock()
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if err := st.reissue(principal, "login", lifetime{remember: opt.Remember}); err != nil {
		return err
	}
	st.loginP, st.loggedIn = principal, true
	st.announceDBSC(st.dbscOffer)
	st.rec.Event(reqlog.EventLogin, "")
	st.m.event(st.rctx, Event{Name: reqlog.EventLogin, Fingerprint: st.loaded.Fingerprint(), Principal: principal})
	return nil
}

// Renew rotates the session's token keeping its principal, its values, its
// "remember me" choice and its absolute end (Renew never extends a
// session's life). With no session it does nothing.
func (s *Session) Renew() error {
	st, err := s.lock()
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if st.loaded == nil {
		return nil
	}
	if err := st.reissue(st.loaded.Principal, "renew", st.keepLifetime()); err != nil {
		return err
	}
	st.rec.Event(reqlog.EventRenew, "")
	st.m.event(st.rctx, Event{Name: reqlog.EventRenew, Fingerprint: st.loaded.Fingerprint(), Principal: st.loaded.Principal})
	return nil
}

// reissue creates a new session for principal with the current values and
// deletes the old one. Called with mu held.
func (st *reqState) reissue(principal, what string, lt lifetime) error {
	if st.storeDown {
		return fmt.Errorf("session: %s: %w", what, ErrStoreUnavailable)
	}
	if st.sent {
		return fmt.Errorf("session: %s: %w", what, ErrHeadersSent)
	}
	if err := st.ensureValues(); err != nil {
		return err
	}
	vals := st.values
	if old := st.principal(); old != "" && old != principal {
		vals = map[string]any{}
	}
	vals = withRemember(vals, lt.remember)
	if what == "login" {
		vals, st.dbscOffer = st.offerDBSC(vals)
	}
	ctx := st.commitContext()
	defer ctx.stop()
	fresh, token, err := st.create(ctx, principal, vals, lt)
	if err != nil {
		return fmt.Errorf("session: %s: %w", what, err)
	}
	if old := st.loaded; old != nil {
		if err := st.m.st.Delete(ctx, old.Hash); err != nil {
			// The old session must not outlive a login; undo the new one.
			_ = st.m.st.Delete(ctx, fresh.Hash)
			return fmt.Errorf("session: %s: destroy old session: %w", what, err)
		}
	}
	st.loaded, st.token, st.values, st.changes = fresh, token, vals, nil
	st.cookie = cookieSet
	st.spec.maxAge = st.m.cookieMaxAge(fresh, lt.remember)
	return nil
}

// create stores a new session with a fresh token. Called with mu held.
func (st *reqState) create(ctx context.Context, principal string, vals map[string]any, lt lifetime) (*store.Session, string, error) {
	now := st.m.opt.Now()
	idle, expires := st.m.deadlines(now, lt)
	for range 3 {
		token, err := newToken(st.m.opt.Rand)
		if err != nil {
			return nil, "", err
		}
		ss := &store.Session{
			Hash:         store.HashToken(token),
			Principal:    principal,
			Data:         encodeValues(vals),
			Created:      now,
			LastSeen:     now,
			IdleDeadline: idle,
			Expires:      expires,
			LastIP:       st.ip,
			UserAgent:    st.ua,
		}
		if err = st.m.st.Create(ctx, ss); err == nil {
			return ss, token, nil
		} else if !errors.Is(err, store.ErrExists) {
			return nil, "", err
		}
	}
	return nil, "", errors.New("session: create: token collisions; the random source is broken")
}

// Logout destroys the session in the store and deletes the cookie. Values
// are gone; later Puts in the same request start a new anonymous session.
func (s *Session) Logout() error {
	st, err := s.lock()
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if st.storeDown {
		return fmt.Errorf("session: logout: %w", ErrStoreUnavailable)
	}
	if st.sent {
		return fmt.Errorf("session: logout: %w", ErrHeadersSent)
	}
	if old := st.loaded; old != nil {
		ctx := st.commitContext()
		defer ctx.stop()
		if err := st.m.st.Delete(ctx, old.Hash); err != nil {
			return fmt.Errorf("session: logout: %w", err)
		}
		st.cookie = cookieClear
		st.clearBound()
		st.rec.Event(reqlog.EventLogout, "")
		st.m.event(st.rctx, Event{Name: reqlog.EventLogout, Fingerprint: old.Fingerprint(), Principal: old.Principal})
	}
	st.loaded, st.token, st.values, st.changes = nil, "", nil, nil
	st.loggedIn, st.loginP, st.anonNew = false, "", false
	return nil
}

// commitContext returns the context for the store writes of a commit; the
// caller stops it when they are done.
func (st *reqState) commitContext() *commitCtx {
	return &commitCtx{values: context.WithoutCancel(st.rctx), deadline: time.Now().Add(commitTimeout)}
}

// commitCtx is the context of a request's store writes: the request's
// values without its cancellation, and a deadline commitTimeout away. The
// timer behind the deadline starts only when a store asks for Done, Err or
// AfterFunc, so a store that never waits (memstore; the cache on a hit)
// costs no timer. After stop it is done.
type commitCtx struct {
	values   context.Context
	deadline time.Time
	once     sync.Once
	started  atomic.Bool     // once has run
	timed    context.Context // set once: the deadline's context, or stoppedCtx
	cancel   context.CancelFunc
}

// stoppedCtx is a commitCtx's Done and Err once stopped before any use.
var stoppedCtx = func() context.Context {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	return c
}()

func (c *commitCtx) start() context.Context {
	c.once.Do(func() {
		c.timed, c.cancel = context.WithDeadline(c.values, c.deadline)
		c.started.Store(true)
	})
	return c.timed
}

// Err is nil before the deadline until c is stopped; asking it does not
// start the timer (stores ask it before every operation).
func (c *commitCtx) Err() error {
	if !c.started.Load() && time.Now().Before(c.deadline) {
		return nil
	}
	return c.start().Err()
}

func (c *commitCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *commitCtx) Done() <-chan struct{}       { return c.start().Done() }
func (c *commitCtx) Value(key any) any           { return c.values.Value(key) }

// AfterFunc lets contexts derived from c hang on its timer instead of
// each watching it from a goroutine (see context.AfterFunc).
func (c *commitCtx) AfterFunc(f func()) (stop func() bool) { return context.AfterFunc(c.start(), f) }

// stop releases the timer; c is done afterwards.
func (c *commitCtx) stop() {
	c.once.Do(func() {
		c.timed = stoppedCtx
		c.started.Store(true)
	})
	if c.cancel != nil {
		c.cancel()
	}
}

// commit writes pending changes to the store, creating an anonymous session
// if the request has none, and merging with concurrent writers key by key.
// Called with mu held.
func (st *reqState) commit() error {
	if len(st.changes) == 0 || st.storeDown {
		return nil
	}
	ctx := st.commitContext()
	defer ctx.stop()
	if st.loaded == nil {
		if err := st.ensureValues(); err != nil {
			return err
		}
		st.changes = nil
		if len(st.values) == 0 {
			return nil // only deletes on a session that does not exist
		}
		if st.sent {
			return ErrHeadersSent
		}
		fresh, token, err := st.create(ctx, "", st.values, lifetime{})
		if err != nil {
			return fmt.Errorf("session: commit: %w", err)
		}
		st.spec.maxAge = st.m.cookieMaxAge(fresh, false)
		st.loaded, st.token, st.cookie, st.anonNew = fresh, token, cookieSet, true
		st.m.event(st.rctx, Event{Name: EventCreate, Fingerprint: fresh.Fingerprint()})
		return nil
	}
	cur := st.loaded
	now := st.m.opt.Now()
	for range maxCommitAttempts {
		data, err := applyChanges(cur.Data, st.changes)
		if err != nil {
			return fmt.Errorf("session %s: commit: %w", cur.Fingerprint(), err)
		}
		next := cur.Clone()
		next.Data = data
		next.LastSeen, next.LastIP, next.UserAgent = now, st.ip, st.ua
		next.IdleDeadline = minTime(now.Add(st.m.idleTimeout(rememberedData(data))), next.Expires)
		err = st.m.st.Update(ctx, next)
		if err == nil {
			// values are decoded again from next.Data if they are needed.
			st.loaded, st.values, st.changes = next, nil, nil
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("session %s: commit: %w", cur.Fingerprint(), err)
		}
		fresh, err := st.m.st.Find(ctx, cur.Hash)
		if err != nil {
			return fmt.Errorf("session %s: commit: reload: %w", cur.Fingerprint(), err)
		}
		if fresh.Principal != cur.Principal {
			return fmt.Errorf("session %s: commit: principal changed underneath", cur.Fingerprint())
		}
		cur = fresh
	}
	return fmt.Errorf("session %s: commit: %d conflicting writers in a row", cur.Fingerprint(), maxCommitAttempts)
}

// applyChanges returns the encoding of data's values with changes applied.
func applyChanges(data []byte, changes map[string]change) ([]byte, error) {
	out, canonical, err := mergeValues(data, changes)
	if err != nil || canonical {
		return out, err
	}
	vals, err := decodeValues(data)
	if err != nil {
		return nil, err
	}
	for k, c := range changes {
		if c.del {
			delete(vals, k)
		} else {
			vals[k] = c.v
		}
	}
	return encodeValues(vals), nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// tokenEqual compares two tokens in constant time.
func tokenEqual(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
