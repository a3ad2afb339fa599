package lab

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/internal/token"
	"github.com/cordon-sec/cordon/report"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/store"
)

// CookieName is the name of the session cookie in every composition.
const CookieName = "cordon_session"

// Password is the password of every lab user: the lab is about sessions, not
// about passwords.
const Password = "lab"

// Session lifetimes the lab gives new sessions.
const (
	idleTimeout = 24 * time.Hour
	absTimeout  = 7 * 24 * time.Hour
)

var validUser = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// Options configures a composition.
type Options struct {
	// Mitigations selects the defences; the zero value is the vulnerable
	// composition.
	Mitigations Mitigations
	// Store holds the sessions. Required.
	Store store.Store
	// Workers is the number of Unicorn-like workers, each with its env,
	// error reporter and background refresher (default 1).
	Workers int
	// Latency is how long authentication and rendering take in live mode
	// (default 0). Under the scheduler they are yield points instead.
	Latency time.Duration
	// RefreshEvery is the live refresher's interval (default 2 ms).
	RefreshEvery time.Duration
	// FailRate is the live probability that a refresh fails with a query
	// timeout (default 0.5; negative means never).
	FailRate float64
	// Float returns numbers in [0,1) for FailRate (default math/rand/v2).
	Float func() float64
	// Rand is the source of session tokens (default crypto/rand).
	Rand io.Reader
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives the delivered error reports (default: discard).
	Logger *slog.Logger
	// Log, if set, receives one request-log line per request (cordon's
	// log schema). The vulnerable composition annotates it the way the
	// incident's app logged: the session that came in, the session the
	// response set, and the user the body was rendered for.
	Log *reqlog.Writer

	sched *Sched
	trace *Trace
	// fail, if set, decides whether a refresh fails (the harness's
	// seeded decisions); otherwise FailRate and Float do.
	fail func() bool
}

// rt is what every part of one composition shares: the scheduler, the trace
// and the counters.
type rt struct {
	sched   *Sched
	trace   *Trace
	latency time.Duration
	blocked atomic.Int64 // attempts refused by a sealed handle or the guard
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	fps     sync.Map // fingerprint -> principal, for readable traces only
}

// pause is a point where the running goroutine waits for something slow
// (the session store, rendering). Under the scheduler it is a yield point;
// live, it sleeps for the configured latency.
func (r *rt) pause(at string) {
	if r.sched != nil {
		r.ev("scheduler", "yield", "parks at "+at)
		r.sched.Yield(at)
		return
	}
	if r.latency > 0 {
		time.Sleep(r.latency)
	}
}

func (r *rt) ev(object, op, detail string) { r.trace.Add(object, op, detail) }

// describe names a token for the trace: its fingerprint's first 8 digits
// and, when known, whose session it is. The token itself never appears.
func (r *rt) describe(token string) string {
	if token == "" {
		return "no session cookie"
	}
	return r.describeFP(store.Fingerprint(token))
}

func (r *rt) remember(token, principal string) { r.rememberFP(store.Fingerprint(token), principal) }

func (r *rt) rememberFP(fp, principal string) {
	if r.trace != nil {
		r.fps.Store(fp, principal)
	}
}

// describeFP is describe for a fingerprint.
func (r *rt) describeFP(fp string) string {
	if len(fp) < 8 {
		return "no session"
	}
	if p, ok := r.fps.Load(fp); ok {
		return fmt.Sprintf("session %s (%s)", fp[:8], p)
	}
	return "session " + fp[:8]
}

// newToken returns a fresh session token: 256 bits, base64url.
func newToken(src io.Reader) (string, error) {
	v, err := token.New(src)
	if err != nil {
		return "", fmt.Errorf("lab: token: %w", err)
	}
	return v, nil
}

