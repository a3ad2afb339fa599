package lab

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/store"
)

// sessionLayer is cordon's session middleware as the lab uses it: it gives
// each request a sealed handle and, when the guard is on, checks the
// session cookie at egress.
type sessionLayer interface {
	Middleware(next http.Handler) http.Handler
	From(r *http.Request) handle
}

// handle is the request-bound session handle.
type handle interface {
	// Principal returns the request's principal ("" when anonymous), or an
	// error matching scope.ErrRequestEnded once the request has ended.
	Principal() (string, error)
	// Login starts a new session for principal in this request.
	Login(principal string) error
	// Name names the handle in the trace.
	Name() string
}

func isEnded(err error) bool { return errors.Is(err, scope.ErrRequestEnded) }

// labSessions is a session layer built on cordon's scope seals and store
// contract. It is the lab's own until cordon's session package is merged.
type labSessions struct {
	rt    *rt
	st    store.Store
	guard bool
}

func newSessionLayer(r *rt, st store.Store, guard bool) (sessionLayer, error) {
	return &labSessions{rt: r, st: st, guard: guard}, nil
}

type handleKey struct{}

type labHandle struct {
	seal scope.Seal
	n    int64
	l    *labSessions
	w    *guardWriter

	mu        sync.Mutex
	principal string
	issued    string // token of a session started by Login in this request
}

func (h *labHandle) Name() string { return fmt.Sprintf("session handle #%d", h.n) }

func (h *labHandle) Principal() (string, error) {
	if err := h.seal.Check(); err != nil {
		return "", fmt.Errorf("lab: session: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.principal, nil
}

func (h *labHandle) Login(principal string) error {
	if err := h.seal.Check(); err != nil {
		return fmt.Errorf("lab: session: %w", err)
	}
	tok, err := createSession(context.Background(), h.l.st, h.l.rt.rand, h.l.rt.now(), principal)
	if err != nil {
		return err
	}
	h.l.rt.remember(tok, principal)
	h.mu.Lock()
	h.principal, h.issued = principal, tok
	h.mu.Unlock()
	http.SetCookie(h.w, &http.Cookie{Name: CookieName, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return nil
}

func (l *labSessions) From(r *http.Request) handle {
	h, _ := r.Context().Value(handleKey{}).(*labHandle)
	if h == nil {
		// No middleware ran: a handle that refuses everything.
		return &labHandle{l: l}
	}
	return h
}

func (l *labSessions) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := scope.New(l.rt.now)
		h := &labHandle{seal: sc.Seal("session", 0), n: requestNumber(r.Context()), l: l}
		if c, err := r.Cookie(CookieName); err == nil {
			if s, err := l.st.Find(r.Context(), store.HashToken(c.Value)); err == nil {
				h.principal = s.Principal
			}
		}
		gw := &guardWriter{ResponseWriter: w, h: h, l: l, ctx: r.Context()}
		h.w = gw
		next.ServeHTTP(gw, r.WithContext(context.WithValue(r.Context(), handleKey{}, h)))
		sc.End()
	})
}

// guardWriter is the egress guard: before the status goes out it checks
// every session cookie the response sets. A cookie is let through only if
// it is the session this request's handle logged in, or a session of the
// principal the request arrived as. Anything else — including a cookie the
// store does not know — is blocked: every session cookie is removed, the
// status becomes 500 and the body is replaced.
type guardWriter struct {
	http.ResponseWriter
	h       *labHandle
	l       *labSessions
	ctx     context.Context
	wrote   bool
	blocked bool
}

func (g *guardWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

func (g *guardWriter) WriteHeader(code int) {
	if g.wrote {
		return
	}
	g.wrote = true
	if g.l.guard {
		if reason := g.check(); reason != "" {
			g.blocked = true
			g.l.rt.blocked.Add(1)
			g.l.rt.ev("guard", "block", reason+" → 500, no session cookie")
			hdr := g.Header()
			kept := hdr.Values("Set-Cookie")[:0:0]
			for _, v := range hdr.Values("Set-Cookie") {
				if c, err := http.ParseSetCookie(v); err == nil && c.Name != CookieName {
					kept = append(kept, v)
				}
			}
			hdr.Del("Set-Cookie")
			for _, v := range kept {
				hdr.Add("Set-Cookie", v)
			}
			hdr.Set("Content-Type", "application/json")
			hdr.Del("Content-Length")
			g.ResponseWriter.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(g.ResponseWriter, "{\"request\":%d,\"error\":\"egress guard blocked a session cookie\"}\n", g.h.n)
			return
		}
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *guardWriter) Write(p []byte) (int, error) {
	if !g.wrote {
		g.WriteHeader(http.StatusOK)
	}
	if g.blocked {
		return len(p), nil
	}
	return g.ResponseWriter.Write(p)
}

// check returns why the response must be blocked, or "".
func (g *guardWriter) check() string {
	g.h.mu.Lock()
	principal, issued := g.h.principal, g.h.issued
	g.h.mu.Unlock()
	for _, v := range g.Header().Values("Set-Cookie") {
		c, err := http.ParseSetCookie(v)
		if err != nil || c.Name != CookieName || c.Value == "" || c.MaxAge < 0 {
			continue
		}
		if issued != "" && c.Value == issued {
			continue
		}
		s, err := g.l.st.Find(g.ctx, store.HashToken(c.Value))
		if err != nil {
			return fmt.Sprintf("Set-Cookie %s is not a live session", g.l.rt.describe(c.Value))
		}
		if s.Principal != principal {
			return fmt.Sprintf("Set-Cookie %s belongs to %s, request #%d is %s", g.l.rt.describe(c.Value), orAnon(s.Principal), g.h.n, orAnon(principal))
		}
	}
	return ""
}
