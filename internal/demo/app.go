package demo

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/cordon-sec/cordon/report"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
)

// MaxBody is the largest request body the app reads.
const MaxBody = 8 << 10

// AdminListLimit caps the sessions the admin page lists.
const AdminListLimit = 500

// seenLedgerMax bounds the sessions whose last use the app remembers to
// explain why they ended (about 100 bytes each).
const seenLedgerMax = 50_000

//go:embed templates/*.html
var templateFiles embed.FS

// styleCSS is the pages' one stylesheet, served at /static/style.css: no
// framework, nothing fetched from elsewhere, so the pages work offline.
//
//go:embed static/style.css
var styleCSS []byte

// Options configure an App. Sessions and Users are required.
type Options struct {
	// Sessions is the session manager; the app wraps its routes in its
	// middleware. Its store must be a store.Revoker and store.Lister (every
	// cordon backend is) for the profile and admin pages.
	Sessions *session.Manager
	// Users holds the accounts.
	Users *Users
	// Admin names the account that may open /admin. Empty: the account
	// signed up first.
	Admin string
	// AccountThrottle and AddressThrottle delay failed log-ins per account
	// name and per client address (an IPv4 address or an IPv6 /64, as
	// LogOptions resolves it). Zero fields take NewThrottle's defaults,
	// except AddressThrottle.Free, which defaults to 20 (an address may be
	// shared by many people).
	AccountThrottle, AddressThrottle ThrottleOptions
	// IdleTimeout and Lifetime are the session manager's (default
	// session.DefaultIdleTimeout and DefaultLifetime): with them the pages
	// tell a session that expired from one that was revoked.
	IdleTimeout, Lifetime time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// DeviceBound, if set, tells the session lists which sessions are bound
	// to a device key, to mark them.
	DeviceBound func(session.Info) bool
	// Log, if set, receives one request-log line per request; LogOptions
	// configure the middleware (trusted proxies, host name, clock).
	Log        *reqlog.Writer
	LogOptions reqlog.Options
	// Report, if set, receives the app's errors through a request scope
	// (its middleware runs outside the session middleware, so the session
	// manager's events can be reported through it too).
	Report *report.Reporter
	// Logger receives errors. Default slog.Default().
	Logger *slog.Logger
}

// App is the reference application; it is an http.Handler.
type App struct {
	opt     Options
	log     *slog.Logger
	tmpl    *template.Template
	account *Throttle
	address *Throttle
	seen    *seenLedger
	bufs    bodyBufs // for the JSON answers of whoami
	handler http.Handler
}