// createSession stores a new session for principal and returns its token.
func createSession(ctx context.Context, st store.Store, src io.Reader, now time.Time, principal string) (string, error) {
	tok, err := newToken(src)
	if err != nil {
		return "", err
	}
	s := &store.Session{
		Hash: store.HashToken(tok), Principal: principal,
		Created: now, LastSeen: now, IdleDeadline: now.Add(idleTimeout), Expires: now.Add(absTimeout),
	}
	if err := st.Create(ctx, s); err != nil {
		return "", fmt.Errorf("lab: create session: %w", err)
	}
	return tok, nil
}

// Env is a request environment, a string-keyed map like a Rack env. Its
// methods are goroutine-safe: the composition's flaw is that one Env is
// shared by successive requests, not a data race.
type Env struct {
	name string
	rt   *rt
	mu   sync.Mutex
	m    map[string]any
}

func newEnv(r *rt, name string) *Env { return &Env{name: name, rt: r, m: make(map[string]any)} }

// Get returns the value stored under key, or nil.
func (e *Env) Get(key string) any {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[key]
}

// Set stores v under key.
func (e *Env) Set(key string, v any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = v
}

// Clear removes every key, keeping the map (Hash#clear).
func (e *Env) Clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.m)
}

// Env keys.
const (
	keyCookie  = "HTTP_COOKIE"
	keyPath    = "PATH_INFO"
	keyMethod  = "REQUEST_METHOD"
	keyRequest = "lab.request"
	keyJar     = "lab.cookie_jar"
)

// How the trace names the env's entries: in plain words, not Rack's keys.
const (
	showCookie = "cookie header"
	showJar    = "cookie jar"
)

// CookieJar holds the cookies one response will set. It lives in the env,
// as ActionDispatch's jar lives in the Rack env, and like it, it starts from
// the request's cookies: setting a cookie to the value the request already
// carries changes nothing and sends nothing.
type CookieJar struct {
	name string
	mu   sync.Mutex
	in   map[string]string // the request's cookies
	set  map[string]string // cookies to send
}

func newJar(n int64, header string) *CookieJar {
	j := &CookieJar{name: fmt.Sprintf("jar(#%d)", n), in: map[string]string{}, set: map[string]string{}}
	if cs, err := http.ParseCookie(header); err == nil {
		for _, c := range cs {
			j.in[c.Name] = c.Value
		}
	}
	return j
}

// Set puts a cookie into the jar and reports whether it changed anything
// (a cookie equal to the request's own is not sent again).
func (j *CookieJar) Set(name, value string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, pending := j.set[name]; !pending && j.in[name] == value {
		return false
	}
	j.set[name] = value
	return true
}

// Get returns the value of a cookie to send, or "".
func (j *CookieJar) Get(name string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.set[name]
}

// Controller is created for one request, as Rails creates a controller
// object per request. It authenticates lazily: only when CurrentUser is
// first called.
type Controller struct {
	n     int64
	path  string
	env   *Env
	rt    *rt
	store store.Store
	// sess is the request's sealed session handle; with SealedHandles the
	// controller reaches the session only through it.
	sess   handle
	sealed bool
	// dbsc is the app's device-binding code (the dbsc mitigation); cookie
	// is the request's own Cookie header, which the sealed path checks.
	dbsc   *dbscLayer
	cookie string

	mu      sync.Mutex
	authed  bool
	user    string
	unbound bool   // a device-bound session came without its live bound cookie
	offer   string // a registration offer for the response (log-in)
}

func (c *Controller) name() string { return fmt.Sprintf("controller#%d", c.n) }

// CurrentUser returns the principal the request is authenticated as,
// authenticating on first use. No lock is held while authenticating: the
// store round trip is a yield point.
func (c *Controller) CurrentUser() (string, error) {
	c.mu.Lock()
	if c.authed {
		u := c.user
		c.mu.Unlock()
		return u, nil
	}
	c.mu.Unlock()
	c.rt.ev(c.name(), "call", "CurrentUser: not authenticated yet, authenticating")
	var u string
	var err error
	if c.sealed {
		u, err = c.authenticateSealed()
	} else {
		u, err = c.authenticateFromEnv()
	}
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.authed, c.user = true, u
	c.mu.Unlock()
	return u, nil
}

