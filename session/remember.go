package session

import (
	"maps"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// "Remember me" bounds. OWASP ASVS 5.0 V7.3 asks for an inactivity timeout
// and an absolute maximum lifetime chosen by risk analysis, and V7.1.1 for
// a documented justification of any deviation from NIST SP 800-63B, whose
// longest re-authentication interval (AAL1) is 30 days. A remembered
// session therefore lives at most 30 days from its login however active it
// is; by default 14 days, and it ends after 7 days unused.
const (
	DefaultRememberLifetime    = 14 * 24 * time.Hour
	MaxRememberLifetime        = 30 * 24 * time.Hour
	DefaultRememberIdleTimeout = 7 * 24 * time.Hour
)

// LoginOptions say how LoginWith authenticates a session.
type LoginOptions struct {
	// Remember is the user's "remember me": the session's cookie is
	// persistent (Max-Age), so it survives closing the browser, and the
	// session lasts Options.RememberLifetime from this login (at most
	// MaxRememberLifetime) with Options.RememberIdleTimeout as its idle
	// timeout. Without it the session has the manager's Lifetime and
	// IdleTimeout, and a browser-session cookie unless Options.Persist.
	// The choice is kept by Renew and LogoutOthers and cleared by Logout;
	// logging in again chooses anew.
	Remember bool
}

// rememberKey holds true in a remembered session's values. Keys starting
// with NUL are the package's own: Put, Get, Pop and Delete refuse them and
// Keys hides them. The flag lives in the session's data, which only this
// package writes, so every store carries it without a schema change; the
// remembered session's absolute end is its store.Session.Expires, which
// every store already enforces.
const rememberKey = "\x00remember"

// lifetime is the timeout policy of a session about to be created.
type lifetime struct {
	remember bool
	// keep, if not zero, is the absolute end of the session being
	// replaced: a token rotation never extends a session's life.
	keep time.Time
}

// withRemember returns a copy of vals with the remember flag set or
// cleared.
func withRemember(vals map[string]any, remember bool) map[string]any {
	out := maps.Clone(vals)
	if out == nil {
		out = map[string]any{}
	}
	if remember {
		out[rememberKey] = true
	} else {
		delete(out, rememberKey)
	}
	return out
}

// rememberedData reports whether a stored session's data carries the
// remember flag. Data that does not decode is not remembered: the shorter
// timeouts apply.
func rememberedData(data []byte) bool {
	raw, ok, err := lookupValue(data, rememberKey)
	if err != nil || !ok {
		return false
	}
	b, _ := rawBool(raw)
	return b
}

// keepLifetime is the policy of a session that replaces the loaded one
// without a new login (Renew, LogoutOthers). Called with mu held and
// st.loaded set.
func (st *reqState) keepLifetime() lifetime {
	return lifetime{remember: rememberedData(st.loaded.Data), keep: st.loaded.Expires}
}

// idleTimeout returns the idle timeout of a session.
func (m *Manager) idleTimeout(remember bool) time.Duration {
	if remember {
		return m.opt.RememberIdleTimeout
	}
	return m.opt.IdleTimeout
}

// deadlines returns the idle deadline and absolute end of a session
// created at now with policy lt.
func (m *Manager) deadlines(now time.Time, lt lifetime) (idle, expires time.Time) {
	life := m.opt.Lifetime
	if lt.remember {
		life = m.opt.RememberLifetime
	}
	expires = now.Add(life)
	if !lt.keep.IsZero() && lt.keep.Before(expires) {
		expires = lt.keep
	}
	return minTime(now.Add(m.idleTimeout(lt.remember)), expires), expires
}

// idleDeadline returns the idle deadline a use of s at now moves it to:
// its own idle timeout from now, never past its absolute end.
func (m *Manager) idleDeadline(s *store.Session, now time.Time) time.Time {
	return minTime(now.Add(m.idleTimeout(rememberedData(s.Data))), s.Expires)
}

// cookieMaxAge returns the Max-Age, in seconds, of the cookie that carries
// a new session: its whole life for a remembered session or with
// Options.Persist, 0 (a browser-session cookie) otherwise.
func (m *Manager) cookieMaxAge(s *store.Session, remember bool) int {
	if !remember && !m.opt.Persist {
		return 0
	}
	return max(int(s.Expires.Sub(s.Created)/time.Second), 1)
}
