package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-sec/cordon/internal/setcookie"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/store"
)

// errBlocked is returned by Write on a response the guard failed closed.
var errBlocked = errors.New("session: response blocked by the session cookie guard")

// errStaleWriter is returned by every write on the response writer of a
// request that has ended. It matches ErrRequestEnded.
var errStaleWriter = fmt.Errorf("session: response writer used after its request ended: %w", ErrRequestEnded)

// protection names one of the guard's checks, so that this package's tests
// can switch it off alone and show that the hostile suite's oracle then
// sees the crossing it prevents (export_test.go). Production code never
// switches anything off.
type protection uint16

const (
	// offCanonical: only the canonical "Set-Cookie" key is read.
	offCanonical protection = 1 << iota
	// offTrailers: Set-Cookie trailers are not looked at.
	offTrailers
	// offSmuggled: only a line's own name-value pair is read.
	offSmuggled
	// offDeletion: a hand-written deletion is dropped, and nothing else
	// happens (the session cookie stays in the browser).
	offDeletion
	// offUnwrap: the guard's Unwrap hands out the writer below it.
	offUnwrap
	// offStale: the writer keeps writing after its request ended.
	offStale
	// offAmbiguous: the first of several session cookies wins.
	offAmbiguous
	// offLastWord: the check below a framework's hooks (LastWord) is off.
	offLastWord
)

// protectionNames maps the names the tests use to the switches.
var protectionNames = map[string]protection{
	"canonical": offCanonical, "trailers": offTrailers, "smuggled": offSmuggled,
	"deletion": offDeletion, "unwrap": offUnwrap, "stale": offStale,
	"ambiguous": offAmbiguous, "lastword": offLastWord,
}

// door is the writer the middleware gives the handler: the guard, or, with
// the guard switched off by a test, a plain committing writer.
type door interface {
	http.ResponseWriter
	finish() // when the handler returns; it closes the writer too
	close()  // when the handler panics
}

// guardWriter is the one door for the session cookie. Before the response's
// status line goes out — at the first WriteHeader, Write or Flush, whether
// called on it or through http.ResponseController — it commits the session,
// reads every Set-Cookie line of the header map in any spelling of the key
// and in any shape (see package internal/setcookie), removes every one that
// would give a client the session cookie other than the handle's own,
// checks that the cookie it is about to send is this request's own session
// and belongs, per the store at that moment, to the principal the request
// arrived with or logged in as, and otherwise fails the response closed.
// Informational (1xx) responses pass with every session cookie stripped,
// and the final response then fails closed. Set-Cookie trailers are read at
// the status line and again when the handler returns.
//
// It hands out nothing below it: it has no Unwrap, and implements what
// http.ResponseController looks for (Flush, Hijack, deadlines, full duplex)
// itself. Once its request has ended it refuses every write, leaving a
// stale_use line, and Header returns a detached map, so that a goroutine
// that kept it can never write into a response that net/http or a framework
// has meanwhile handed to another request.
type guardWriter struct {
	w   http.ResponseWriter
	st  *reqState
	rec *reqlog.Record // the request's record, for a stale use

	mu       sync.Mutex // held by every call that reaches w, and by close
	ended    atomic.Bool
	stale    bool // a stale use has been recorded
	wrote    bool
	blocked  bool
	hijacked bool
	inEgress bool   // the guard is writing the status line (for LastWord)
	own      string // the session cookie line the guard itself added
}

// newGuard returns the guard for st over w, in mem if it is not nil.
func newGuard(mem *guardWriter, w http.ResponseWriter, st *reqState) *guardWriter {
	g := mem
	if g == nil {
		g = new(guardWriter)
	}
	g.w, g.st, g.rec = w, st, st.rec
	return g
}

// unwrapGuard is the guard with the Unwrap that hands out the raw writer,
// as it once had; only a test that switches the protection off uses it.
type unwrapGuard struct{ *guardWriter }

func (u unwrapGuard) Unwrap() http.ResponseWriter { return u.w }

// Header returns the response's header map while the request runs, and a
// fresh, detached map after it has ended.
func (g *guardWriter) Header() http.Header {
	if g.ended.Load() && g.st.m.off&offStale == 0 {
		return http.Header{}
	}
	return g.w.Header()
}

// WriteHeader guards and sends the status.
func (g *guardWriter) WriteHeader(code int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended.Load() && g.isStale("WriteHeader") {
		return
	}
	g.writeHeader(code)
}

