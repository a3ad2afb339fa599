// Package setcookie reads Set-Cookie header lines the way the egress guards
// must: finding every line that could hand a given cookie to a client,
// whatever its shape, and telling a deletion from a line that sets a value.
//
// A browser reads one Set-Cookie line as one cookie: its name-value pair up
// to the first ';', then attributes (RFC 6265bis §5.6). Intermediaries and
// other clients are less strict: some split a line on commas, some accept a
// nameless pair (`=session=T`, which a browser stores as a cookie with no
// name that it sends back as `session=T`). So a guard that looks only at the
// first name of a line misses the cookie in `x=1, session=T`, in
// `=session=T`, in `x=1; session=T` and in `x=session=T`. Classify finds the
// name anywhere in the line: wherever it starts at a boundary (the line's
// start or a character that cannot be part of a cookie name) and is followed
// by '='. A line that mentions the name anywhere but in its own name-value
// pair is Smuggled, whatever the browser would do with it.
//
// The package imports only the standard library, so that every guard in
// cordon (the session middleware, the proxy) can share one reading.
package setcookie

import (
	"net/http"
	"strings"
)

// Kind says how a Set-Cookie line mentions a cookie name.
type Kind uint8

const (
	// None: the line does not mention the name with a value.
	None Kind = iota
	// Primary: the line's own name-value pair is the cookie, and the name
	// appears nowhere else in it with a value. A browser sets (or, see
	// Deletes, deletes) the cookie.
	Primary
	// Smuggled: the name appears with a value somewhere other than the
	// line's own name-value pair, or that pair's value holds a comma: a
	// comma-joined line, a nameless pair, an attribute, another cookie's
	// value. No honest code writes such a line.
	Smuggled
)

// String returns "none", "primary" or "smuggled".
func (k Kind) String() string {
	switch k {
	case Primary:
		return "primary"
	case Smuggled:
		return "smuggled"
	}
	return "none"
}

// Classify reports how line mentions a cookie named by one of names (ASCII
// case-insensitively, as browsers compare the __Host- prefix), and the value
// given to it: for Primary the pair's value, for Smuggled the first
// non-empty value found (cut at ';', ',' or white space, quotes removed).
func Classify(line string, names ...string) (Kind, string) {
	var primary, smuggled bool
	var pval, sval string
	start := len(line) - len(strings.TrimLeft(line, " \t")) // where the line's own name begins
	for _, name := range names {
		if name == "" {
			continue
		}
		first := name[0] | 0x20
		for i := 0; i+len(name) <= len(line); i++ {
			if line[i]|0x20 != first || !strings.EqualFold(line[i:i+len(name)], name) || (i > 0 && isNameByte(line[i-1])) {
				continue
			}
			j := i + len(name)
			for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
				j++
			}
			if j >= len(line) || line[j] != '=' {
				continue
			}
			if i == start {
				v := pairValue(line[j+1:])
				if strings.IndexByte(v, ',') >= 0 {
					smuggled = true
					if sval == "" {
						sval = shortValue(line[j+1:])
					}
				} else {
					primary, pval = true, v
				}
				continue
			}
			if v := shortValue(line[j+1:]); v != "" {
				smuggled = true
				if sval == "" {
					sval = v
				}
			}
		}
	}
	switch {
	case smuggled:
		return Smuggled, sval
	case primary:
		return Primary, pval
	}
	return None, ""
}

// pairValue is the value of a name-value pair as a browser reads it: up to
// the first ';', white space trimmed, one pair of double quotes removed.
func pairValue(s string) string {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return unquote(trimWS(s))
}

// shortValue is a value cut at the first ';', ',', '"' or white space,
// after one leading double quote.
func shortValue(s string) string {
	s = strings.TrimLeft(s, " \t")
	s = strings.TrimPrefix(s, `"`)
	if i := strings.IndexAny(s, "; \t,\""); i >= 0 {
		s = s[:i]
	}
	return s
}

func unquote(s string) string {
	if len(s) > 1 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	if len(s) == 1 && s[0] == '"' {
		return ""
	}
	return s
}

