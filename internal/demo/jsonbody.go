package demo

import (
	"encoding/json"
	"net/http"
	"sync"
	"unicode/utf8"
)

// The API's answers are {"user":...} and {"error":...}. They are encoded by
// hand, byte for byte as encoding/json.Marshal encodes userBody and errBody
// (FuzzAppendBody checks that), because whoami answers every request of a
// signed-in API client and Marshal costs several allocations each time.

// jsonCT is the Content-Type of every JSON answer.
const jsonCT = "application/json"

// bodyBufs recycles the buffers whoami's answers are encoded into (a Write must not
// keep its argument, so a buffer is free again once Write returns).
type bodyBufs struct{ pool sync.Pool }

func (p *bodyBufs) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 256)
	return &b
}

func (p *bodyBufs) put(b *[]byte) {
	if cap(*b) <= 4<<10 { // keep the pool's buffers small
		p.pool.Put(b)
	}
}

// writeJSON answers v with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, ok := appendBody(make([]byte, 0, 64), v)
	if !ok {
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`+"\n")
	}
	w.Header()["Content-Type"] = []string{jsonCT}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeUser answers 200 with {"user":principal}, or {"user":null} for
// nobody (""), encoded into a buffer from bufs: whoami's answer.
func writeUser(w http.ResponseWriter, bufs *bodyBufs, principal string) {
	bp := bufs.get()
	defer bufs.put(bp)
	b := append((*bp)[:0], `{"user":`...)
	if principal == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, principal)
	}
	b = append(b, '}', '\n')
	*bp = b
	w.Header()["Content-Type"] = []string{jsonCT}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// appendBody appends v as JSON and a newline. It reports false if v could
// not be encoded.
func appendBody(dst []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case userBody:
		dst = append(dst, `{"user":`...)
		if v.User == nil {
			dst = append(dst, "null"...)
		} else {
			dst = appendJSONString(dst, *v.User)
		}
	case errBody:
		dst = append(dst, `{"error":`...)
		dst = appendJSONString(dst, v.Error)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return dst, false
		}
		return append(append(dst, b...), '\n'), true
	}
	return append(dst, '}', '\n'), true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json.Marshal quotes it:
// quotes, backslashes and control bytes escaped (\b \f \n \r \t short),
// <, > and & as \u003c \u003e \u0026, U+2028 and U+2029 escaped, and each
// byte that is not valid UTF-8 replaced by U+FFFD. The result is valid
// JSON whatever s holds, and safe inside HTML.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
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