// New returns the app. It returns an error if a required option is
// missing.
func New(opt Options) (*App, error) {
	switch {
	case opt.Sessions == nil:
		return nil, errors.New("demo: no session manager")
	case opt.Users == nil:
		return nil, errors.New("demo: no user store")
	}
	if opt.Admin != "" {
		if err := ValidateName(opt.Admin); err != nil {
			return nil, fmt.Errorf("demo: admin account: %s", userMessage(err))
		}
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = session.DefaultIdleTimeout
	}
	if opt.Lifetime <= 0 {
		opt.Lifetime = session.DefaultLifetime
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.AddressThrottle.Free == 0 {
		opt.AddressThrottle.Free = 20
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	tmpl, err := template.New("").ParseFS(templateFiles, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("demo: templates: %w", err)
	}
	a := &App{
		opt:     opt,
		log:     opt.Logger,
		tmpl:    tmpl,
		account: NewThrottle(opt.AccountThrottle),
		address: NewThrottle(opt.AddressThrottle),
		seen:    newSeenLedger(opt.IdleTimeout, opt.Lifetime, session.DefaultTouchInterval, seenLedgerMax),
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/signup", a.apiSignup)
	mux.HandleFunc("POST /api/login", a.apiLogin)
	mux.HandleFunc("GET /api/whoami", a.apiWhoami)
	mux.HandleFunc("POST /api/logout", a.apiLogout)
	mux.HandleFunc("/api/", apiFallback)

	mux.HandleFunc("GET /static/style.css", a.stylesheet)
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /signup", a.signupPage)
	mux.HandleFunc("POST /signup", a.signupForm)
	mux.HandleFunc("GET /login", a.loginPage)
	mux.HandleFunc("POST /login", a.loginForm)
	mux.HandleFunc("GET /profile", a.profile)
	mux.HandleFunc("POST /profile/logout-others", a.logoutOthers)
	mux.HandleFunc("GET /logout", a.logoutPage)
	mux.HandleFunc("POST /logout", a.logoutForm)

	mux.Handle("GET /admin", a.adminOnly(a.adminPage))
	mux.Handle("POST /admin/revoke-session", a.adminOnly(a.adminRevokeSession))
	mux.Handle("POST /admin/revoke-user", a.adminOnly(a.adminRevokeUser))
	mux.Handle("POST /admin/revoke-all", a.adminOnly(a.adminRevokeAll))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(a.crossOrigin))
	var h http.Handler = securityHeaders(mux)
	h = cop.Handler(h)
	h = a.withSeen(h)
	h = opt.Sessions.Middleware(h)
	if opt.Report != nil {
		h = opt.Report.Middleware(h)
	}
	if opt.Log != nil {
		h = reqlog.Middleware(opt.Log, opt.LogOptions)(h)
	}
	a.handler = h
	return a, nil
}

// ServeHTTP serves the app.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// securityHeaderKeys and securityHeaderValues are the headers every
// response of the app carries: no framing, no sniffing, no referrer to
// other sites, a CSP that allows only the app's own stylesheet and no
// script, and no caching (every page depends on who asks; the stylesheet
// overrides this). The keys are in canonical form (TestSecurityHeaderKeys),
// so that they can go into the header map without Header.Set's
// canonicalization.
var (
	securityHeaderKeys = [...]string{
		"Content-Security-Policy",
		"X-Content-Type-Options",
		"X-Frame-Options",
		"Referrer-Policy",
		"Cache-Control",
	}
	securityHeaderValues = [len(securityHeaderKeys)]string{
		"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"nosniff",
		"DENY",
		"same-origin",
		"no-store",
	}
)

// securityHeaders sets the security headers (replacing any value already
// set, as Header.Set would). Each response gets its own copy of the values
// in one allocation, each header a slice of it capped at its one value: a
// handler that appends to a header, or writes into its values, changes
// that response's header and no other.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		vals := new([len(securityHeaderValues)]string)
		*vals = securityHeaderValues
		for i, k := range securityHeaderKeys {
			h[k] = vals[i : i+1 : i+1]
		}
		next.ServeHTTP(w, r)
	})
}

func (a *App) crossOrigin(w http.ResponseWriter, r *http.Request) {
	const msg = "cross-origin request refused"
	if isAPI(r) {
		writeJSON(w, http.StatusForbidden, errorBody(msg))
		return
	}
	http.Error(w, msg, http.StatusForbidden)
}

// apiMethods is the method each API endpoint takes.
var apiMethods = map[string]string{
	"/api/signup": http.MethodPost,
	"/api/login":  http.MethodPost,
	"/api/whoami": http.MethodGet,
	"/api/logout": http.MethodPost,
}

// apiFallback answers, in JSON, requests no API route matched: 405 for a
// known endpoint asked with the wrong method, else 404.
func apiFallback(w http.ResponseWriter, r *http.Request) {
	if m, ok := apiMethods[r.URL.Path]; ok {
		allow := m
		if m == http.MethodGet {
			allow += ", HEAD"
		}
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody(r.URL.Path+" takes "+m))
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody("no such API endpoint"))
}

func isAPI(r *http.Request) bool {
	return len(r.URL.Path) >= 5 && r.URL.Path[:5] == "/api/"
}

// logError logs a failure and, with a Reporter, reports it through the
// request's scope (a snapshot of values: method, path, session
// fingerprint; never a cookie or a password).
func (a *App) logError(r *http.Request, msg string, kv ...any) {
	a.log.Error(msg, kv...)
	if a.opt.Report == nil {
		return
	}
	var err error
	var rest []any
	for i := 0; i+1 < len(kv); i += 2 {
		if e, ok := kv[i+1].(error); ok && kv[i] == "err" {
			err = e
			continue
		}
		rest = append(rest, kv[i], kv[i+1])
	}
	if err == nil {
		err = errors.New(msg)
	} else {
		err = fmt.Errorf("%s: %w", msg, err)
	}
	a.opt.Report.Capture(r.Context(), err, rest...)
}

