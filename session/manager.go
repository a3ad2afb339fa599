package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/store"
)

// Defaults. The timeouts follow OWASP ASVS 5.0 V7.3 at level 2: an idle
// timeout bounds how long an unattended, signed-in browser stays usable
// (30 minutes), and an absolute lifetime forces re-authentication at least
// twice a day however active the session is (12 hours).
const (
	DefaultCookieName    = "__Host-session"
	DefaultIdleTimeout   = 30 * time.Minute
	DefaultLifetime      = 12 * time.Hour
	DefaultTouchInterval = time.Minute
	DefaultCleanup       = 5 * time.Minute
)

// StoreFailure says what a request gets when the store cannot be read.
type StoreFailure int

const (
	// FailAnonymous serves the request as anonymous (the default). The
	// cookie is left in place: the session may be perfectly valid once the
	// store is back.
	FailAnonymous StoreFailure = iota
	// FailUnavailable answers 503 Service Unavailable without calling the
	// handler.
	FailUnavailable
)

// GuardMode says what the egress guard does with a session cookie that must
// not leave.
type GuardMode int

const (
	// GuardBlock removes the cookie and fails the response closed with 500
	// (the default).
	GuardBlock GuardMode = iota
	// GuardReport lets the response through unchanged and records the
	// guard_block event with detail prefixed "report:". For a first rollout
	// only.
	GuardReport
)

// Event is something the manager noticed or did that an operator, a metrics
// collector or an error reporter should hear of: a guard_block, a stale_use
// of a sealed handle, a bad_cookie, a store failure, and the life of
// sessions (create, login, renew, logout, revoke).
type Event struct {
	// Name is a request-log event name (reqlog.EventGuardBlock,
	// reqlog.EventLogin, ...), EventCreate for a new anonymous session, or
	// EventStoreError.
	Name string
	// Detail is a short machine-readable reason.
	Detail string
	// Fingerprint is the session concerned, if any.
	Fingerprint string
	// Principal is the principal the request was for, if any.
	Principal string
	// Origin is file:line of the code that obtained the handle (stale_use).
	Origin string
	// Err is the underlying error, if any. It never contains a token.
	Err error
}

// Event names that are not request-log events.
const (
	// EventCreate: an anonymous session was created to hold values.
	EventCreate = "create"
	// EventStoreError: the store failed; Detail says in which operation.
	EventStoreError = "store_error"
)

// Options configure a Manager. The zero value gives the documented defaults.
type Options struct {
	// CookieName is the session cookie's name. Default "__Host-session".
	CookieName string
	// Dev switches development mode on: the session cookie goes out
	// without the Secure flag, and without the "__Host-" prefix of its
	// name (which requires Secure), so that a browser sends it back over
	// plain HTTP, as on http://127.0.0.1 on a developer's machine. It is
	// never inferred from a request: a request that looks local may come
	// through a TLS-terminating proxy on the same machine. Leave it off in
	// production. Without it, the first request that arrives over plain
	// HTTP (and not from a proxy that says, in X-Forwarded-Proto or
	// Forwarded, that the client used HTTPS) makes the manager log a
	// warning once: the browser will not send a Secure cookie back over
	// HTTP, so sign-ins will not stick.
	Dev bool
	// SameSite defaults to http.SameSiteLaxMode.
	SameSite http.SameSite
	// Persist gives every session cookie a Max-Age of the session's
	// lifetime; by default it is a browser-session cookie, and only a login
	// with LoginOptions.Remember gets a persistent one.
	Persist bool
	// IdleTimeout: a session unused for this long expires. Default 30 min.
	IdleTimeout time.Duration
	// Lifetime: absolute session lifetime. Default 12 h.
	Lifetime time.Duration
	// RememberLifetime: absolute lifetime of a session logged in with
	// LoginOptions.Remember. Default 14 days; longer values are cut to
	// MaxRememberLifetime (30 days), with a warning.
	RememberLifetime time.Duration
	// RememberIdleTimeout: a remembered session unused for this long
	// expires. Default 7 days.
	RememberIdleTimeout time.Duration
	// TouchInterval: how stale the stored last-seen time may get before a
	// request writes it again. Default 1 min. Idle expiry is therefore
	// accurate to this interval.
	TouchInterval time.Duration
	// CleanupInterval: how often expired sessions are swept from stores that
	// keep them (store.Cleaner). Default 5 min; negative disables.
	CleanupInterval time.Duration
	// OnStoreError: FailAnonymous (default) or FailUnavailable.
	OnStoreError StoreFailure
	// Guard: GuardBlock (default) or GuardReport.
	Guard GuardMode
	// ClientIP resolves a request's client address for the session's
	// last-IP record. Default: the request log's IP if the reqlog
	// middleware runs outside, else the connection's peer address.
	ClientIP func(*http.Request) string
	// OnEvent, if set, hears of every Event (wire the error reporter here).
	// It is called synchronously and must not block.
	OnEvent func(ctx context.Context, ev Event)
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand is the source of token bytes. Default crypto/rand.Reader.
	Rand io.Reader
	// Logger receives warnings and store errors. Default slog.Default().
	Logger *slog.Logger
	// DBSC, if not nil, turns on device-bound sessions (see DBSC). Off by
	// default.
	DBSC *DBSC
}