func (g *guardWriter) writeHeader(code int) {
	if g.wrote || g.hijacked {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if g.strip(g.w.Header(), false) {
			g.st.mu.Lock()
			g.st.guardEvent("informational_response", "")
			g.st.mu.Unlock()
			if g.st.m.opt.Guard == GuardBlock {
				g.blocked = true // the final response fails closed
			}
		}
		g.st.mu.Lock()
		g.writeStatus(code)
		g.st.mu.Unlock()
		return
	}
	g.egress(code)
}

func (g *guardWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended.Load() && g.isStale("Write") {
		return 0, errStaleWriter
	}
	if !g.wrote {
		g.writeHeader(http.StatusOK)
	}
	if g.blocked {
		return 0, errBlocked
	}
	return g.w.Write(p)
}

// Flush sends the headers if they have not gone yet, then flushes.
func (g *guardWriter) Flush() { _ = g.FlushError() }

// FlushError is Flush for http.ResponseController.
func (g *guardWriter) FlushError() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ended.Load() && g.isStale("Flush") {
		return errStaleWriter
	}
	if !g.wrote {
		g.writeHeader(http.StatusOK)
	}
	if g.blocked {
		return errBlocked
	}
	return http.NewResponseController(g.w).Flush()
}

// Hijack commits the session and hands over the connection. Nothing written
// to a hijacked connection passes the guard: the handler owns the raw bytes.
func (g *guardWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isStale("Hijack") {
		return nil, nil, errStaleWriter
	}
	st := g.st
	st.mu.Lock()
	if err := st.commit(); err != nil {
		st.m.log.Error("session: commit before hijack failed", "err", err)
	}
	st.sent = true
	st.mu.Unlock()
	g.hijacked = true
	return http.NewResponseController(g.w).Hijack()
}

// SetReadDeadline is for http.ResponseController. The deadlines do not
// wait for a write in progress (setting one is how another goroutine
// unblocks a stuck write), so they check the end of the request without
// taking the writer's lock.
func (g *guardWriter) SetReadDeadline(t time.Time) error {
	if g.ended.Load() && g.st.m.off&offStale == 0 {
		g.mu.Lock()
		g.isStale("SetReadDeadline")
		g.mu.Unlock()
		return errStaleWriter
	}
	return http.NewResponseController(g.w).SetReadDeadline(t)
}

// SetWriteDeadline is for http.ResponseController; see SetReadDeadline.
func (g *guardWriter) SetWriteDeadline(t time.Time) error {
	if g.ended.Load() && g.st.m.off&offStale == 0 {
		g.mu.Lock()
		g.isStale("SetWriteDeadline")
		g.mu.Unlock()
		return errStaleWriter
	}
	return http.NewResponseController(g.w).SetWriteDeadline(t)
}

// EnableFullDuplex is for http.ResponseController.
func (g *guardWriter) EnableFullDuplex() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isStale("EnableFullDuplex") {
		return errStaleWriter
	}
	return http.NewResponseController(g.w).EnableFullDuplex()
}

// isStale reports whether the request has ended, recording the first stale
// use. Called with g.mu held.
func (g *guardWriter) isStale(op string) bool {
	if !g.ended.Load() || g.st.m.off&offStale != 0 {
		return false
	}
	if !g.stale {
		g.stale = true
		detail := "response writer " + op + " after its request ended"
		g.st.m.log.Warn("session: response writer used after its request ended", "op", op)
		g.st.m.event(context.Background(), Event{Name: reqlog.EventStaleUse, Detail: detail, Err: errStaleWriter})
		g.rec.Late(reqlog.EventStaleUse, detail)
	}
	return true
}

// close marks the request ended: from now on the writer refuses.
func (g *guardWriter) close() {
	g.mu.Lock()
	g.ended.Store(true)
	g.mu.Unlock()
}

// finish runs when the handler returns: it sends the headers if the handler
// wrote nothing, else commits what was changed after the headers went out;
// then it strips session cookies from the trailers. The writer is closed
// when it returns (see close).
func (g *guardWriter) finish() {
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.ended.Store(true)
	if g.hijacked {
		return
	}
	if !g.wrote {
		g.writeHeader(http.StatusOK)
	} else {
		st := g.st
		st.mu.Lock()
		if !st.ended {
			if err := st.commit(); err != nil {
				st.m.log.Error("session: commit after response failed; changes lost", "err", err)
				st.m.event(st.rctx, Event{Name: EventStoreError, Detail: "late_commit", Err: err})
			}
		}
		// else the client went away; uncommitted changes are dropped
		st.mu.Unlock()
	}
	if g.st.m.off&offTrailers == 0 && g.trailerCookies(g.w.Header()) {
		g.st.mu.Lock()
		g.st.guardEvent("trailer", "")
		g.st.mu.Unlock()
	}
}

