package session

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/store"
)

// Middleware loads the request's session from its cookie, gives the handler
// a request-bound handle (From), commits changes and guards the session
// cookie at egress, and seals every handle when the request ends — when the
// handler returns or panics, or when the client goes away.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := m.newState(r)
		st.hdr = w.Header()
		defer m.release(st)
		st.mu.Lock()
		ok := st.load(r)
		st.mu.Unlock()
		if !ok {
			st.end()
			h := w.Header()
			h.Set("Retry-After", "5")
			h.Set("Cache-Control", "no-store")
			http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
			return
		}
		gw := &guardWriter{ResponseWriter: w, st: st}
		// A client that goes away ends the request too: the request's
		// context is checked on every use of a handle (see Session.lock),
		// which seals it then, even while the handler still runs.
		defer func() {
			if p := recover(); p != nil {
				st.end()
				panic(p)
			}
		}()
		m.dbscRoute(next, r).ServeHTTP(gw, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
		gw.finish()
		st.end()
	})
}

// newState returns the session state for a new request.
func (m *Manager) newState(r *http.Request) *reqState {
	var st *reqState
	if m.reuse != nil {
		st = m.reuse.get()
	}
	if st == nil {
		st = &reqState{m: m}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sc = scope.New(m.opt.Now)
	st.rctx = r.Context()
	st.spec = m.specFor(r)
	st.rec = reqlog.FromContext(r.Context())
	st.ua, st.ip = r.UserAgent(), m.clientIP(r)
	st.ended, st.sent, st.storeDown = false, false, false
	st.loaded, st.token, st.values, st.changes = nil, "", nil, nil
	st.cookie, st.arrival, st.loginP, st.loggedIn, st.anonNew = cookieNone, "", "", false, false
	st.hdr, st.dbscOffer = nil, ""
	return st
}

// release returns st for reuse when the manager recycles states. cordon
// never does outside its own tests: they switch recycling on (with sealing
// off) to show that the chaos oracle catches what a framework that reuses
// its request contexts would leak.
func (m *Manager) release(st *reqState) {
	if m.reuse != nil {
		m.reuse.put(st)
	}
}

// checkGone seals the request if its client has gone away (its context is
// done while the handler still runs). Called with st.mu held.
func (st *reqState) checkGone() {
	if !st.ended && st.rctx.Err() != nil {
		st.ended = true
		st.sc.End()
	}
}

// end seals the request's handles.
func (st *reqState) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended {
		st.ended = true
		st.sc.End()
	}
}

// load reads the session named by the request cookie. It reports false when
// the store failed and the manager is configured to answer 503. Called with
// st.mu held.
func (st *reqState) load(r *http.Request) bool {
	m := st.m
	v, ok := requestCookie(r, st.spec.name)
	if !ok {
		return true
	}
	if bad := checkToken(v); bad != "" {
		st.badCookie(r.Context(), bad, "")
		return true
	}
	h := store.HashToken(v)
	s, err := m.st.Find(r.Context(), h)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		reason := BadUnknown
		if errors.Is(err, store.ErrExpired) {
			reason = BadExpired
		} else if errors.Is(err, store.ErrRevoked) {
			reason = BadRevoked
		}
		st.badCookie(r.Context(), reason, h.Fingerprint())
		return true
	default:
		m.log.Error("session: store read failed; failing closed", "fingerprint", h.Fingerprint(), "err", err)
		m.event(r.Context(), Event{Name: EventStoreError, Detail: "find", Fingerprint: h.Fingerprint(), Err: err})
		st.storeDown = true
		return m.opt.OnStoreError != FailUnavailable
	}
	now := m.opt.Now()
	if s.Hash != h || s.Expired(now) {
		// A store that answers with another session, or a dead one, is not
		// trusted: the request is anonymous.
		st.badCookie(r.Context(), BadExpired, h.Fingerprint())
		return true
	}
	if st.unbound(r, s.Data) {
		// A device-bound session without its bound cookie: not served, and
		// its cookie is kept (the browser that holds the key refreshes).
		st.rec.SessionIn(h.Fingerprint(), "")
		st.rec.Event(reqlog.EventDBSCUnbound, "")
		m.event(r.Context(), Event{Name: reqlog.EventDBSCUnbound, Fingerprint: h.Fingerprint(), Principal: s.Principal})
		return true
	}
	st.loaded, st.arrival = s, s.Principal
	st.rec.SessionIn(h.Fingerprint(), s.Principal)
	if now.Sub(s.LastSeen) >= m.opt.TouchInterval || s.LastIP != st.ip {
		idle := m.idleDeadline(s, now)
		if err := m.st.Touch(r.Context(), h, now, idle, st.ip, st.ua); err != nil {
			m.log.Warn("session: touch failed", "fingerprint", h.Fingerprint(), "err", err)
		} else {
			s.LastSeen, s.IdleDeadline, s.LastIP, s.UserAgent = now, idle, st.ip, st.ua
		}
	}
	return true
}