// isNameByte reports whether c may be part of a cookie name (an RFC 9110
// token character).
func isNameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Cookie returns the name and value of the cookie a browser stores from
// line, by the name and value it sends back (RFC 6265bis §5.6): the
// name-value pair ends at the first ';', the name at the first '=', both
// trimmed of spaces and tabs, the value of one pair of double quotes. A
// nameless line ("=session=T", or "session=T" after an empty name) sets a
// cookie that the browser sends back as "session=T", so it is read as
// setting the name before its second '='. ok is false for a line a browser
// stores as no named cookie.
func Cookie(line string) (name, value string, ok bool) {
	pair, _, _ := strings.Cut(line, ";")
	k, v, ok := strings.Cut(pair, "=")
	if !ok {
		return "", "", false
	}
	if k = trimWS(k); k == "" {
		// A nameless cookie: its value is what the browser will send.
		if k, v, ok = strings.Cut(trimWS(v), "="); !ok {
			return "", "", false
		}
		k = trimWS(k)
	}
	v = trimWS(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return k, v, true
}

// Value reports whether line sets, as Cookie reads it, a cookie named by
// one of names (ASCII case-insensitively, as Classify compares), and returns
// its value.
func Value(line string, names ...string) (string, bool) {
	k, v, ok := Cookie(line)
	if !ok {
		return "", false
	}
	for _, name := range names {
		if name != "" && strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// Smuggles reports whether line mentions a cookie named by one of names
// with a value anywhere but in the cookie a browser stores from it (see
// Cookie): after a comma, in an attribute, in another cookie's value, or as
// a second name. Some client or intermediary reads such a line as setting
// the cookie; no honest code writes one. It is Classify's Smuggled for a
// line whose nameless prefix ("=" before the name) is removed first.
func Smuggles(line string, names ...string) bool {
	pair, _, _ := strings.Cut(line, ";")
	if k, v, ok := strings.Cut(pair, "="); ok && trimWS(k) == "" {
		if _, _, ok := strings.Cut(v, "="); ok {
			line = line[len(k)+1:]
		}
	}
	kind, _ := Classify(line, names...)
	return kind == Smuggled
}

// Deletes reports whether a browser that applies line keeps no value of the
// line's cookie: the value is empty, or Expired(line).
func Deletes(line string) bool {
	_, v, ok := Cookie(line)
	return !ok || v == "" || Expired(line)
}

// Expired reports whether line's attributes delete its cookie, read the
// strict way: the last valid Max-Age (digits, optionally after a '-') wins
// and deletes when it is zero or negative; without one, the last Expires
// deletes only when it is a date (RFC 1123, RFC 850 or ANSI C form) in
// 1970-1999. A date is compared with the browser's clock, not the server's,
// so a date just past could install the cookie on a browser running slow;
// a year before 1970 is one browsers refuse (before 1601) or read in
// another century (a two-digit 69 is 2069 to a browser, 1969 to Go).
// Anything else, an unreadable date included, is not a deletion, and the
// line must be checked like any other.
func Expired(line string) bool {
	_, attrs, _ := strings.Cut(line, ";")
	maxAge, haveMaxAge, expires := 0, false, ""
	for attrs != "" {
		var a string
		a, attrs, _ = strings.Cut(attrs, ";")
		k, v, _ := strings.Cut(a, "=")
		k, v = trimWS(k), trimWS(v)
		switch {
		case strings.EqualFold(k, "max-age"):
			if n, ok := parseMaxAge(v); ok {
				maxAge, haveMaxAge = n, true
			}
		case strings.EqualFold(k, "expires"):
			expires = v
		}
	}
	if haveMaxAge {
		return maxAge <= 0
	}
	if expires == "" {
		return false
	}
	t, err := http.ParseTime(expires)
	return err == nil && 1970 <= t.Year() && t.Year() < 2000
}

// trimWS trims the white space of a cookie line: spaces and horizontal
// tabs (and CR and LF, which a header value cannot hold on the wire), as
// net/http does; not the other Unicode spaces strings.TrimSpace removes,
// which a browser keeps.
func trimWS(s string) string { return strings.Trim(s, " \t\r\n") }

// parseMaxAge reads a Max-Age value as RFC 6265bis §5.6.2 does: an optional
// '-' and digits; anything else is ignored. Large values saturate.
func parseMaxAge(v string) (int, bool) {
	neg := strings.HasPrefix(v, "-")
	d := strings.TrimPrefix(v, "-")
	if d == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(d); i++ {
		c := d[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1<<30 {
			n = n*10 + int(c-'0')
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// IsSetCookieKey reports whether a header map key reaches the wire as
// Set-Cookie: net/http writes a map key as it is spelled, and header names
// are case-insensitive.
func IsSetCookieKey(k string) bool {
	return len(k) == len("Set-Cookie") && strings.EqualFold(k, "Set-Cookie")
}

// IsSetCookieTrailerKey reports whether a header map key is sent by net/http
// as a Set-Cookie trailer (http.TrailerPrefix followed by any spelling of
// Set-Cookie).
func IsSetCookieTrailerKey(k string) bool {
	if len(k) < len(http.TrailerPrefix)+len("Set-Cookie") {
		return false
	}
	rest, ok := strings.CutPrefix(k, http.TrailerPrefix)
	return ok && IsSetCookieKey(strings.TrimSpace(rest))
}

// DeclaresSetCookie reports whether a Trailer header value announces
// Set-Cookie as a trailer, and returns the value without it.
func DeclaresSetCookie(v string) (string, bool) {
	if !strings.Contains(strings.ToLower(v), "set-cookie") {
		return v, false
	}
	var kept []string
	found := false
	for f := range strings.SplitSeq(v, ",") {
		if IsSetCookieKey(strings.TrimSpace(f)) {
			found = true
			continue
		}
		kept = append(kept, strings.TrimSpace(f))
	}
	return strings.Join(kept, ", "), found
}