// trailerCookies removes every session cookie line from what net/http
// would send as trailers, and reports whether there was one. The status
// line has gone: the body may already be out, but no trailer carries the
// cookie.
func (g *guardWriter) trailerCookies(h http.Header) bool {
	found := false
	for k := range h {
		if !setcookie.IsSetCookieTrailerKey(k) {
			continue
		}
		lines := h[k]
		kept := lines[:0:0]
		for _, l := range lines {
			if kind, _ := g.classify(l); kind != setcookie.None {
				found = true
				continue
			}
			kept = append(kept, l)
		}
		if len(kept) == 0 {
			delete(h, k)
		} else {
			h[k] = kept
		}
	}
	return found
}

// classify reads one Set-Cookie line for the session cookie's names.
func (g *guardWriter) classify(line string) (setcookie.Kind, string) {
	if g.st.m.off&offSmuggled != 0 {
		v, ours := g.st.m.parseSetCookie(line)
		if !ours {
			return setcookie.None, ""
		}
		return setcookie.Primary, v
	}
	return setcookie.Classify(line, g.st.m.opt.CookieName, g.st.m.devName)
}

// strip removes every session cookie line, in any shape and under any
// spelling of the key, from h (and its trailers, unless final is false and
// they are left for later), keeping the lines the guard itself added when
// keepOwn is set. It reports whether it removed one.
func (g *guardWriter) strip(h http.Header, keepOwn bool) bool {
	found := false
	for k, lines := range h {
		sc := setcookie.IsSetCookieKey(k)
		if !sc && !setcookie.IsSetCookieTrailerKey(k) {
			continue
		}
		if sc && k != "Set-Cookie" && g.st.m.off&offCanonical != 0 || !sc && g.st.m.off&offTrailers != 0 {
			continue
		}
		kept := lines[:0:0]
		for _, l := range lines {
			if kind, _ := g.classify(l); kind != setcookie.None && !(keepOwn && g.isOwn(l)) {
				found = true
				continue
			}
			kept = append(kept, l)
		}
		if len(kept) == 0 {
			delete(h, k)
		} else {
			h[k] = kept
		}
	}
	return found
}

func (g *guardWriter) isOwn(line string) bool { return g.own != "" && line == g.own }