func (st *reqState) badCookie(ctx context.Context, reason, fp string) {
	st.cookie = cookieClear
	st.rec.Event(reqlog.EventBadCookie, reason)
	st.m.event(ctx, Event{Name: reqlog.EventBadCookie, Detail: reason, Fingerprint: fp})
}

// errBlocked is returned by Write on a response the guard failed closed.
var errBlocked = errors.New("session: response blocked by the session cookie guard")

// guardWriter is the one door for the session cookie. Before the response's
// status line goes out — at the first WriteHeader, Write or Flush — it
// commits the session, removes every Set-Cookie of the session cookie's name
// that the handle did not issue, checks that the cookie it is about to send
// is this request's own session and belongs, per the store at that moment,
// to the principal the request arrived with or logged in as, and otherwise
// fails the response closed.
type guardWriter struct {
	http.ResponseWriter
	st       *reqState
	wrote    bool
	blocked  bool
	hijacked bool
}

// Unwrap returns the underlying ResponseWriter (for http.ResponseController).
func (g *guardWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// WriteHeader guards and sends the status. 1xx informational responses
// other than 101 pass with every session cookie stripped from them.
func (g *guardWriter) WriteHeader(code int) {
	if g.wrote || g.hijacked {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		g.strip1xx()
		g.ResponseWriter.WriteHeader(code)
		return
	}
	g.egress(code)
}

func (g *guardWriter) Write(p []byte) (int, error) {
	if !g.wrote {
		g.WriteHeader(http.StatusOK)
	}
	if g.blocked {
		return 0, errBlocked
	}
	return g.ResponseWriter.Write(p)
}

// Flush sends the headers if they have not gone yet, then flushes.
func (g *guardWriter) Flush() { _ = g.FlushError() }

// FlushError is Flush for http.ResponseController.
func (g *guardWriter) FlushError() error {
	if !g.wrote {
		g.WriteHeader(http.StatusOK)
	}
	if g.blocked {
		return errBlocked
	}
	return http.NewResponseController(g.ResponseWriter).Flush()
}

// Hijack commits the session and hands over the connection. Nothing written
// to a hijacked connection passes the guard: the handler owns the raw bytes.
func (g *guardWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	st := g.st
	st.mu.Lock()
	if err := st.commit(); err != nil {
		st.m.log.Error("session: commit before hijack failed", "err", err)
	}
	st.sent = true
	st.mu.Unlock()
	g.hijacked = true
	return http.NewResponseController(g.ResponseWriter).Hijack()
}

// finish runs when the handler returns: it sends the headers if the handler
// wrote nothing, else commits what was changed after the headers went out.
func (g *guardWriter) finish() {
	if g.hijacked {
		return
	}
	if !g.wrote {
		g.WriteHeader(http.StatusOK)
		return
	}
	st := g.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return // the client went away; uncommitted changes are dropped
	}
	if err := st.commit(); err != nil {
		st.m.log.Error("session: commit after response failed; changes lost", "err", err)
		st.m.event(st.rctx, Event{Name: EventStoreError, Detail: "late_commit", Err: err})
	}
}

func (g *guardWriter) strip1xx() {
	h := g.ResponseWriter.Header()
	lines := h["Set-Cookie"]
	kept := lines[:0:0]
	found := false
	for _, l := range lines {
		if _, ours := g.st.m.parseSetCookie(l); ours {
			found = true
			continue
		}
		kept = append(kept, l)
	}
	if found {
		h["Set-Cookie"] = kept
		g.st.mu.Lock()
		g.st.guardEvent("informational_response", "")
		g.st.mu.Unlock()
		if g.st.m.opt.Guard == GuardBlock && !g.st.m.noGuard {
			g.blocked = true // the final response fails closed
		}
	}
}

