package demo

import (
	"container/list"
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/session"
)

// Why a browser's session ended, as the pages say it. The session manager
// tells the request that carried a dead cookie why it was not honoured
// (Session.BadCookie, the reason of its bad_cookie event). Its reason is "revoked" or
// "expired" only when the store can tell; the stores mostly answer
// "unknown", since a revoked or expired session is simply gone. The app
// then asks its own ledger (seenLedger): a session it served recently that
// is gone before its idle deadline was revoked; one gone after it expired;
// one it never served (another node, a restart, a forged cookie) is a
// cookie that no longer verifies.
const (
	noticeRevoked    = "revoked"
	noticeExpired    = "expired"
	noticeUnverified = "unverified"
	noticeAdmin      = "admin" // not a session end: /admin asked for a log-in
)

var noticeText = map[string]string{
	noticeRevoked:    "Your session was revoked: an administrator, or you from another device, signed it out. Log in again to continue.",
	noticeExpired:    "Your session expired. Log in again to continue.",
	noticeUnverified: "Your session cookie could no longer be verified, so you were signed out. Log in again to continue.",
	noticeAdmin:      "Log in with the administrator's account to open the admin page.",
}

// NoticeCookie carries, across the redirect that follows the request on
// which a session ended, why it ended. It holds one of a few fixed words,
// never anything about the session, and lives a minute.
const NoticeCookie = "demo_notice"

// endedKey carries, in the context of a request whose session cookie
// stopped working on it, why (a notice word); requests whose cookie works,
// nearly all of them, carry nothing.
type endedKey struct{}

// withSeen records in the ledger every signed-in session the app serves:
// the one the request arrives with, and the one it leaves with when the
// handler logged in or renewed it. It runs inside the session middleware,
// which has loaded the session by then; when the request's cookie was not
// honoured it also works out, once, why the session ended, for the pages
// (endedHere). One handle serves every look (it stays valid until the
// session middleware ends the request).
func (a *App) withSeen(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		if bad, fp, _ := s.BadCookie(); bad != "" {
			r = r.WithContext(context.WithValue(r.Context(), endedKey{}, a.endedWhy(bad, fp)))
		}
		in := a.seeSession(s, "")
		next.ServeHTTP(w, r)
		a.seeSession(s, in)
	})
}

// endedWhy turns the reason a session cookie was not honoured, and the
// fingerprint of the session it named, into the notice the pages give.
func (a *App) endedWhy(bad, fp string) string {
	switch bad {
	case session.BadRevoked:
		return noticeRevoked
	case session.BadExpired:
		return noticeExpired
	case session.BadUnknown:
		return a.seen.why(fp, a.opt.Now())
	}
	return noticeUnverified
}

// seeSession records s's session in the ledger if it is signed in and not
// the one already recorded (fingerprint seen), and returns its fingerprint
// ("" for none).
func (a *App) seeSession(s *session.Session, seen string) string {
	if p, _ := s.Principal(); p == "" {
		return ""
	}
	fp, _ := s.Fingerprint()
	if fp != "" && fp != seen {
		a.seen.seen(fp, a.opt.Now())
	}
	return fp
}

// endedHere returns why the session cookie this request carried stopped
// working on this request ("" if it did not).
func endedHere(r *http.Request) string {
	k, _ := r.Context().Value(endedKey{}).(string)
	return k
}

func setNotice(w http.ResponseWriter, r *http.Request, reason string) {
	http.SetCookie(w, &http.Cookie{Name: NoticeCookie, Value: reason, Path: "/", MaxAge: 60,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// takeNotice returns the message for a page shown to nobody: why the
// session ended on this request, or the notice a redirect carried (which it
// then clears).
func (a *App) takeNotice(w http.ResponseWriter, r *http.Request) string {
	if k := endedHere(r); k != "" {
		return noticeText[k]
	}
	c, err := r.Cookie(NoticeCookie)
	if err != nil {
		return ""
	}
	clearNotice(w, r)
	return noticeText[c.Value]
}

// clearNotice drops a pending notice (a log-in makes it stale).
func clearNotice(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(NoticeCookie); err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: NoticeCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// seenLedger remembers, for the signed-in sessions the app served, when it
// first and last served them: enough to tell a session that expired from
// one that was revoked once the store has forgotten both. It is bounded
// (least recently served forgotten first) and holds fingerprints only.
type seenLedger struct {
	idle, lifetime, slack time.Duration
	max                   int
	mu                    sync.Mutex
	m                     map[string]*list.Element
	lru                   *list.List // of *seenEntry, most recent first
}

type seenEntry struct {
	fp          string
	first, last time.Time
}

func newSeenLedger(idle, lifetime, slack time.Duration, max int) *seenLedger {
	return &seenLedger{idle: idle, lifetime: lifetime, slack: slack, max: max, m: map[string]*list.Element{}, lru: list.New()}
}

func (l *seenLedger) seen(fp string, now time.Time) {
	if fp == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.m[fp]; ok {
		el.Value.(*seenEntry).last = now
		l.lru.MoveToFront(el)
		return
	}
	for l.lru.Len() >= l.max {
		el := l.lru.Back()
		delete(l.m, el.Value.(*seenEntry).fp)
		l.lru.Remove(el)
	}
	l.m[fp] = l.lru.PushFront(&seenEntry{fp: fp, first: now, last: now})
}

// why says why a session the store does not know is gone.
func (l *seenLedger) why(fp string, now time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.m[fp]
	if !ok {
		return noticeUnverified
	}
	e := el.Value.(*seenEntry)
	delete(l.m, fp)
	l.lru.Remove(el)
	// The store's idle deadline is renewed only every touch interval, so
	// it may fall up to slack before last+idle.
	if !now.Before(e.last.Add(l.idle-l.slack)) || !now.Before(e.first.Add(l.lifetime)) {
		return noticeExpired
	}
	return noticeRevoked
}
