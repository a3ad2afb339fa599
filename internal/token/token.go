// Package token is the one form of the random tokens cordon issues (session
// cookies, the proxy's device cookie, device-bound session identifiers, the
// lab's sessions): 32 bytes from a random source, written in unpadded
// base64url, 43 characters.
//
// The package imports only the standard library, so that the core and every
// other module of cordon can share it.
package token

import (
	"encoding/base64"
	"io"
	"strings"
)

// Bytes is the number of random bytes in a token (256 bits).
const Bytes = 32

// Len is the length of a token as written: base64url, no padding.
const Len = 43 // base64.RawURLEncoding.EncodedLen(Bytes)

// New reads Bytes bytes from r and returns them as a token. Its error is
// r's (io.ErrUnexpectedEOF for a short read), for the caller to wrap.
func New(r io.Reader) (string, error) {
	var b [Bytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Valid reports whether v has the exact form of a token New returns: Len
// characters of the base64url alphabet, the last one leaving the two spare
// bits zero (43 characters carry 258 bits; with a stray bit set, two
// spellings would name one token). It looks only at the form.
func Valid(v string) bool {
	if len(v) != Len {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return strings.IndexByte("AEIMQUYcgkosw048", v[Len-1]) >= 0
}