// Manager issues, loads and commits sessions, and guards their cookie. A
// Manager is safe for concurrent use; create one per application with New
// and wrap the handler in Middleware.
type Manager struct {
	st      store.Store
	opt     Options
	log     *slog.Logger
	devName string
	// spec is the cookie as every request gets it (Options.Dev decides).
	spec        cookieSpec
	plainOnce   sync.Once
	plainWarned atomic.Bool // plainOnce's warning has gone out
	dbsc        *dbscConfig // nil unless Options.DBSC
	stop        chan struct{}
	stopOnce    sync.Once
	done        chan struct{}

	// Protections switched off, and request states recycled, only by this
	// package's tests (export_test.go), to prove that the chaos oracle
	// catches crossings when a protection is missing.
	noSeal, noGuard bool
	off             protection
	reuse           *freeList
}

// freeList recycles request states last-in first-out, as a framework's
// context pool does; only tests switch it on (see release).
type freeList struct {
	mu    sync.Mutex
	items []*reqState
}

func (f *freeList) get() *reqState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.items) == 0 {
		return nil
	}
	st := f.items[len(f.items)-1]
	f.items = f.items[:len(f.items)-1]
	return st
}

func (f *freeList) put(st *reqState) {
	f.mu.Lock()
	f.items = append(f.items, st)
	f.mu.Unlock()
}

// New returns a Manager over st. It panics if st is nil (a setup mistake).
// If st is a store.Cleaner and CleanupInterval is not negative, a background
// goroutine sweeps expired sessions until Close.
func New(st store.Store, opt Options) *Manager {
	if st == nil {
		panic("cordon/session: New with a nil store")
	}
	if opt.CookieName == "" {
		opt.CookieName = DefaultCookieName
	}
	if opt.SameSite == 0 {
		opt.SameSite = http.SameSiteLaxMode
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = DefaultIdleTimeout
	}
	if opt.Lifetime <= 0 {
		opt.Lifetime = DefaultLifetime
	}
	if opt.TouchInterval <= 0 {
		opt.TouchInterval = DefaultTouchInterval
	}
	if opt.CleanupInterval == 0 {
		opt.CleanupInterval = DefaultCleanup
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.RememberLifetime <= 0 {
		opt.RememberLifetime = DefaultRememberLifetime
	}
	if opt.RememberLifetime > MaxRememberLifetime {
		opt.Logger.Warn("session: RememberLifetime cut to the 30-day maximum", "asked", opt.RememberLifetime)
		opt.RememberLifetime = MaxRememberLifetime
	}
	if opt.RememberIdleTimeout <= 0 {
		opt.RememberIdleTimeout = DefaultRememberIdleTimeout
	}
	m := &Manager{st: st, opt: opt, log: opt.Logger, stop: make(chan struct{}), done: make(chan struct{})}
	m.dbsc = newDBSC(opt.DBSC)
	if rest, ok := strings.CutPrefix(opt.CookieName, "__Host-"); ok && rest != "" {
		m.devName = rest
	} else {
		m.devName = opt.CookieName
	}
	m.spec = cookieSpec{name: opt.CookieName, secure: true}
	if opt.Dev {
		m.spec = cookieSpec{name: m.devName, secure: false}
		m.log.Warn("session: development mode: the session cookie goes out without Secure and without the __Host- prefix; never use it in production",
			"cookie", m.devName)
	}
	if cl, ok := st.(store.Cleaner); ok && opt.CleanupInterval > 0 {
		go m.sweep(cl)
	} else {
		close(m.done)
	}
	return m
}

// Close stops the background sweeper. It does not close the store.
func (m *Manager) Close() error {
	m.stopOnce.Do(func() { close(m.stop) })
	<-m.done
	return nil
}

func (m *Manager) sweep(cl store.Cleaner) {
	defer close(m.done)
	t := time.NewTicker(m.opt.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), m.opt.CleanupInterval)
			if n, err := cl.DeleteExpired(ctx, m.opt.Now()); err != nil {
				m.log.Warn("session: sweeping expired sessions failed", "err", err)
			} else if n > 0 {
				m.log.Debug("session: swept expired sessions", "n", n)
			}
			cancel()
		}
	}
}

