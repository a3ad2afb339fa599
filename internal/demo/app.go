package demo

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"

	"log/slog"
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

//go:embed templates/*.html
var templateFiles embed.FS

// Options configure an App. Sessions, Users and AdminPassword are required.
type Options struct {
	// Sessions is the session manager; the app wraps its routes in its
	// middleware. Its store must be a store.Revoker and store.Lister (every
	// cordon backend is) for the profile and admin pages.
	Sessions *session.Manager
	// Users holds the accounts.
	Users *Users
	// AdminUser is the admin page's basic-auth user name. Default "admin".
	AdminUser string
	// AdminPassword is the admin page's basic-auth password.
	AdminPassword string
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
	adminU  [32]byte
	adminP  [32]byte
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
	case opt.AdminPassword == "":
		return nil, errors.New("demo: no admin password")
	}
	if opt.AdminUser == "" {
		opt.AdminUser = "admin"
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	tmpl, err := template.New("").ParseFS(templateFiles, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("demo: templates: %w", err)
	}
	a := &App{
		opt:    opt,
		log:    opt.Logger,
		tmpl:   tmpl,
		adminU: sha256.Sum256([]byte(opt.AdminUser)),
		adminP: sha256.Sum256([]byte(opt.AdminPassword)),
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/signup", a.apiSignup)
	mux.HandleFunc("POST /api/login", a.apiLogin)
	mux.HandleFunc("GET /api/whoami", a.apiWhoami)
	mux.HandleFunc("POST /api/logout", a.apiLogout)
	mux.HandleFunc("/api/", apiFallback)

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

// securityHeaders sets headers every response of the app carries: no
// framing, no sniffing, no referrer to other sites, a CSP that allows only
// the page's own inline style, and no caching of anything (every page
// depends on who asks).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

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
	if code, msg := a.signup(r, c); code != 0 {
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
	if code, msg := a.login(r, c); code != 0 {
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
	var body userBody
	if p != "" {
		body.User = &p
	}
	writeJSON(w, http.StatusOK, body)
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
)

// signup creates the account and logs the session in. It returns 0 on
// success, else the status and the message for the client.
func (a *App) signup(r *http.Request, c credentials) (int, string) {
	err := a.opt.Users.Create(r.Context(), c.User, c.Password)
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest, userMessage(err)
	case errors.Is(err, ErrUserExists):
		return http.StatusConflict, msgTaken
	default:
		a.logError(r, "demo: sign-up", "err", err)
		return http.StatusInternalServerError, msgInternal
	}
	code, msg := a.startSession(r, c.User)
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
func (a *App) login(r *http.Request, c credentials) (int, string) {
	err := a.opt.Users.Authenticate(r.Context(), c.User, c.Password)
	switch {
	case err == nil:
	case errors.Is(err, ErrBadCredentials):
		return http.StatusUnauthorized, msgBadCredentials
	default:
		a.logError(r, "demo: log-in", "err", err)
		return http.StatusInternalServerError, msgInternal
	}
	return a.startSession(r, c.User)
}

func (a *App) startSession(r *http.Request, user string) (int, string) {
	if err := session.From(r).Login(user); err != nil {
		a.logError(r, "demo: session login", "err", err)
		return http.StatusServiceUnavailable, msgStoreDown
	}
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
	Error       string
	Note        string
	Action      string
	Name        string
	MinPassword int
	MaxPassword int
	Sessions    []sessionRow
	Truncated   bool
}

type sessionRow struct {
	Fingerprint string
	Principal   string
	Created     string
	LastSeen    string
	LastIP      string
	UserAgent   string
	Current     bool
}

func (a *App) render(w http.ResponseWriter, code int, name string, p page) {
	p.MinPassword, p.MaxPassword = MinPassword, MaxPassword
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

func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	if principal(r) != "" {
		seeOther(w, r, "/profile")
		return
	}
	seeOther(w, r, "/login")
}

func (a *App) signupPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, "credentials", page{Title: "Sign up", Action: "/signup", User: principal(r)})
}

func (a *App) loginPage(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Log in", Action: "/login", User: principal(r)}
	if r.URL.Query().Get("done") == "logout" {
		p.Note = "You are logged out."
	}
	a.render(w, http.StatusOK, "credentials", p)
}

// formCredentials reads a posted form. On failure it has answered.
func (a *App) formCredentials(w http.ResponseWriter, r *http.Request, p page) (credentials, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	if err := r.ParseForm(); err != nil {
		p.Error = "the form could not be read"
		a.render(w, http.StatusBadRequest, "credentials", p)
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
	if code, msg := a.signup(r, c); code != 0 {
		p.Error, p.Name, p.User = msg, c.User, principal(r)
		a.render(w, code, "credentials", p)
		return
	}
	seeOther(w, r, "/profile")
}

func (a *App) loginForm(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Log in", Action: "/login"}
	c, ok := a.formCredentials(w, r, p)
	if !ok {
		return
	}
	if code, msg := a.login(r, c); code != 0 {
		p.Error, p.Name, p.User = msg, c.User, principal(r)
		a.render(w, code, "credentials", p)
		return
	}
	seeOther(w, r, "/profile")
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func rows(list []session.Info, current string) []sessionRow {
	out := make([]sessionRow, len(list))
	for i, s := range list {
		out[i] = sessionRow{
			Fingerprint: s.Fingerprint, Principal: s.Principal,
			Created: fmtTime(s.Created), LastSeen: fmtTime(s.LastSeen),
			LastIP: s.LastIP, UserAgent: s.UserAgent,
			Current: current != "" && s.Fingerprint == current,
		}
	}
	return out
}

func (a *App) profile(w http.ResponseWriter, r *http.Request) {
	s := session.From(r)
	user := principal(r)
	if user == "" {
		seeOther(w, r, "/login")
		return
	}
	fp, _ := s.Fingerprint()
	p := page{Title: "Profile", User: user}
	list, err := a.opt.Sessions.Sessions(r.Context(), user, 0)
	if err != nil {
		a.logError(r, "demo: list sessions", "err", err)
		p.Error = "your sessions could not be listed"
	}
	p.Sessions = rows(list, fp)
	if r.URL.Query().Get("done") == "others" {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		p.Note = fmt.Sprintf("Logged out %d other session(s).", n)
	}
	a.render(w, http.StatusOK, "profile", p)
}

// logoutOthers revokes, by fingerprint, every live session of the user but
// the one making the request. A session the user opens elsewhere while
// this runs is not in the list and stays: revoking the principal instead
// would end the current session too.
func (a *App) logoutOthers(w http.ResponseWriter, r *http.Request) {
	s := session.From(r)
	user := principal(r)
	if user == "" {
		seeOther(w, r, "/login")
		return
	}
	n, err := a.revokeOthers(r.Context(), s, user)
	if err != nil {
		a.logError(r, "demo: log out other sessions", "err", err)
		a.render(w, http.StatusServiceUnavailable, "profile", page{Title: "Profile", User: user, Error: "your other sessions could not be logged out; try again"})
		return
	}
	reqlog.FromContext(r.Context()).Event(reqlog.EventRevoke, "others")
	seeOther(w, r, "/profile?done=others&n="+strconv.Itoa(n))
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
	a.render(w, http.StatusOK, "logout", page{Title: "Log out", User: principal(r)})
}

func (a *App) logoutForm(w http.ResponseWriter, r *http.Request) {
	if err := session.From(r).Logout(); err != nil {
		a.logError(r, "demo: logout", "err", err)
		a.render(w, http.StatusServiceUnavailable, "logout", page{Title: "Log out", User: principal(r), Error: msgStoreDown})
		return
	}
	seeOther(w, r, "/login?done=logout")
}

// ---- admin ----

// adminOnly checks HTTP basic credentials in constant time: both sides are
// hashed first, so neither the length nor the content of the configured
// credentials leaks through timing.
func (a *App) adminOnly(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		uh, ph := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		uok := subtle.ConstantTimeCompare(uh[:], a.adminU[:])
		pok := subtle.ConstantTimeCompare(ph[:], a.adminP[:])
		if !ok || uok&pok != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="cordon demo admin", charset="UTF-8"`)
			http.Error(w, "admin credentials required", http.StatusUnauthorized)
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
	p := page{Title: "Admin: active sessions"}
	list, err := a.opt.Sessions.Sessions(r.Context(), "", AdminListLimit)
	if err != nil {
		a.logError(r, "demo: admin list", "err", err)
		p.Error = "sessions could not be listed"
	}
	p.Sessions = rows(list, "")
	p.Truncated = len(list) == AdminListLimit
	if f, ok := adminNotes[r.URL.Query().Get("done")]; ok {
		p.Note = f
		if r.URL.Query().Get("done") == "session" {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			p.Note = fmt.Sprintf(f, n)
		}
	}
	a.render(w, http.StatusOK, "admin", p)
}

func (a *App) adminError(w http.ResponseWriter, code int, msg string) {
	a.render(w, code, "admin", page{Title: "Admin: active sessions", Error: msg})
}

func (a *App) adminForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	if err := r.ParseForm(); err != nil {
		a.adminError(w, http.StatusBadRequest, "the form could not be read")
		return false
	}
	return true
}

func (a *App) adminRevokeSession(w http.ResponseWriter, r *http.Request) {
	if !a.adminForm(w, r) {
		return
	}
	fp := r.PostForm.Get("fp")
	if !store.ValidFingerprint(fp) {
		a.adminError(w, http.StatusBadRequest, "not a session fingerprint (32 lowercase hex digits)")
		return
	}
	n, err := a.opt.Sessions.RevokeFingerprints(r.Context(), fp)
	if err != nil {
		a.logError(r, "demo: admin revoke session", "fingerprint", fp, "err", err)
		a.adminError(w, http.StatusServiceUnavailable, "the session could not be revoked")
		return
	}
	a.log.Info("demo: admin revoked a session", "fingerprint", fp, "live", n)
	reqlog.FromContext(r.Context()).Event(reqlog.EventRevoke, "session")
	seeOther(w, r, "/admin?done=session&n="+strconv.Itoa(n))
}

func (a *App) adminRevokeUser(w http.ResponseWriter, r *http.Request) {
	if !a.adminForm(w, r) {
		return
	}
	user := r.PostForm.Get("user")
	if err := ValidateName(user); err != nil {
		a.adminError(w, http.StatusBadRequest, userMessage(err))
		return
	}
	if err := a.opt.Sessions.RevokePrincipal(r.Context(), user); err != nil {
		a.logError(r, "demo: admin revoke user", "user", user, "err", err)
		a.adminError(w, http.StatusServiceUnavailable, "the user's sessions could not be revoked")
		return
	}
	a.log.Info("demo: admin revoked a user's sessions", "user", user)
	reqlog.FromContext(r.Context()).Event(reqlog.EventRevoke, "user")
	seeOther(w, r, "/admin?done=user")
}

func (a *App) adminRevokeAll(w http.ResponseWriter, r *http.Request) {
	if err := a.opt.Sessions.RevokeAll(r.Context()); err != nil {
		a.logError(r, "demo: admin revoke all", "err", err)
		a.adminError(w, http.StatusServiceUnavailable, "the sessions could not be revoked")
		return
	}
	a.log.Info("demo: admin revoked every session")
	reqlog.FromContext(r.Context()).Event(reqlog.EventRevoke, "all")
	seeOther(w, r, "/admin?done=all")
}

// compile-time check that the app is a handler.
var _ http.Handler = (*App)(nil)
