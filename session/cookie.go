package session

import (
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// tokenBytes is the number of random bytes in a session token (256 bits).
const tokenBytes = 32

// tokenLen is the length of a token in the cookie: base64url, no padding.
var tokenLen = base64.RawURLEncoding.EncodedLen(tokenBytes)

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
)

// newToken returns a fresh session token: 32 bytes from r, base64url.
func newToken(r io.Reader) (string, error) {
	var b [tokenBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("session: read random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// checkToken returns "" if v has the exact form of a token cordon issues, or
// the reason it is refused. It looks only at the form: whether the token
// exists is the store's business.
func checkToken(v string) string {
	if len(v) > MaxCookieBytes {
		return BadOversized
	}
	if len(v) != tokenLen {
		return BadMalformed
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return BadMalformed
		}
	}
	// 43 base64 characters carry 258 bits: the last one must leave the two
	// spare bits zero, or two spellings would name one token.
	if strings.IndexByte("AEIMQUYcgkosw048", v[tokenLen-1]) < 0 {
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

// specFor returns the cookie spec for r. With the default name (which uses
// the __Host- prefix), a request over plain HTTP to a loopback address — a
// developer's machine — gets the name without the prefix and no Secure flag,
// because browsers refuse Secure cookies over plain HTTP. Any other request
// gets the full name and Secure. The loopback test needs all three of: no
// TLS, a loopback local address on the connection, and a Host header that
// names a loopback host; a request that reaches the app through a proxy on
// the same machine carries the site's own Host and keeps the secure cookie.
func (m *Manager) specFor(r *http.Request) cookieSpec {
	if !m.devAllowed || r.TLS != nil || !loopbackConn(r) || !loopbackHost(r.Host) {
		return cookieSpec{name: m.opt.CookieName, secure: true}
	}
	m.devOnce.Do(func() {
		m.log.Warn("session: plain HTTP on a loopback address: the session cookie drops the __Host- prefix and Secure flag (development only)",
			"cookie", m.devName)
	})
	return cookieSpec{name: m.devName, secure: false}
}

func loopbackConn(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
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

// requestCookie returns the value of the session cookie in r and whether
// there was one. Only the first cookie of the name counts.
func requestCookie(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		if len(line) > 64<<10 {
			continue // absurd; net/http limits headers, but be sure
		}
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			k, v, ok := strings.Cut(part, "=")
			if !ok || k != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}
