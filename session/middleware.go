package session

import (
	"context"
	"errors"
	"net/http"

	"github.com/cordon-sec/cordon/internal/ctxvalue"
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
		st, g, pw := m.newState(r)
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
		var gw door
		switch {
		case m.noGuard:
			if pw == nil {
				pw = new(plainWriter)
			}
			pw.ResponseWriter, pw.st = w, st
			gw = pw
		case m.off&offUnwrap != 0:
			gw = unwrapGuard{newGuard(g, w, st)}
		default:
			gw = newGuard(g, w, st)
		}
		// A client that goes away ends the request too: the request's
		// context is checked on every use of a handle (see Session.lock),
		// which seals it then, even while the handler still runs.
		defer func() {
			if p := recover(); p != nil {
				gw.close()
				st.end()
				panic(p)
			}
		}()
		m.dbscRoute(next, r).ServeHTTP(gw, r.WithContext(st.context()))
		gw.finish() // closes the writer too
		st.end()
	})
}

// FromContextCaller is FromContext for framework adapters, whose own From
// wraps it: the handle records as its origin the line skip frames above
// the line that calls FromContextCaller (0: that line itself; an adapter's
// From passes 1, which names the application's line that called it).
func FromContextCaller(ctx context.Context, skip int) *Session {
	if skip < 0 {
		skip = 0
	}
	return fromContext(ctx, skip+1)
}

// requestMem is what one request needs, in one allocation: its state, its
// scope, its writer, the context that carries the state and the first
// handles From returns (inlineHandles: one for a middleware such as the
// demo's, one for the handler). plainMem is the same with the guard switched off
// (tests and benchmarks only). Each is fresh for its request: nothing in
// it is ever used for another.
type requestMem struct {
	st  reqState
	sc  scope.Scope
	g   guardWriter
	ctx stateCtx
	h   [inlineHandles]Session
}

type plainMem struct {
	st  reqState
	sc  scope.Scope
	p   plainWriter
	ctx stateCtx
	h   [inlineHandles]Session
}

// stateCtx is the request's context with its session state attached, as
// context.WithValue would attach it.
type stateCtx = ctxvalue.Context[stateKey, *reqState]

// context returns the request's context carrying st.
func (st *reqState) context() context.Context {
	c := st.ctx
	if c == nil {
		c = new(stateCtx)
	}
	c.Context, c.V = st.rctx, st
	return c
}

// inlineHandles is how many handles come with a request's memory.
const inlineHandles = 2

// handle returns memory for a new handle on st: the request's first
// handles come with the request's memory, later ones are allocated.
func (st *reqState) handle() *Session {
	if st.first != nil && st.taken.Load() < inlineHandles {
		if i := st.taken.Add(1) - 1; i < inlineHandles {
			return &st.first[i]
		}
	}
	return new(Session)
}