// authenticateFromEnv is the vulnerable path: the cookie is read from the
// env the controller was given, and the refreshed session cookie is written
// to whatever jar that env holds when the store has answered.
func (c *Controller) authenticateFromEnv() (string, error) {
	raw, _ := c.env.Get(keyCookie).(string)
	tok := sessionToken(raw)
	c.rt.ev(c.env.name, "read", showCookie+" → "+c.rt.describe(tok))
	if tok == "" {
		return "", nil
	}
	s, err := c.store.Find(context.Background(), store.HashToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		c.rt.ev("store", "read", "Find "+c.rt.describe(tok)+" → not found: anonymous")
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lab: authenticate: %w", err)
	}
	c.rt.ev("store", "read", "Find "+c.rt.describe(tok)+" → principal "+s.Principal)
	bound, isBound := "", false
	if c.dbsc != nil {
		bound = boundToken(raw)
		ok, b, why := c.dbsc.check(store.Fingerprint(tok), bound)
		isBound = b
		if !ok {
			c.refuseUnbound(tok, why)
			return "", nil
		}
		c.rt.ev("dbsc", "read", "check "+c.rt.describe(tok)+": "+why)
	}
	c.rt.pause("auth.verified")
	jar, _ := c.env.Get(keyJar).(*CookieJar)
	if jar == nil {
		c.rt.ev(c.env.name, "read", showJar+" → none")
		return s.Principal, nil
	}
	c.rt.ev(c.env.name, "read", showJar+" → "+jar.name)
	if jar.Set(CookieName, tok) {
		c.rt.ev(jar.name, "write", "Set "+CookieName+" = "+c.rt.describe(tok))
	} else {
		c.rt.ev(jar.name, "write", "Set "+CookieName+" = "+c.rt.describe(tok)+": unchanged, the request carries it")
	}
	if isBound {
		// The session goes back with the credentials it was verified with:
		// the bound cookie too.
		what := "Set " + BoundCookieName + " = " + c.dbsc.describeBound(bound, s.Principal)
		if !jar.Set(BoundCookieName, bound) {
			what += ": unchanged, the request carries it"
		}
		c.rt.ev(jar.name, "write", what)
	}
	return s.Principal, nil
}

// refuseUnbound records that a device-bound session came without its live
// bound cookie: the request is served as anonymous.
func (c *Controller) refuseUnbound(tok, why string) {
	c.rt.ev("dbsc", "block", "check "+c.rt.describe(tok)+": "+why+" → not served as its owner")
	c.mu.Lock()
	c.unbound = true
	c.mu.Unlock()
}

// authenticateSealed is the hardened path: the principal comes from the
// request's own session handle, which refuses once its request has ended;
// the session cookie is the middleware's business, not the controller's.
func (c *Controller) authenticateSealed() (string, error) {
	p, err := c.sess.Principal()
	if err != nil {
		c.rt.blocked.Add(1)
		c.rt.ev(c.sess.Name(), "block", "Principal refused: "+errKind(err))
		return "", fmt.Errorf("lab: authenticate: %w", err)
	}
	c.rt.ev(c.sess.Name(), "read", "Principal → "+orAnon(p))
	if c.dbsc != nil && p != "" {
		tok := sessionToken(c.cookie)
		ok, _, why := c.dbsc.check(store.Fingerprint(tok), boundToken(c.cookie))
		if !ok {
			c.refuseUnbound(tok, why)
			return "", nil
		}
		c.rt.ev("dbsc", "read", "check "+c.rt.describe(tok)+": "+why)
	}
	c.rt.pause("auth.verified")
	return p, nil
}

