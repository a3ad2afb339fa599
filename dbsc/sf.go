package dbsc

import (
	"errors"
	"strings"
)

// Header field names.
const (
	HeaderRegistration = "Secure-Session-Registration"
	HeaderChallenge    = "Secure-Session-Challenge"
	HeaderResponse     = "Secure-Session-Response"
	HeaderSessionID    = "Sec-Secure-Session-Id"
)

// MaxHeaderLen bounds what [HeaderString] reads: a proof carrying a 4096-bit
// RSA key is about 1.3 KB, so 8 KiB leaves room and no more.
const MaxHeaderLen = 8 << 10

// ErrHeader reports a request header field that is neither a structured
// field string nor a raw value of the characters a proof or session
// identifier may hold.
var ErrHeader = errors.New("dbsc: malformed header field")

// RegistrationHeader returns the value of a Secure-Session-Registration
// field offering the algorithms algs (for example "ES256", "RS256"), the
// registration endpoint path, a challenge and, unless empty, an
// authorization value that the browser copies into its proof. It returns
// an error for a value a structured-field string cannot hold (the
// challenges [Challenges] makes always fit).
func RegistrationHeader(algs []string, path, challenge, authorization string) (string, error) {
	if len(algs) == 0 {
		return "", errors.New("dbsc: no algorithm offered")
	}
	var b strings.Builder
	b.WriteByte('(')
	for i, a := range algs {
		if _, ok := allowedAlgs[a]; !ok {
			return "", errors.New("dbsc: algorithm " + quoteForError(a) + " is not offered by this package")
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a)
	}
	b.WriteByte(')')
	for _, p := range [...]struct{ k, v string }{{"path", path}, {"challenge", challenge}, {"authorization", authorization}} {
		if p.v == "" && p.k == "authorization" {
			continue
		}
		q, err := sfString(p.v)
		if err != nil {
			return "", err
		}
		b.WriteString(";" + p.k + "=" + q)
	}
	return b.String(), nil
}

// ChallengeHeader returns the value of a Secure-Session-Challenge field:
// challenge as a structured-field string with the parameter id naming the
// session.
func ChallengeHeader(challenge, sessionID string) (string, error) {
	c, err := sfString(challenge)
	if err != nil {
		return "", err
	}
	id, err := sfString(sessionID)
	if err != nil {
		return "", err
	}
	return c + ";id=" + id, nil
}

// sfString serializes s as an RFC 9651 string: printable ASCII, with '"'
// and '\' escaped.
func sfString(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errors.New("dbsc: a structured-field string holds printable ASCII only")
		}
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String(), nil
}

// HeaderString reads a request header field that the draft defines as a
// structured-field string (Secure-Session-Response, Sec-Secure-Session-Id).
// It accepts the string form, ignoring any parameters after it, and the raw
// form Chromium sends: a value of base64url characters, '.', '-', '_' and
// '~' (the characters of a compact JWS and of the identifiers this package
// issues). Anything else, an empty value, or a value over [MaxHeaderLen] is
// [ErrHeader].
func HeaderString(v string) (string, error) {
	v = strings.Trim(v, " \t")
	if v == "" || len(v) > MaxHeaderLen {
		return "", ErrHeader
	}
	if v[0] != '"' {
		for i := 0; i < len(v); i++ {
			if !rawChar(v[i]) {
				return "", ErrHeader
			}
		}
		return v, nil
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i == len(v) || (v[i] != '"' && v[i] != '\\') {
				return "", ErrHeader
			}
			b.WriteByte(v[i])
		case c == '"':
			rest := strings.TrimLeft(v[i+1:], " \t")
			if rest != "" && rest[0] != ';' {
				return "", ErrHeader
			}
			if b.Len() == 0 {
				return "", ErrHeader
			}
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return "", ErrHeader
		default:
			b.WriteByte(c)
		}
	}
	return "", ErrHeader // no closing quote
}

func rawChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func quoteForError(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	q, err := sfString(s)
	if err != nil {
		return "(unprintable)"
	}
	return q
}