// newState returns the session state for a new request, and the writer's
// memory when it comes with the state.
func (m *Manager) newState(r *http.Request) (*reqState, *guardWriter, *plainWriter) {
	var st *reqState
	var g *guardWriter
	var p *plainWriter
	if m.reuse != nil {
		st = m.reuse.get()
	}
	var sc *scope.Scope
	switch {
	case st == nil && m.reuse == nil && m.noGuard:
		mem := &plainMem{}
		st, sc, p = &mem.st, &mem.sc, &mem.p
		st.m, st.ctx, st.first = m, &mem.ctx, &mem.h
		scope.Init(sc, m.opt.Now)
	case st == nil && m.reuse == nil:
		mem := &requestMem{}
		st, sc, g = &mem.st, &mem.sc, &mem.g
		st.m, st.ctx, st.first = m, &mem.ctx, &mem.h
		scope.Init(sc, m.opt.Now)
	default:
		if st == nil {
			st = &reqState{m: m}
		}
		sc = scope.New(m.opt.Now)   // a recycled state gets a fresh scope
		st.ctx, st.first = nil, nil // and fresh handles and context
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sc = sc
	st.rctx = r.Context()
	st.spec = m.specFor(r)
	st.rec = reqlog.FromContext(r.Context())
	st.ua, st.ip = r.UserAgent(), m.clientIP(r)
	st.ended, st.sent, st.storeDown = false, false, false
	st.loaded, st.token, st.values, st.changes, st.rawReads = nil, "", nil, nil, 0
	st.fpOf, st.fp, st.badReason, st.badFP = nil, "", "", ""
	st.cookie, st.arrival, st.loginP, st.loggedIn, st.anonNew = cookieNone, "", "", false, false
	st.hdr, st.dbscOffer = nil, ""
	return st, g, p
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
//
// A request may carry the cookie's name more than once (in one Cookie
// header or several): a browser sends every cookie whose domain and path
// match, and a sibling subdomain can set one (cookie tossing). Unless every
// one of them is a valid session of the same signed-in principal, cordon
// cannot tell which is the user's — two principals, or the user's own
// expired session beside a valid tossed one: the request is anonymous, the
// cookie cleared, and bad_cookie "ambiguous" recorded.
func (st *reqState) load(r *http.Request) bool {
	var buf [maxCandidates]string
	vals := requestCookies(r, st.spec.name, buf[:0])
	if len(vals) == 0 {
		return true
	}
	if len(vals) == 1 || st.m.off&offAmbiguous != 0 {
		s, reason, fp, ok := st.find(r.Context(), vals[0])
		if !ok {
			return st.m.opt.OnStoreError != FailUnavailable
		}
		if s == nil {
			st.badCookie(r.Context(), reason, fp)
			return true
		}
		st.useBound(r, s)
		return true
	}
	// Several values: each must be a valid session, all of one signed-in
	// principal. A value that is not (a tossed session of someone else, or
	// the user's own stale one beside a tossed valid one) makes the
	// request ambiguous.
	var found []*store.Session
	for _, v := range vals {
		s, _, _, ok := st.find(r.Context(), v)
		if !ok {
			return st.m.opt.OnStoreError != FailUnavailable
		}
		if s == nil || s.Principal == "" || len(found) > 0 && s.Principal != found[0].Principal {
			fp := ""
			if len(found) > 0 {
				fp = found[0].Fingerprint()
			} else if s != nil {
				fp = s.Fingerprint()
			}
			st.badCookie(r.Context(), BadAmbiguous, fp)
			return true
		}
		found = append(found, s)
	}
	st.useBound(r, found[0])
	return true
}

// find looks up one cookie value. It returns the session, or the reason
// and fingerprint of a bad cookie, and ok false if the store failed (which
// it has then recorded). Called with st.mu held.
func (st *reqState) find(ctx context.Context, v string) (s *store.Session, reason, fp string, ok bool) {
	m := st.m
	if bad := checkToken(v); bad != "" {
		return nil, bad, "", true
	}
	h := store.HashToken(v)
	s, err := m.st.Find(ctx, h)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		reason := BadUnknown
		if errors.Is(err, store.ErrExpired) {
			reason = BadExpired
		} else if errors.Is(err, store.ErrRevoked) {
			reason = BadRevoked
		}
		return nil, reason, h.Fingerprint(), true
	default:
		m.log.Error("session: store read failed; failing closed", "fingerprint", h.Fingerprint(), "err", err)
		m.event(ctx, Event{Name: EventStoreError, Detail: "find", Fingerprint: h.Fingerprint(), Err: err})
		st.storeDown = true
		return nil, "", "", false
	}
	if s.Hash != h || s.Expired(m.opt.Now()) {
		// A store that answers with another session, or a dead one, is not
		// trusted: the request is anonymous.
		return nil, BadExpired, h.Fingerprint(), true
	}
	return s, "", "", true
}

// useBound uses s, unless it is a device-bound session presented without
// its bound cookie: that is not served, and its cookie is kept (the
// browser that holds the key refreshes). Called with st.mu held.
func (st *reqState) useBound(r *http.Request, s *store.Session) {
	if st.unbound(r, s.Data) {
		fp := s.Fingerprint()
		st.rec.SessionIn(fp, "")
		st.rec.Event(reqlog.EventDBSCUnbound, "")
		st.m.event(r.Context(), Event{Name: reqlog.EventDBSCUnbound, Fingerprint: fp, Principal: s.Principal})
		return
	}
	st.use(r.Context(), s)
}

// use makes s the request's session and touches it. Called with st.mu held.
func (st *reqState) use(ctx context.Context, s *store.Session) {
	m := st.m
	st.loaded, st.arrival = s, s.Principal
	if st.rec != nil {
		st.rec.SessionIn(st.loadedFingerprint(), s.Principal)
	}
	now := m.opt.Now()
	if now.Sub(s.LastSeen) >= m.opt.TouchInterval || s.LastIP != st.ip {
		idle := m.idleDeadline(s, now)
		if err := m.st.Touch(ctx, s.Hash, now, idle, st.ip, st.ua); err != nil {
			m.log.Warn("session: touch failed", "fingerprint", s.Fingerprint(), "err", err)
		} else {
			s.LastSeen, s.IdleDeadline, s.LastIP, s.UserAgent = now, idle, st.ip, st.ua
		}
	}
}

func (st *reqState) badCookie(ctx context.Context, reason, fp string) {
	st.cookie = cookieClear
	st.badReason, st.badFP = reason, fp
	st.rec.Event(reqlog.EventBadCookie, reason)
	st.m.event(ctx, Event{Name: reqlog.EventBadCookie, Detail: reason, Fingerprint: fp})
}