func errKind(err error) string {
	if isEnded(err) {
		return "its request has ended"
	}
	return err.Error()
}

func orAnon(p string) string {
	if p == "" {
		return "anonymous"
	}
	return p
}

// sessionToken returns the session cookie's value in a Cookie header.
func sessionToken(header string) string {
	if header == "" {
		return ""
	}
	cs, err := http.ParseCookie(header)
	if err != nil {
		return ""
	}
	for _, c := range cs {
		if c.Name == CookieName {
			return c.Value
		}
	}
	return ""
}

// body is every response body of the lab app.
type body struct {
	Request int64  `json:"request"`
	Page    string `json:"page,omitempty"`
	User    string `json:"user"`
	Authed  bool   `json:"authenticated"`
	Error   string `json:"error,omitempty"`
}

// dispatch runs the action for the request's path and returns the status
// and body.
func (c *Controller) dispatch(r *http.Request) (int, body) {
	b := body{Request: c.n}
	switch {
	case r.URL.Path == "/page" && r.Method == http.MethodGet:
		// A public page: it never asks who the user is.
		c.rt.pause("request.render")
		b.Page = "public"
		return http.StatusOK, b
	case r.URL.Path == "/account" && r.Method == http.MethodGet:
		u, err := c.CurrentUser()
		if err != nil {
			b.Error = "authentication failed"
			return http.StatusInternalServerError, b
		}
		c.mu.Lock()
		unbound := c.unbound
		c.mu.Unlock()
		if unbound {
			b.Error = "device-bound session without its live bound cookie: refresh it"
			return http.StatusUnauthorized, b
		}
		c.rt.pause("request.render")
		b.Page, b.User, b.Authed = "account", u, true
		return http.StatusOK, b
	case r.URL.Path == "/login" && r.Method == http.MethodPost:
		return c.login(r)
	}
	b.Error = "not found"
	return http.StatusNotFound, b
}

// login checks the form and starts a session for the user.
func (c *Controller) login(r *http.Request) (int, body) {
	b := body{Request: c.n, Page: "login"}
	r.Body = http.MaxBytesReader(nil, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		b.Error = "bad form"
		return http.StatusBadRequest, b
	}
	user, pw := r.PostForm.Get("user"), r.PostForm.Get("password")
	if !validUser.MatchString(user) || pw != Password {
		b.Error = "wrong user or password"
		return http.StatusUnauthorized, b
	}
	if c.sess != nil {
		// cordon's middleware is present: its handle is the one door for
		// the session cookie.
		if err := c.sess.Login(user); err != nil {
			b.Error = "login failed"
			return http.StatusInternalServerError, b
		}
		c.rt.ev(c.sess.Name(), "write", "Login "+user)
		if fh, ok := c.sess.(interface{ Fingerprint() (string, error) }); ok && c.dbsc != nil {
			if fp, err := fh.Fingerprint(); err == nil {
				c.offerBinding(fp)
			}
		}
	} else {
		tok, err := createSession(r.Context(), c.store, c.rt.rand, c.rt.now(), user)
		if err != nil {
			b.Error = "login failed"
			return http.StatusInternalServerError, b
		}
		c.rt.remember(tok, user)
		jar, _ := c.env.Get(keyJar).(*CookieJar)
		if jar != nil {
			jar.Set(CookieName, tok)
			c.rt.ev(jar.name, "write", "Set "+CookieName+" = "+c.rt.describe(tok))
		}
		c.offerBinding(store.Fingerprint(tok))
	}
	c.mu.Lock()
	c.authed, c.user = true, user
	c.mu.Unlock()
	b.User, b.Authed = user, true
	return http.StatusOK, b
}

// offerBinding prepares a registration offer for the new session with
// fingerprint fp, when the app does DBSC.
func (c *Controller) offerBinding(fp string) {
	if c.dbsc == nil {
		return
	}
	v, err := c.dbsc.offer(fp)
	if err != nil {
		c.rt.log.Error("lab: dbsc offer", "err", err)
		return
	}
	c.rt.ev("dbsc", "write", "offer a device binding to "+c.rt.describeFP(fp))
	c.mu.Lock()
	c.offer = v
	c.mu.Unlock()
}