// egress commits, guards and writes the final status. It is the only place
// a session cookie is added to a response.
func (g *guardWriter) egress(code int) {
	g.wrote = true
	st := g.st
	m := st.m
	st.mu.Lock()
	defer st.mu.Unlock()
	h := g.ResponseWriter.Header()

	st.checkGone()
	if st.ended {
		// The client went away and the handles are sealed; nothing of the
		// session may leave.
		g.dropSessionCookies(h)
		g.ResponseWriter.WriteHeader(code)
		return
	}
	if err := st.commit(); err != nil {
		m.log.Error("session: commit failed; failing the response", "err", err)
		m.event(st.rctx, Event{Name: EventStoreError, Detail: "commit", Err: err})
		st.sent = true
		g.fail(http.StatusServiceUnavailable)
		return
	}
	st.sent = true

	detail, foreignFP := g.scan(h)
	var ownFP, ownUID string
	if st.cookie == cookieSet && detail == "" {
		ownFP = st.loaded.Fingerprint()
		ownUID, detail = st.verifyOwn()
	}
	if detail == "" && g.blocked {
		detail = "informational_response"
	}
	if detail != "" {
		if foreignFP == "" {
			foreignFP = ownFP
		}
		st.guardEvent(detail, foreignFP)
		if m.opt.Guard == GuardBlock && !m.noGuard {
			g.fail(http.StatusInternalServerError)
			return
		}
		// Report mode (or a test with the guard off): what the handler put
		// stays, and our own cookie goes out too.
	}
	switch st.cookie {
	case cookieSet:
		h.Add("Set-Cookie", m.cookieHeader(st.spec, st.token))
		st.rec.SessionOut(ownFP, ownUID)
	case cookieClear:
		h.Add("Set-Cookie", m.cookieHeader(st.spec, ""))
	}
	if st.cookie != cookieNone || detail != "" {
		noStore(h)
	}
	st.rec.View(st.principal())
	g.ResponseWriter.WriteHeader(code)
}

// scan removes from h every Set-Cookie of the session cookie's name. It
// returns a guard_block detail if one of them tried to send a session, with
// that session's fingerprint. Called with st.mu held.
func (g *guardWriter) scan(h http.Header) (detail, fp string) {
	st := g.st
	lines := h["Set-Cookie"]
	if len(lines) == 0 {
		return "", ""
	}
	kept := lines[:0:0]
	var injected []string
	for _, l := range lines {
		v, ours := st.m.parseSetCookie(l)
		if !ours {
			kept = append(kept, l)
			continue
		}
		switch {
		case v == "" || strings.Contains(strings.ToLower(l), "max-age=0") || strings.Contains(strings.ToLower(l), "max-age=-"):
			// A hand-written deletion leaks nothing; the handle's Logout is
			// the way to end a session, so drop it quietly.
		case st.token != "" && tokenEqual(v, st.token):
			// The handler copied our own cookie; the guard adds it once.
		default:
			injected = append(injected, l)
			if fp == "" {
				fp = store.Fingerprint(v)
			}
		}
	}
	if st.m.noGuard || st.m.opt.Guard == GuardReport {
		if len(injected) > 0 {
			return "foreign_cookie", fp
		}
		return "", ""
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
	if len(injected) > 0 {
		return "foreign_cookie", fp
	}
	return "", ""
}

// verifyOwn checks, against the store, that the session the handle is about
// to send belongs to a principal this request may receive. Called with
// st.mu held.
func (st *reqState) verifyOwn() (uid, detail string) {
	ctx, cancel := st.commitContext()
	defer cancel()
	s, err := st.m.st.Find(ctx, st.loaded.Hash)
	if err != nil {
		return "", "unverified"
	}
	uid = s.Principal
	switch {
	case uid == st.arrival && st.arrival != "":
	case st.loggedIn && uid == st.loginP:
	case uid == "" && (st.anonNew || st.arrival == ""):
	default:
		return uid, "principal_mismatch"
	}
	return uid, ""
}

func (st *reqState) guardEvent(detail, fp string) {
	m := st.m
	if m.opt.Guard == GuardReport {
		detail = "report:" + detail
	}
	st.rec.Event(reqlog.EventGuardBlock, detail)
	m.log.Warn("session: guard blocked a session cookie", "detail", detail, "fingerprint", fp)
	m.event(st.rctx, Event{Name: reqlog.EventGuardBlock, Detail: detail, Fingerprint: fp, Principal: st.principal()})
}

// fail replaces the response with a bare error: every header the handler
// set is dropped, so no cookie of any kind leaves. Called with st.mu held.
func (g *guardWriter) fail(code int) {
	g.blocked = true
	h := g.ResponseWriter.Header()
	for k := range h {
		delete(h, k)
	}
	noStore(h)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	g.ResponseWriter.WriteHeader(code)
	_, _ = g.ResponseWriter.Write([]byte(http.StatusText(code) + "\n"))
}

func (g *guardWriter) dropSessionCookies(h http.Header) {
	lines := h["Set-Cookie"]
	kept := lines[:0:0]
	for _, l := range lines {
		if _, ours := g.st.m.parseSetCookie(l); !ours {
			kept = append(kept, l)
		}
	}
	h["Set-Cookie"] = kept
}

func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Cookie") {
				return
			}
		}
	}
	h.Add("Vary", "Cookie")
}
