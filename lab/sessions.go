package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
)

// sessionLayer is cordon's session middleware as the lab uses it: it gives
// each request a sealed handle and guards the session cookie at egress.
type sessionLayer interface {
	Middleware(next http.Handler) http.Handler
	From(r *http.Request) handle
}

// handle is the request-bound session handle.
type handle interface {
	// Principal returns the request's principal ("" when anonymous), or an
	// error matching session.ErrRequestEnded once the request has ended.
	Principal() (string, error)
	// Login starts a new session for principal in this request.
	Login(principal string) error
	// Name names the handle in the trace.
	Name() string
}

func isEnded(err error) bool { return errors.Is(err, session.ErrRequestEnded) }

// cordonSessions is cordon's session.Manager. With guard off it runs in
// session.GuardReport mode: the manager still sees a foreign session cookie
// and records it, but lets the response through unchanged — exactly what a
// composition without the guard sends.
type cordonSessions struct {
	rt    *rt
	m     *session.Manager
	guard bool
}

func newSessionLayer(r *rt, st store.Store, guard bool) (sessionLayer, error) {
	l := &cordonSessions{rt: r, guard: guard}
	mode := session.GuardReport
	if guard {
		mode = session.GuardBlock
	}
	l.m = session.New(st, session.Options{
		CookieName:      CookieName,
		Guard:           mode,
		CleanupInterval: -1, // no sweeper goroutine: the lab's stores are short-lived
		IdleTimeout:     idleTimeout,
		Lifetime:        absTimeout,
		Now:             r.now,
		Rand:            r.rand,
		Logger:          slog.New(slog.DiscardHandler),
		OnEvent:         l.onEvent,
	})
	return l, nil
}

// onEvent hears the manager's events; a guard_block in block mode is an
// attempt the guard stopped.
func (l *cordonSessions) onEvent(_ context.Context, ev session.Event) {
	if ev.Name != reqlog.EventGuardBlock {
		return
	}
	what := fmt.Sprintf("%s: Set-Cookie %s in a response for %s", ev.Detail, l.rt.describeFP(ev.Fingerprint), orAnon(ev.Principal))
	if strings.HasPrefix(ev.Detail, "report:") {
		l.rt.ev("guard", "pass", what+" (report mode: not blocked)")
		return
	}
	l.rt.blocked.Add(1)
	l.rt.ev("guard", "block", what+" → 500, no session cookie")
}

func (l *cordonSessions) Middleware(next http.Handler) http.Handler { return l.m.Middleware(next) }

func (l *cordonSessions) From(r *http.Request) handle {
	return &cordonHandle{s: session.From(r), n: requestNumber(r.Context()), rt: l.rt}
}

// cordonHandle adapts *session.Session to handle.
type cordonHandle struct {
	s  *session.Session
	n  int64
	rt *rt
}

func (h *cordonHandle) Name() string { return fmt.Sprintf("session handle #%d", h.n) }

func (h *cordonHandle) Principal() (string, error) {
	p, err := h.s.Principal()
	if err != nil {
		return "", fmt.Errorf("lab: session: %w", err)
	}
	return p, nil
}

// Fingerprint is the fingerprint of the handle's session.
func (h *cordonHandle) Fingerprint() (string, error) {
	fp, err := h.s.Fingerprint()
	if err != nil {
		return "", fmt.Errorf("lab: session: %w", err)
	}
	return fp, nil
}

func (h *cordonHandle) Login(principal string) error {
	if err := h.s.Login(principal); err != nil {
		return fmt.Errorf("lab: session: %w", err)
	}
	if fp, err := h.s.Fingerprint(); err == nil {
		h.rt.rememberFP(fp, principal)
	}
	return nil
}