// Worker is one Unicorn-like worker: it serves one request at a time and,
// unless FreshEnv is on, reuses one env for all of them, clearing it in
// between. It has its own error reporter and background refresher.
type Worker struct {
	id       int
	srv      *Server
	env      *Env // the reused env; nil with FreshEnv
	reporter *Reporter
	refresh  *Refresher
}

// serve handles one request on the worker.
func (w *Worker) serve(rw http.ResponseWriter, r *http.Request, n int64) {
	s := w.srv
	m := s.opt.Mitigations
	env := w.env
	if m.FreshEnv {
		env = newEnv(s.rt, fmt.Sprintf("env(#%d)", n))
		s.rt.ev(env.name, "write", "allocate a fresh env for request #"+fmt.Sprint(n))
	} else {
		env.Clear()
		s.rt.ev(env.name, "clear", "cleared and reused for request #"+fmt.Sprint(n))
	}
	cookie := r.Header.Get("Cookie")
	env.Set(keyMethod, r.Method)
	env.Set(keyPath, r.URL.Path)
	env.Set(keyCookie, cookie)
	env.Set(keyRequest, n)
	s.rt.ev(env.name, "write", fmt.Sprintf("%s %s, %s = %s", r.Method, r.URL.Path, showCookie, s.rt.describe(sessionToken(cookie))))
	jar := newJar(n, cookie)
	env.Set(keyJar, jar)
	s.rt.ev(env.name, "write", showJar+" = "+jar.name)

	c := &Controller{n: n, path: r.URL.Path, env: env, rt: s.rt, store: s.opt.Store, sealed: m.SealedHandles, dbsc: s.dbsc, cookie: cookie}
	if s.sessions != nil {
		c.sess = s.sessions.From(r)
	}
	// The framework gives the error reporter this request's context.
	sc := w.requestContext(r, c)
	w.reporter.SetCurrent(sc)

	rec := reqlog.FromContext(r.Context())
	if s.sessions == nil {
		annotateIn(r.Context(), rec, s.opt.Store, sessionToken(cookie))
	}

	s.rt.pause("request.begin")
	status, b := c.dispatch(r)
	if v, ok := sc.(*valueScope); ok && b.Authed {
		// Value-only context: the user goes in as a value once known.
		if err := v.s.SetPrincipal(b.User); err != nil {
			s.rt.ev("reporter", "block", "SetPrincipal: "+err.Error())
		}
	}

	// Rack's cookie middleware writes the jar it finds in the env now.
	out, _ := env.Get(keyJar).(*CookieJar)
	if out != nil {
		s.rt.ev(env.name, "read", showJar+" → "+out.name)
		if tok := out.Get(CookieName); tok != "" {
			s.rt.ev(out.name, "read", CookieName+" = "+s.rt.describe(tok)+" → Set-Cookie of response #"+fmt.Sprint(n))
			http.SetCookie(rw, &http.Cookie{Name: CookieName, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
			if s.sessions == nil {
				annotateOut(r.Context(), rec, s.opt.Store, tok)
			}
		}
		if bv := out.Get(BoundCookieName); bv != "" && s.dbsc != nil {
			s.rt.ev(out.name, "read", BoundCookieName+" = "+s.dbsc.describeBound(bv, "")+" → Set-Cookie of response #"+fmt.Sprint(n))
			http.SetCookie(rw, boundCookie(bv, s.dbsc.ttl))
		}
	}
	c.mu.Lock()
	offer := c.offer
	c.mu.Unlock()
	if offer != "" {
		rw.Header().Set(dbsc.HeaderRegistration, offer)
	}
	if s.sessions == nil && b.Authed && b.User != "" {
		rec.View(b.User)
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(b)
}

// annotateIn records, for the request log, the session the request came
// with. cordon's session manager does it on the hardened side.
func annotateIn(ctx context.Context, rec *reqlog.Record, st store.Store, tok string) {
	if rec == nil || tok == "" {
		return
	}
	if x, err := st.Find(ctx, store.HashToken(tok)); err == nil {
		rec.SessionIn(x.Hash.Fingerprint(), x.Principal)
	}
}

// annotateOut records the session the response sets and, per the store at
// this moment, whose it is.
func annotateOut(ctx context.Context, rec *reqlog.Record, st store.Store, tok string) {
	if rec == nil {
		return
	}
	uid := ""
	if x, err := st.Find(ctx, store.HashToken(tok)); err == nil {
		uid = x.Principal
	}
	rec.SessionOut(store.Fingerprint(tok), uid)
}

// requestContext is the error context the framework sets for a request:
// the same fields, including the callback that keeps a reference to the
// controller (and through it to the env it was given), go either into the
// vulnerable reporter's lazy context or into cordon's report, which keeps
// plain values and refuses the callback.
func (w *Worker) requestContext(r *http.Request, c *Controller) errScope {
	owner := fmt.Sprintf("request #%d", c.n)
	cb := lazy{owner: c.name(), f: c.CurrentUser}
	if w.srv.opt.Mitigations.ValueContext {
		v := &valueScope{rt: w.srv.rt, owner: owner, s: report.FromContext(r.Context()), sink: w.srv.events}
		v.Set("request", c.n)
		v.Set("path", c.path)
		v.Set("user", cb.f)
		return v
	}
	return newLazyScope(w.srv.rt, owner, map[string]any{"request": fmt.Sprint(c.n), "path": c.path, "user": cb})
}

// Server is a composition: Unicorn-like workers behind one http.Handler,
// with cordon's session middleware in front when a mitigation needs it.
type Server struct {
	opt      Options
	rt       *rt
	pool     chan *Worker
	workers  []*Worker
	sessions sessionLayer
	reports  *report.Reporter // cordon's report, with ValueContext
	dbsc     *dbscLayer       // the app's DBSC code, with DBSC
	events   *eventSink
	handler  http.Handler
	seq      atomic.Int64
	wg       sync.WaitGroup
	cancel   context.CancelFunc
	started  bool
}

type reqKey struct{}

// requestNumber returns the lab's number of the request, or 0.
func requestNumber(ctx context.Context) int64 {
	n, _ := ctx.Value(reqKey{}).(int64)
	return n
}

// NewServer builds a composition. Call Start to run its background
// refreshers and Close to stop them.
func NewServer(opt Options) (*Server, error) {
	if opt.Store == nil {
		return nil, errors.New("lab: no store")
	}
	if opt.Workers <= 0 {
		opt.Workers = 1
	}
	if opt.RefreshEvery <= 0 {
		opt.RefreshEvery = 2 * time.Millisecond
	}
	if opt.FailRate == 0 {
		opt.FailRate = 0.5
	}
	if opt.Float == nil {
		opt.Float = rand.Float64
	}
	if opt.Rand == nil {
		opt.Rand = cryptoRand{}
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opt: opt, pool: make(chan *Worker, opt.Workers)}
	s.rt = &rt{sched: opt.sched, trace: opt.trace, latency: opt.Latency, now: opt.Now, rand: opt.Rand, log: opt.Logger}
	m := opt.Mitigations
	if m.SealedHandles || m.EgressGuard {
		sl, err := newSessionLayer(s.rt, opt.Store, m.EgressGuard)
		if err != nil {
			return nil, err
		}
		s.sessions = sl
	}
	if m.DBSC {
		s.dbsc = newDBSCLayer(s.rt, opt.Store)
	}
	if m.ValueContext {
		s.events = newEventSink()
		s.reports = report.New(report.Options{
			Sinks:         []report.Sink{s.events, report.NewSlogSink(opt.Logger)},
			SessionCookie: CookieName,
			Now:           opt.Now,
			Logger:        opt.Logger,
		})
	}
	for i := 1; i <= opt.Workers; i++ {
		w := &Worker{id: i, srv: s}
		if !m.FreshEnv {
			w.env = newEnv(s.rt, fmt.Sprintf("env(w%d)", i))
		}
		w.reporter = newReporter(s.rt, opt.Logger)
		w.refresh = &Refresher{rt: s.rt, rep: w.reporter, every: opt.RefreshEvery}
		if m.IsolatedBackground {
			if m.ValueContext {
				bg := &valueScope{rt: s.rt, owner: "the background task", s: s.reports.Background("flag-refresh"), sink: s.events}
				bg.Set("worker", i)
				w.refresh.own = func() errScope { return bg }
			} else {
				w.refresh.own = func() errScope {
					return newLazyScope(s.rt, "the background task", map[string]any{"task": "flag-refresh", "worker": fmt.Sprint(i)})
				}
			}
		}
		fail := opt.fail
		if fail == nil {
			fail = func() bool { return opt.FailRate > 0 && opt.Float() < opt.FailRate }
		}
		w.refresh.fail = fail
		s.workers = append(s.workers, w)
		s.pool <- w
	}
	var h http.Handler = http.HandlerFunc(s.dispatch)
	if s.reports != nil {
		h = s.reports.Middleware(h)
	}
	if s.sessions != nil {
		h = s.sessions.Middleware(h)
	}
	if opt.Log != nil {
		h = reqlog.Middleware(opt.Log, reqlog.Options{Now: opt.Now})(h)
	}
	s.handler = h
	return s, nil
}

// Start runs each worker's background refresher until ctx ends or Close.
func (s *Server) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	s.started = true
	for _, w := range s.workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			w.refresh.run(ctx)
		}()
	}
}

