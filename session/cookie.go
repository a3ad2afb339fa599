package session

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cordon-sec/cordon/internal/reqcookie"
	"github.com/cordon-sec/cordon/internal/token"
)

// MaxCookieBytes is the largest session cookie value cordon will look at.
// Anything longer is rejected as oversized without being hashed or looked up.
const MaxCookieBytes = 4096

// Reasons recorded as the `detail` of a bad_cookie event.
const (
	BadMalformed = "malformed"
	BadOversized = "oversized"
	BadUnknown   = "unknown"
	BadExpired   = "expired"
	BadRevoked   = "revoked"
	// BadAmbiguous: the request carried the session cookie's name more
	// than once, with values that are not all valid sessions of one
	// signed-in principal (cookie tossing from a sibling subdomain, for
	// example). It is served as anonymous and the cookie is cleared:
	// cordon cannot tell which one is the browser's user's.
	BadAmbiguous = "ambiguous"
)

// newToken returns a fresh session token: 32 bytes from r, base64url.
func newToken(r io.Reader) (string, error) {
	v, err := token.New(r)
	if err != nil {
		return "", fmt.Errorf("session: read random token: %w", err)
	}
	return v, nil
}

// checkToken returns "" if v has the exact form of a token cordon issues, or
// the reason it is refused. It looks only at the form: whether the token
// exists is the store's business.
func checkToken(v string) string {
	if len(v) > MaxCookieBytes {
		return BadOversized
	}
	if !token.Valid(v) {
		return BadMalformed
	}
	return ""
}

// cookieSpec says how the session cookie is named and flagged for one
// request.
type cookieSpec struct {
	name   string
	secure bool
	// maxAge is the Max-Age, in seconds, of a cookie that sets a session; 0
	// for a browser-session cookie. The handle sets it when it issues a
	// token (Manager.cookieMaxAge).
	maxAge int
}

// specFor returns the cookie spec for r: the manager's, the same for every
// request (Options.Dev decides; nothing about the request does). Without
// Dev, the first request over plain HTTP that does not come through a proxy
// reporting HTTPS makes the manager warn, once, that the browser will not
// send the Secure cookie back.
func (m *Manager) specFor(r *http.Request) cookieSpec {
	// Once warned, the request's headers are not read again: the warning
	// is all they decide.
	if !m.opt.Dev && !m.plainWarned.Load() && r.TLS == nil && !forwardedHTTPS(r) {
		m.plainOnce.Do(func() {
			m.plainWarned.Store(true)
			m.log.Warn("session: a request arrived over plain HTTP, but the session cookie is Secure: the browser will not send it back over HTTP, so signing in will not stick. Serve over HTTPS, or set session.Options.Dev for local development",
				"cookie", m.spec.name, "host", r.Host)
		})
	}
	return m.spec
}

// forwardedHTTPS reports whether a proxy in front says the client used
// HTTPS. It only silences a warning; nothing depends on it.
func forwardedHTTPS(r *http.Request) bool {
	if strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	f := strings.ToLower(r.Header.Get("Forwarded"))
	return strings.Contains(f, "proto=https")
}

// cookieHeader returns the Set-Cookie value that sets (token != "") or
// deletes (token == "") the session cookie.
func (m *Manager) cookieHeader(spec cookieSpec, token string) string {
	c := http.Cookie{
		Name:     spec.name,
		Value:    token,
		Path:     "/",
		Secure:   spec.secure,
		HttpOnly: true,
		SameSite: m.opt.SameSite,
	}
	if token == "" {
		c.MaxAge = -1
	} else {
		c.MaxAge = spec.maxAge
	}
	return c.String()
}

// sessionCookieName reports whether a Set-Cookie line sets a cookie with one
// of the manager's names, and returns its value.
func (m *Manager) parseSetCookie(line string) (value string, ours bool) {
	name, rest, ok := strings.Cut(line, "=")
	if !ok {
		return "", false
	}
	name = strings.TrimSpace(name)
	if !strings.EqualFold(name, m.opt.CookieName) && !strings.EqualFold(name, m.devName) {
		return "", false
	}
	value, _, _ = strings.Cut(rest, ";")
	value = strings.TrimSpace(value)
	if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return value, true
}

// maxCandidates bounds how many values of the session cookie one request
// may have looked up: cookie tossing needs two, and more cost the store.
const maxCandidates = 4

// requestCookies appends to buf the distinct values of the cookie name in
// r, in the order they arrive (across every Cookie header), at most
// maxCandidates of them.
func requestCookies(r *http.Request, name string, buf []string) []string {
	return reqcookie.Values(r.Header["Cookie"], name, buf, maxCandidates)
}

// requestCookie returns the first value of the session cookie in r and
// whether there was one.
func requestCookie(r *http.Request, name string) (string, bool) {
	return reqcookie.First(r.Header["Cookie"], name)
}