func (m *Manager) event(ctx context.Context, ev Event) {
	if m.opt.OnEvent != nil {
		m.opt.OnEvent(ctx, ev)
	}
}

func (m *Manager) clientIP(r *http.Request) string {
	if m.opt.ClientIP != nil {
		return m.opt.ClientIP(r)
	}
	if ip := reqlog.FromContext(r.Context()).IP(); ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ErrNotSupported is returned by the revocation and listing methods when the
// store lacks the ability.
var ErrNotSupported = errors.New("session: the store does not support this")

func (m *Manager) revoker() (store.Revoker, error) {
	rv, ok := m.st.(store.Revoker)
	if !ok {
		return nil, fmt.Errorf("%w: revocation (%T)", ErrNotSupported, m.st)
	}
	return rv, nil
}

// RevokeFingerprints revokes the sessions with the given fingerprints (as
// found in the request log or by `cordon scan`) and returns how many were
// live. Malformed fingerprints are an error and nothing is revoked.
func (m *Manager) RevokeFingerprints(ctx context.Context, fps ...string) (int, error) {
	for _, fp := range fps {
		if !store.ValidFingerprint(fp) {
			return 0, fmt.Errorf("session: revoke: %q is not a fingerprint (32 lowercase hex digits)", fp)
		}
	}
	rv, err := m.revoker()
	if err != nil {
		return 0, err
	}
	n, err := rv.RevokeFingerprints(ctx, fps)
	if err == nil {
		m.event(ctx, Event{Name: reqlog.EventRevoke, Detail: "session"})
	}
	return n, err
}

// RevokePrincipal revokes every session of principal in O(1), by epoch.
func (m *Manager) RevokePrincipal(ctx context.Context, principal string) error {
	if principal == "" {
		return errors.New("session: revoke: empty principal")
	}
	rv, err := m.revoker()
	if err != nil {
		return err
	}
	if err := rv.RevokePrincipal(ctx, principal); err != nil {
		return err
	}
	m.event(ctx, Event{Name: reqlog.EventRevoke, Detail: "principal", Principal: principal})
	return nil
}

// RevokeAll revokes every session in O(1), by epoch.
func (m *Manager) RevokeAll(ctx context.Context) error {
	rv, err := m.revoker()
	if err != nil {
		return err
	}
	if err := rv.RevokeAll(ctx); err != nil {
		return err
	}
	m.event(ctx, Event{Name: reqlog.EventRevoke, Detail: "all"})
	return nil
}

// Info describes a live session for listings. It carries the fingerprint,
// never the token.
type Info struct {
	Fingerprint string
	Principal   string
	Created     time.Time
	LastSeen    time.Time
	LastIP      string
	UserAgent   string
	Expires     time.Time
	// DeviceBound: the session is bound to a browser's key (Options.DBSC).
	DeviceBound bool
}

// Sessions lists the live sessions of principal ("" lists every live
// session), most recently seen first, at most limit (0: all).
func (m *Manager) Sessions(ctx context.Context, principal string, limit int) ([]Info, error) {
	ls, ok := m.st.(store.Lister)
	if !ok {
		return nil, fmt.Errorf("%w: listing (%T)", ErrNotSupported, m.st)
	}
	list, err := ls.List(ctx, store.ListOptions{Principal: principal, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	out := make([]Info, 0, len(list))
	now := m.opt.Now()
	for _, s := range list {
		if s.Expired(now) {
			continue
		}
		out = append(out, Info{
			Fingerprint: s.Fingerprint(), Principal: s.Principal, Created: s.Created,
			LastSeen: s.LastSeen, LastIP: s.LastIP, UserAgent: s.UserAgent, Expires: s.Deadline(),
			DeviceBound: m.dbsc != nil && deviceBound(s.Data),
		})
	}
	return out, nil
}