// Close stops the background refreshers and waits for them. Under the
// scheduler the driver stops them instead.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// dbscDescribe names a bound cookie value in the trace.
func (s *Server) dbscDescribe(v string) string {
	if s.dbsc == nil {
		return "bound cookie " + boundFP(v)
	}
	return s.dbsc.describeBound(v, "")
}

// Blocked returns how many attempts a sealed handle or the guard refused.
func (s *Server) Blocked() int64 { return s.rt.blocked.Load() }

// Reports returns the error reports the workers delivered.
func (s *Server) Reports() []Report {
	var out []Report
	for _, w := range s.workers {
		out = append(out, w.reporter.Delivered()...)
	}
	return out
}

// ServeHTTP serves one request: it numbers it, hands it to a free worker
// (one request at a time per worker) through the middleware if any.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if s.dbsc != nil && s.dbsc.endpoint(r.URL.Path) {
		// The DBSC endpoints are the app's own, outside the workers; they
		// are not numbered with the post-mortem's requests.
		a := s.rt.sched.Enter("request", "serving "+r.URL.Path)
		defer s.rt.sched.Exit(a)
		s.dbsc.ServeHTTP(rw, r)
		return
	}
	n := s.seq.Add(1)
	a := s.rt.sched.Enter("request", fmt.Sprintf("serving #%d", n))
	defer s.rt.sched.Exit(a)
	rw.Header().Set("X-Lab-Request", fmt.Sprint(n))
	s.handler.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), reqKey{}, n)))
}

func (s *Server) dispatch(rw http.ResponseWriter, r *http.Request) {
	var w *Worker
	select {
	case w = <-s.pool:
	case <-r.Context().Done():
		return
	}
	defer func() { s.pool <- w }()
	w.serve(rw, r, requestNumber(r.Context()))
}

type cryptoRand struct{}

func (cryptoRand) Read(p []byte) (int, error) { return crand.Read(p) }