// ---- JSON API ----

type credentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

type userBody struct {
	User *string `json:"user"`
}

type errBody struct {
	Error string `json:"error"`
}

func errorBody(msg string) errBody { return errBody{Error: msg} }

// readCredentials decodes the API's JSON body. On failure it has answered
// and returns false.
func readCredentials(w http.ResponseWriter, r *http.Request) (credentials, bool) {
	var c credentials
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, errorBody("the body must be application/json"))
			return c, false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody("the body is too large"))
			return c, false
		}
		writeJSON(w, http.StatusBadRequest, errorBody(`the body must be {"user":"...","password":"..."}`))
		return c, false
	}
	if dec.More() {
		writeJSON(w, http.StatusBadRequest, errorBody("the body must hold one JSON object"))
		return c, false
	}
	return c, true
}

func (a *App) apiSignup(w http.ResponseWriter, r *http.Request) {
	c, ok := readCredentials(w, r)
	if !ok {
		return
	}
	if code, msg := a.signup(w, r, c); code != 0 {
		writeJSON(w, code, errorBody(msg))
		return
	}
	writeJSON(w, http.StatusCreated, userBody{User: &c.User})
}

func (a *App) apiLogin(w http.ResponseWriter, r *http.Request) {
	c, ok := readCredentials(w, r)
	if !ok {
		return
	}
	if code, msg := a.login(w, r, c); code != 0 {
		writeJSON(w, code, errorBody(msg))
		return
	}
	writeJSON(w, http.StatusOK, userBody{User: &c.User})
}

func (a *App) apiWhoami(w http.ResponseWriter, r *http.Request) {
	p, err := session.From(r).Principal()
	if err != nil {
		a.logError(r, "demo: whoami", "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody("internal error"))
		return
	}
	writeUser(w, &a.bufs, p)
}

func (a *App) apiLogout(w http.ResponseWriter, r *http.Request) {
	if err := session.From(r).Logout(); err != nil {
		a.logError(r, "demo: logout", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody("session store unavailable"))
		return
	}
	writeJSON(w, http.StatusOK, userBody{})
}

// Messages the client sees.
const (
	msgBadCredentials = "invalid user name or password"
	msgTaken          = "that user name is taken"
	msgStoreDown      = "session store unavailable; try again"
	msgInternal       = "internal error"
	msgBusy           = "the server is checking too many passwords; try again in a moment"
)

// tooMany answers a throttled log-in: 429 with Retry-After in whole seconds.
func tooMany(w http.ResponseWriter, wait time.Duration) (int, string) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return http.StatusTooManyRequests, fmt.Sprintf("too many failed log-ins for this account or from this address; try again in %d s", secs)
}

func busy(w http.ResponseWriter) (int, string) {
	w.Header().Set("Retry-After", "1")
	return http.StatusServiceUnavailable, msgBusy
}

// signup creates the account and logs the session in. It returns 0 on
// success, else the status and the message for the client.
func (a *App) signup(w http.ResponseWriter, r *http.Request, c credentials) (int, string) {
	err := a.opt.Users.Create(r.Context(), c.User, c.Password)
	switch {
	case err == nil:
	case errors.Is(err, ErrBusy):
		return busy(w)
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, userMessage(err)
	case errors.Is(err, ErrUserExists):
		return http.StatusConflict, msgTaken
	default:
		a.logError(r, "demo: sign-up", "err", err)
		return http.StatusInternalServerError, msgInternal
	}
	code, msg := a.startSession(w, r, c.User)
	if code != 0 {
		// No session, no account: the client is told to try again, and a
		// second sign-up must not find the name taken.
		if err := a.opt.Users.Delete(context.WithoutCancel(r.Context()), c.User); err != nil {
			a.logError(r, "demo: undo sign-up", "err", err)
		}
	}
	return code, msg
}

