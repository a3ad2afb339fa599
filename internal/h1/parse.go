package h1

import "strings"

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

// hasToken reports whether the comma-separated list v holds tok, in any
// case.
func hasToken(v, tok string) bool {
	for v != "" {
		var f string
		f, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.Trim(f, " \t"), tok) {
			return true
		}
	}
	return false
}
