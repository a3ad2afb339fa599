package h1

import (
	"net/http"
	"net/textproto"
	"strings"
)

// ReadFields adds to h the header fields of block: CRLF-ended lines
// "Name: value", up to a blank line or the end of block, read as
// textproto reads them (the name canonical, the value trimmed of blanks,
// each name's values in order, all the values slices of one array). It
// reports false, leaving h as it was, when a line is not of that plain
// shape: no colon, a name that is not a token, a control byte but HTAB (or
// DEL) in the value, no CRLF at its end; the caller then gives the block to
// net/http or textproto, which decide what it means.
func ReadFields(block string, h http.Header) bool {
	n := 0
	for rest := block; rest != ""; n++ {
		line, r, ok := strings.Cut(rest, "\r\n")
		if !ok {
			return false
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !ValidFieldName(name) || !validValue(value) { // the value before trimming, as net/http checks it
			return false
		}
		rest = r
	}
	vals := make([]string, n)
	rest := block
	for i := range n {
		var line string
		line, rest, _ = strings.Cut(rest, "\r\n")
		name, value, _ := strings.Cut(line, ":")
		k, v := textproto.CanonicalMIMEHeaderKey(name), textproto.TrimString(value)
		if vs, dup := h[k]; dup {
			h[k] = append(vs, v)
		} else {
			vals[i] = v
			h[k] = vals[i : i+1 : i+1]
		}
	}
	return true
}

// tokenChar is RFC 9110's tchar.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// ValidFieldName reports whether s is a header field name: a token (RFC
// 9110, 5.1).
func ValidFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// validValue reports whether s is a field value net/http accepts the same
// way: no control byte but HTAB, no DEL.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// validTarget reports whether an origin-form request target has only the
// bytes a URI may carry (no space, control byte, DEL or byte over 0x7f:
// net/http decides about those).
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || b == '#' {
			return false
		}
	}
	return true
}

// validHost reports whether s is a host[:port] of the plain kind: a
// registered name, an IPv4 address or a bracketed IPv6 address. Anything
// else goes to net/http, which rejects what it must.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '.', b == '-', b == ':', b == '[', b == ']', b == '_':
		default:
			return false
		}
	}
	return true
}

// HasToken reports whether the comma-separated list v (a Connection
// header's value, say) holds tok, in any case.
func HasToken(v, tok string) bool {
	for v != "" {
		var f string
		f, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.Trim(f, " \t"), tok) {
			return true
		}
	}
	return false
}