// login checks the credentials and logs the session in. A wrong password,
// an unknown user and a malformed name all give the same answer.
//
// Failed log-ins are throttled per account name and per client address
// before any password is hashed: past the free failures, a key must wait a
// delay that doubles with every failure, and an attempt inside it gets 429
// with Retry-After — the right password included, so that waiting is the
// only way on. A known and an unknown name are throttled alike.
func (a *App) login(w http.ResponseWriter, r *http.Request, c credentials) (int, string) {
	addr := addressKey(a.opt.LogOptions.ClientIPAddr(r), r.RemoteAddr)
	acct := accountKey(c.User)
	if wait := a.address.Begin(addr); wait > 0 {
		return tooMany(w, wait)
	}
	if wait := a.account.Begin(acct); wait > 0 {
		a.address.Succeed(addr) // this attempt checked nothing
		return tooMany(w, wait)
	}
	err := a.opt.Users.Authenticate(r.Context(), c.User, c.Password)
	switch {
	case err == nil:
		a.account.Reset(acct)
		a.address.Succeed(addr)
	case errors.Is(err, ErrBadCredentials):
		return http.StatusUnauthorized, msgBadCredentials
	case errors.Is(err, ErrBusy):
		a.account.Succeed(acct)
		a.address.Succeed(addr)
		return busy(w)
	default:
		a.account.Succeed(acct)
		a.address.Succeed(addr)
		a.logError(r, "demo: log-in", "err", err)
		return http.StatusInternalServerError, msgInternal
	}
	return a.startSession(w, r, c.User)
}

func (a *App) startSession(w http.ResponseWriter, r *http.Request, user string) (int, string) {
	if err := session.From(r).Login(user); err != nil {
		a.logError(r, "demo: session login", "err", err)
		return http.StatusServiceUnavailable, msgStoreDown
	}
	clearNotice(w, r)
	return 0, ""
}

// userMessage turns an ErrInvalid error into the message for the client:
// the rule that was broken, without the package prefix.
func userMessage(err error) string {
	msg := err.Error()
	if p := ErrInvalid.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

// ---- HTML pages ----

type page struct {
	Title       string
	User        string
	Admin       bool // the signed-in user is the administrator
	AdminTable  bool // the session table has the admin's columns
	Error       string
	Note        string
	Ended       string // why the browser's session ended, if it did
	Action      string
	Name        string
	MinPassword int
	MaxPassword int
	Sessions    []sessionRow
	Truncated   bool
	Confirm     *confirmation
}

// confirmation is the question a destructive admin action asks first.
type confirmation struct {
	Action   string // the form's action
	User     string // revoke-user: whose sessions
	Question string
	Detail   string
	Button   string
}

type sessionRow struct {
	Fingerprint string
	Short       string // the fingerprint's first 8 digits
	Principal   string
	Created     string
	LastSeen    string
	LastIP      string
	UserAgent   string
	// Current: this is the session of the browser showing the page.
	Current bool
	// DeviceBound: the session is bound to a device key (Options.DeviceBound).
	DeviceBound bool
}

func (a *App) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.MinPassword, p.MaxPassword = MinPassword, MaxPassword
	if p.User != "" && !p.Admin {
		p.Admin, _ = a.isAdmin(r.Context(), p.User)
	}
	if p.User == "" && p.Ended == "" {
		p.Ended = a.takeNotice(w, r)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := a.tmpl.ExecuteTemplate(w, name, p); err != nil {
		a.log.Error("demo: render", "page", name, "err", err) // the client went away, mostly
	}
}

// principal returns the request's principal; a handle error (which cannot
// happen inside the middleware) reads as anonymous.
func principal(r *http.Request) string {
	p, _ := session.From(r).Principal()
	return p
}

// seeOther redirects. If the request's session cookie stopped working on
// this very request (and nobody is signed in now), the reason goes along
// in the notice cookie so that the next page can say it.
func (a *App) seeOther(w http.ResponseWriter, r *http.Request, to string) {
	if k := endedHere(r); k != "" && principal(r) == "" {
		setNotice(w, r, k)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	if principal(r) != "" {
		a.seeOther(w, r, "/profile")
		return
	}
	a.seeOther(w, r, "/login")
}

func (a *App) signupPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "credentials", page{Title: "Sign up", Action: "/signup", User: principal(r)})
}