// egress commits, guards and writes the final status. It is the only place
// a session cookie is added to a response. Called with g.mu held.
func (g *guardWriter) egress(code int) {
	g.wrote = true
	st := g.st
	m := st.m
	st.mu.Lock()
	defer st.mu.Unlock()
	h := g.w.Header()

	st.checkGone()
	if st.ended {
		// The client went away and the handles are sealed; nothing of the
		// session may leave.
		g.strip(h, false)
		g.writeStatus(code)
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

	detail, foreignFP, deletion := g.scan(h)
	if deletion && detail == "" && m.opt.Guard == GuardBlock && m.off&offDeletion == 0 && st.cookie != cookieSet {
		st.handDeletion()
	}
	var ownFP, ownUID string
	if st.cookie == cookieSet && detail == "" {
		ownFP = st.loadedFingerprint()
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
		if m.opt.Guard == GuardBlock {
			g.fail(http.StatusInternalServerError)
			return
		}
		// Report mode: what the handler put stays, and our own cookie goes
		// out too.
	}
	switch st.cookie {
	case cookieSet:
		line := m.cookieHeader(st.spec, st.token)
		h["Set-Cookie"] = append(h["Set-Cookie"], line)
		g.own = line
		st.rec.SessionOut(ownFP, ownUID)
	case cookieClear:
		line := m.cookieHeader(st.spec, "")
		h["Set-Cookie"] = append(h["Set-Cookie"], line)
		g.own = line
	}
	if st.cookie != cookieNone || detail != "" {
		noStore(h)
	}
	st.rec.View(st.principal())
	g.writeStatus(code)
}

// writeStatus writes the status to the writer below, letting a LastWord
// there check what code between the two added. Called with g.mu held.
func (g *guardWriter) writeStatus(code int) {
	g.inEgress = true
	g.w.WriteHeader(code)
	g.inEgress = false
}

// scan normalises h and removes from it every Set-Cookie line that would
// give a client the session cookie: under any spelling of the key, in any
// shape, in a trailer. It returns a guard_block detail if one of them tried
// to send a session, with that session's fingerprint when it is known, and
// whether one of them deleted the session cookie. Called with g.mu and
// st.mu held.
func (g *guardWriter) scan(h http.Header) (detail, fp string, deletion bool) {
	st, m := g.st, g.st.m
	if len(h) == 0 {
		return "", "", false
	}
	lines := h["Set-Cookie"]
	merged := false
	for k, v := range h {
		switch {
		case k == "Set-Cookie":
		case setcookie.IsSetCookieKey(k):
			if m.off&offCanonical != 0 {
				continue
			}
			// net/http writes the key as spelled, and browsers read
			// header names case-insensitively: one key for all.
			if !merged {
				lines = append(lines[:len(lines):len(lines)], v...)
				merged = true
			} else {
				lines = append(lines, v...)
			}
			delete(h, k)
		case k == "Trailer":
			if m.off&offTrailers != 0 {
				continue
			}
			// A Set-Cookie trailer announced now would carry whatever
			// the handler adds to Set-Cookie after the status line.
			// No honest handler announces one: fail closed.
			for i, t := range v {
				if rest, ok := setcookie.DeclaresSetCookie(t); ok {
					v[i] = rest
					detail = "trailer"
				}
			}
		case setcookie.IsSetCookieTrailerKey(k):
			if m.off&offTrailers != 0 {
				continue
			}
			kept := v[:0:0]
			for _, l := range v {
				if kind, val := g.classify(l); kind != setcookie.None {
					detail = "trailer"
					if fp == "" && val != "" {
						fp = store.Fingerprint(val)
					}
					continue
				}
				kept = append(kept, l)
			}
			if len(kept) == 0 {
				delete(h, k)
			} else {
				h[k] = kept
			}
		}
	}
	if merged {
		h["Set-Cookie"] = lines
	}
	if len(lines) == 0 {
		return detail, fp, false
	}
	kept := lines[:0:0]
	injected := false
	for _, l := range lines {
		kind, v := g.classify(l)
		switch kind {
		case setcookie.None:
			kept = append(kept, l)
			continue
		case setcookie.Primary:
			if m.off&offDeletion != 0 {
				if v == "" || strings.Contains(strings.ToLower(l), "max-age=0") || strings.Contains(strings.ToLower(l), "max-age=-") {
					continue // the old reading: dropped quietly
				}
			} else {
				if setcookie.Deletes(l) {
					// A hand-written deletion: the guard drops it and, below,
					// deletes the cookie itself, properly.
					deletion = true
					continue
				}
			}
			if st.token != "" && tokenEqual(v, st.token) {
				continue // the handler copied our own cookie; it goes out once
			}
		}
		injected = true
		if fp == "" && v != "" {
			fp = store.Fingerprint(v)
		}
	}
	if injected && detail == "" {
		detail = "foreign_cookie"
	}
	if m.opt.Guard == GuardReport {
		return detail, fp, false
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
	} else {
		h["Set-Cookie"] = kept
	}
	return detail, fp, deletion
}

// handDeletion carries out a deletion of the session cookie that the
// handler wrote by hand: the session is destroyed in the store and the
// cookie cleared with the attributes that really delete it (a hand-written
// line with another Path, or without Secure for a __Host- name, would
// leave the browser's cookie in place). Called with st.mu held.
func (st *reqState) handDeletion() {
	if old := st.loaded; old != nil {
		ctx := st.commitContext()
		err := st.m.st.Delete(ctx, old.Hash)
		ctx.stop()
		if err != nil {
			st.m.log.Warn("session: destroying a session deleted by hand failed; its cookie is cleared", "fingerprint", old.Fingerprint(), "err", err)
		}
		st.rec.Event(reqlog.EventLogout, "hand_written_deletion")
		st.m.event(st.rctx, Event{Name: reqlog.EventLogout, Detail: "hand_written_deletion", Fingerprint: old.Fingerprint(), Principal: old.Principal})
	}
	st.loaded, st.token, st.values, st.changes = nil, "", nil, nil
	st.cookie = cookieClear
}

// verifyOwn checks, against the store, that the session the handle is about
// to send belongs to a principal this request may receive. Called with
// st.mu held.
func (st *reqState) verifyOwn() (uid, detail string) {
	ctx := st.commitContext()
	defer ctx.stop()
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
// set is dropped, so no cookie of any kind leaves. Called with g.mu and
// st.mu held.
func (g *guardWriter) fail(code int) {
	g.blocked = true
	h := g.w.Header()
	clearHeader(h)
	g.writeStatus(code)
	_, _ = g.w.Write([]byte(http.StatusText(code) + "\n"))
}

// clearHeader drops every header of h and leaves those of a bare,
// uncacheable error.
func clearHeader(h http.Header) {
	for k := range h {
		delete(h, k)
	}
	noStore(h)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
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

// LastWord wraps w, the writer below a framework's own response layer, for
// a framework adapter: when the session middleware runs above that layer
// and the layer runs code of its own when the status is written (echo's
// Before hooks, registered by middleware outside the adapter), the guard's
// check runs again here, after every such hook, at the last moment before
// the status reaches w. A session cookie line the hooks added is removed
// and the response fails closed (500, no cookie, guard_block "hook").
//
// The adapter calls bind, from inside the session middleware and before
// anything is written, with the ResponseWriter the middleware gave it; until
// then, and for writers that are not cordon's, LastWord passes everything
// through.
func LastWord(w http.ResponseWriter) (wrapped http.ResponseWriter, bind func(guard http.ResponseWriter)) {
	l := &lastWord{w: w}
	return l, l.bind
}

type lastWord struct {
	w http.ResponseWriter
	g *guardWriter
}

func (l *lastWord) bind(w http.ResponseWriter) {
	switch g := w.(type) {
	case *guardWriter:
		l.g = g
	case unwrapGuard:
		l.g = g.guardWriter
	}
}

func (l *lastWord) Header() http.Header { return l.w.Header() }

func (l *lastWord) Write(p []byte) (int, error) { return l.w.Write(p) }

// WriteHeader runs the final check when the guard above is writing the
// status (it holds the guard's locks then), and otherwise passes through.
func (l *lastWord) WriteHeader(code int) {
	g := l.g
	if g == nil || !g.inEgress || g.st.m.off&offLastWord != 0 {
		l.w.WriteHeader(code)
		return
	}
	h := l.w.Header()
	if !g.strip(h, true) {
		l.w.WriteHeader(code)
		return
	}
	g.st.guardEvent("hook", "")
	if g.st.m.opt.Guard != GuardBlock {
		l.w.WriteHeader(code)
		return
	}
	g.blocked = true
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		l.w.WriteHeader(code) // stripped; the final response fails closed
		return
	}
	clearHeader(h)
	l.w.WriteHeader(http.StatusInternalServerError)
	_, _ = l.w.Write([]byte(http.StatusText(http.StatusInternalServerError) + "\n"))
}

func (l *lastWord) Flush()            { _ = l.FlushError() }
func (l *lastWord) FlushError() error { return http.NewResponseController(l.w).Flush() }
func (l *lastWord) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(l.w).Hijack()
}
func (l *lastWord) SetReadDeadline(t time.Time) error {
	return http.NewResponseController(l.w).SetReadDeadline(t)
}
func (l *lastWord) SetWriteDeadline(t time.Time) error {
	return http.NewResponseController(l.w).SetWriteDeadline(t)
}
func (l *lastWord) EnableFullDuplex() error {
	return http.NewResponseController(l.w).EnableFullDuplex()
}

// plainWriter is the middleware's writer with the guard switched off (only
// this package's tests and benchmarks do that): it commits the session and
// adds the handle's cookie before the status line, as any session library
// does, and checks nothing. It is the baseline that shows what the guard
// costs and what it stops.
type plainWriter struct {
	http.ResponseWriter
	st    *reqState
	wrote bool
}

func (p *plainWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

func (p *plainWriter) WriteHeader(code int) {
	if !p.wrote && code >= 200 {
		p.wrote = true
		st := p.st
		st.mu.Lock()
		if err := st.commit(); err != nil {
			st.m.log.Error("session: commit failed", "err", err)
		}
		st.sent = true
		h := p.ResponseWriter.Header()
		switch st.cookie {
		case cookieSet:
			h.Add("Set-Cookie", st.m.cookieHeader(st.spec, st.token))
		case cookieClear:
			h.Add("Set-Cookie", st.m.cookieHeader(st.spec, ""))
		}
		if st.cookie != cookieNone {
			noStore(h)
		}
		st.mu.Unlock()
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *plainWriter) Write(b []byte) (int, error) {
	if !p.wrote {
		p.WriteHeader(http.StatusOK)
	}
	return p.ResponseWriter.Write(b)
}

func (p *plainWriter) Flush() {
	if !p.wrote {
		p.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(p.ResponseWriter).Flush()
}

func (p *plainWriter) finish() {
	if !p.wrote {
		p.WriteHeader(http.StatusOK)
		return
	}
	st := p.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended {
		if err := st.commit(); err != nil {
			st.m.log.Error("session: commit after response failed", "err", err)
		}
	}
}

func (p *plainWriter) close() {}
