// Package jsonstr appends Go strings as JSON strings without encoding/json's
// reflection and allocations, for the request log's lines and the demo's
// answers.
package jsonstr

import "unicode/utf8"

// Style is a way of spelling the escapes.
type Style int

const (
	// Log is the request log's spelling: no HTML escaping, every control
	// byte but \n, \r and \t as \u00XX.
	Log Style = iota
	// Marshal is encoding/json.Marshal's, byte for byte: <, > and & as
	// \u003c, \u003e and \u0026, and \b and \f short, so the result is
	// safe inside HTML.
	Marshal
)

const hexDigits = "0123456789abcdef"

// asIs[style][b] reports whether the byte b is copied as it is: printable
// ASCII but the quote, the backslash and, for Marshal, <, > and &. Bytes
// from utf8.RuneSelf up are not: they take the UTF-8 path.
var asIs = [...][256]bool{Log: asIsTable(false), Marshal: asIsTable(true)}

func asIsTable(html bool) (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && (!html || b != '<' && b != '>' && b != '&')
	}
	return t
}

// Append appends s as a quoted JSON string in the given style. Quotes,
// backslashes and control bytes are escaped, U+2028 and U+2029 too, and
// each byte that is not valid UTF-8 is replaced by U+FFFD, so the result
// is valid JSON whatever s holds.
func Append(dst []byte, s string, style Style) []byte {
	html := style == Marshal
	plain := &asIs[style]
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if plain[s[i]] {
			i++
			continue
		}
		if b := s[i]; b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b == '\n':
				dst = append(dst, '\\', 'n')
			case b == '\r':
				dst = append(dst, '\\', 'r')
			case b == '\t':
				dst = append(dst, '\\', 't')
			case html && b == '\b':
				dst = append(dst, '\\', 'b')
			case html && b == '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