func (a *App) loginPage(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Log in", Action: "/login", User: principal(r)}
	if r.URL.Query().Get("done") == "logout" && p.User == "" {
		p.Note = "You are logged out."
	}
	a.render(w, r, http.StatusOK, "credentials", p)
}

// formCredentials reads a posted form. On failure it has answered.
func (a *App) formCredentials(w http.ResponseWriter, r *http.Request, p page) (credentials, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	if err := r.ParseForm(); err != nil {
		p.Error = "the form could not be read"
		a.render(w, r, http.StatusBadRequest, "credentials", p)
		return credentials{}, false
	}
	return credentials{User: r.PostForm.Get("user"), Password: r.PostForm.Get("password")}, true
}

func (a *App) signupForm(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Sign up", Action: "/signup"}
	c, ok := a.formCredentials(w, r, p)
	if !ok {
		return
	}
	if code, msg := a.signup(w, r, c); code != 0 {
		p.Error, p.Name, p.User = msg, c.User, principal(r)
		a.render(w, r, code, "credentials", p)
		return
	}
	a.seeOther(w, r, "/profile")
}

func (a *App) loginForm(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Log in", Action: "/login"}
	c, ok := a.formCredentials(w, r, p)
	if !ok {
		return
	}
	if code, msg := a.login(w, r, c); code != 0 {
		p.Error, p.Name, p.User = msg, c.User, principal(r)
		a.render(w, r, code, "credentials", p)
		return
	}
	a.seeOther(w, r, "/profile")
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func (a *App) rows(list []session.Info, current string) []sessionRow {
	out := make([]sessionRow, len(list))
	for i, s := range list {
		out[i] = sessionRow{
			Fingerprint: s.Fingerprint, Short: s.Fingerprint[:min(8, len(s.Fingerprint))], Principal: s.Principal,
			Created: fmtTime(s.Created), LastSeen: fmtTime(s.LastSeen),
			LastIP: s.LastIP, UserAgent: s.UserAgent,
			Current: current != "" && s.Fingerprint == current,
		}
		if a.opt.DeviceBound != nil {
			out[i].DeviceBound = a.opt.DeviceBound(s)
		}
	}
	return out
}

// currentFingerprint is the fingerprint of the session the request
// carries ("" for none).
func currentFingerprint(r *http.Request) string {
	fp, _ := session.From(r).Fingerprint()
	return fp
}

func (a *App) profile(w http.ResponseWriter, r *http.Request) {
	user := principal(r)
	if user == "" {
		a.seeOther(w, r, "/login")
		return
	}
	p := page{Title: "Profile", User: user}
	list, err := a.opt.Sessions.Sessions(r.Context(), user, 0)
	if err != nil {
		a.logError(r, "demo: list sessions", "err", err)
		p.Error = "your sessions could not be listed"
	}
	p.Sessions = a.rows(list, currentFingerprint(r))
	if r.URL.Query().Get("done") == "others" {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		p.Note = fmt.Sprintf("Logged out %d other session(s).", n)
	}
	a.render(w, r, http.StatusOK, "profile", p)
}

// logoutOthers revokes, by fingerprint, every live session of the user but
// the one making the request. A session the user opens elsewhere while
// this runs is not in the list and stays: revoking the principal instead
// would end the current session too.
func (a *App) logoutOthers(w http.ResponseWriter, r *http.Request) {
	s := session.From(r)
	user := principal(r)
	if user == "" {
		a.seeOther(w, r, "/login")
		return
	}
	n, err := a.revokeOthers(r.Context(), s, user)
	if err != nil {
		a.logError(r, "demo: log out other sessions", "err", err)
		a.render(w, r, http.StatusServiceUnavailable, "profile", page{Title: "Profile", User: user, Error: "your other sessions could not be logged out; try again"})
		return
	}
	reqlog.FromContext(r.Context()).Event(reqlog.EventRevoke, "others")
	a.seeOther(w, r, "/profile?done=others&n="+strconv.Itoa(n))
}

func (a *App) revokeOthers(ctx context.Context, s *session.Session, user string) (int, error) {
	current, err := s.Fingerprint()
	if err != nil {
		return 0, err
	}
	list, err := a.opt.Sessions.Sessions(ctx, user, 0)
	if err != nil {
		return 0, err
	}
	var fps []string
	for _, in := range list {
		if in.Fingerprint != current && in.Principal == user {
			fps = append(fps, in.Fingerprint)
		}
	}
	if len(fps) == 0 {
		return 0, nil
	}
	return a.opt.Sessions.RevokeFingerprints(ctx, fps...)
}

func (a *App) logoutPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "logout", page{Title: "Log out", User: principal(r)})
}

func (a *App) logoutForm(w http.ResponseWriter, r *http.Request) {
	if err := session.From(r).Logout(); err != nil {
		a.logError(r, "demo: logout", "err", err)
		a.render(w, r, http.StatusServiceUnavailable, "logout", page{Title: "Log out", User: principal(r), Error: msgStoreDown})
		return
	}
	a.seeOther(w, r, "/login?done=logout")
}

func (a *App) stylesheet(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(styleCSS)
}

// ---- admin ----

// isAdmin reports whether user is the administrator: the account named by
// Options.Admin, or else the account signed up first.
func (a *App) isAdmin(ctx context.Context, user string) (bool, error) {
	if user == "" {
		return false, nil
	}
	if a.opt.Admin != "" {
		return user == a.opt.Admin, nil
	}
	first, err := a.opt.Users.First(ctx)
	if err != nil {
		return false, err
	}
	return first == user, nil
}

// adminOnly lets through requests whose session belongs to the
// administrator. Anyone else signed in gets 403; a browser signed in as
// nobody is sent to the log-in page with a word on why.
func (a *App) adminOnly(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := principal(r)
		if user == "" {
			if endedHere(r) == "" {
				setNotice(w, r, noticeAdmin)
			}
			a.seeOther(w, r, "/login")
			return
		}
		ok, err := a.isAdmin(r.Context(), user)
		if err != nil {
			a.logError(r, "demo: admin check", "err", err)
			a.render(w, r, http.StatusServiceUnavailable, "forbidden", page{Title: "Admin", User: user, Error: "the user database could not be read; try again"})
			return
		}
		if !ok {
			a.render(w, r, http.StatusForbidden, "forbidden", page{Title: "Admin", User: user, Error: "Only the administrator's account can open the admin page."})
			return
		}
		next(w, r)
	})
}

var adminNotes = map[string]string{
	"session": "Revoked %d session(s).",
	"user":    "Revoked every session of the user.",
	"all":     "Revoked every session.",
}

func (a *App) adminPage(w http.ResponseWriter, r *http.Request) {
	p := a.adminBase(r)
	list, err := a.opt.Sessions.Sessions(r.Context(), "", AdminListLimit)
	if err != nil {
		a.logError(r, "demo: admin list", "err", err)
		p.Error = "sessions could not be listed"
	}
	p.Sessions = a.rows(list, currentFingerprint(r))
	p.Truncated = len(list) == AdminListLimit
	if f, ok := adminNotes[r.URL.Query().Get("done")]; ok {
		p.Note = f
		if r.URL.Query().Get("done") == "session" {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			p.Note = fmt.Sprintf(f, n)
		}
	}
	a.render(w, r, http.StatusOK, "admin", p)
}

func (a *App) adminBase(r *http.Request) page {
	return page{Title: "Admin: active sessions", User: principal(r), Admin: true, AdminTable: true}
}

func (a *App) adminError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	p := a.adminBase(r)
	p.Error = msg
	a.render(w, r, code, "admin", p)
}

func (a *App) adminForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	if err := r.ParseForm(); err != nil {
		a.adminError(w, r, http.StatusBadRequest, "the form could not be read")
		return false
	}
	return true
}

// confirmed reports whether the admin's form carries the confirmation
// step's answer; if not, it has shown the question.
func (a *App) confirmed(w http.ResponseWriter, r *http.Request, c confirmation) bool {
	if r.PostForm.Get("confirm") == "yes" {
		return true
	}
	p := a.adminBase(r)
	p.Title = "Confirm: " + c.Button
	p.Confirm = &c
	a.render(w, r, http.StatusOK, "confirm", p)
	return false
}

func (a *App) adminRevokeSession(w http.ResponseWriter, r *http.Request) {
	if !a.adminForm(w, r) {
		return
	}
	fp := r.PostForm.Get("fp")
	if !store.ValidFingerprint(fp) {
		a.adminError(w, r, http.StatusBadRequest, "not a session fingerprint (32 lowercase hex digits)")
		return
	}
	n, err := a.opt.Sessions.RevokeFingerprints(r.Context(), fp)
	if err != nil {
		a.logError(r, "demo: admin revoke session", "fingerprint", fp, "err", err)
		a.adminError(w, r, http.StatusServiceUnavailable, "the session could not be revoked")
		return
	}
	a.log.Info("demo: admin revoked a session", "fingerprint", fp, "live", n)
	reqlog.FromContext(r.Context()).Event(reqlog.EventRevoke, "session")
	a.seeOther(w, r, "/admin?done=session&n="+strconv.Itoa(n))
}

func (a *App) adminRevokeUser(w http.ResponseWriter, r *http.Request) {
	if !a.adminForm(w, r) {
		return
	}
	user := r.PostForm.Get("user")
	if err := ValidateName(user); err != nil {
		a.adminError(w, r, http.StatusBadRequest, userMessage(err))
		return
	}
	c := confirmation{Action: "/admin/revoke-user", User: user, Button: "Revoke every session of " + user,
		Question: "Revoke every session of " + user + "?"}
	if list, err := a.opt.Sessions.Sessions(r.Context(), user, 0); err == nil {
		c.Detail = fmt.Sprintf("%s has %d live session(s); every one of them will be signed out at once.", user, len(list))
	}
	if user == principal(r) {
		c.Detail += " That includes this browser: you will have to log in again."
	}
	if !a.confirmed(w, r, c) {
		return
	}
	if err := a.opt.Sessions.RevokePrincipal(r.Context(), user); err != nil {
		a.logError(r, "demo: admin revoke user", "user", user, "err", err)
		a.adminError(w, r, http.StatusServiceUnavailable, "the user's sessions could not be revoked")
		return
	}
	a.log.Info("demo: admin revoked a user's sessions", "user", user)
	reqlog.FromContext(r.Context()).Event(reqlog.EventRevoke, "user")
	a.seeOther(w, r, "/admin?done=user")
}

func (a *App) adminRevokeAll(w http.ResponseWriter, r *http.Request) {
	if !a.adminForm(w, r) {
		return
	}
	c := confirmation{Action: "/admin/revoke-all", Button: "Revoke every session",
		Question: "Revoke every session of every user?",
		Detail:   "Everyone is signed out at once, this browser included: you will have to log in again."}
	if list, err := a.opt.Sessions.Sessions(r.Context(), "", AdminListLimit); err == nil {
		n := strconv.Itoa(len(list))
		if len(list) == AdminListLimit {
			n = "more than " + strconv.Itoa(AdminListLimit-1)
		}
		c.Detail = "All " + n + " live session(s) are signed out at once, this browser's included: you will have to log in again."
	}
	if !a.confirmed(w, r, c) {
		return
	}
	if err := a.opt.Sessions.RevokeAll(r.Context()); err != nil {
		a.logError(r, "demo: admin revoke all", "err", err)
		a.adminError(w, r, http.StatusServiceUnavailable, "the sessions could not be revoked")
		return
	}
	a.log.Info("demo: admin revoked every session")
	reqlog.FromContext(r.Context()).Event(reqlog.EventRevoke, "all")
	a.seeOther(w, r, "/admin?done=all")
}

// compile-time check that the app is a handler.
var _ http.Handler = (*App)(nil)
