package token

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	if got := base64.RawURLEncoding.EncodedLen(Bytes); got != Len {
		t.Fatalf("Len = %d, the encoding gives %d", Len, got)
	}
	src := bytes.NewReader(bytes.Repeat([]byte{0xff}, Bytes))
	v, err := New(src)
	if err != nil || v != strings.Repeat("_", Len-1)+"8" {
		t.Fatalf("New = %q, %v", v, err)
	}
	if !Valid(v) {
		t.Fatalf("Valid(%q) = false", v)
	}
	for range 100 {
		v, err := New(rand.Reader)
		if err != nil || !Valid(v) {
			t.Fatalf("New = %q, %v; valid %v", v, err, Valid(v))
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(v)
		if err != nil || len(b) != Bytes {
			t.Fatalf("%q decodes to %d bytes, %v", v, len(b), err)
		}
	}
}

func TestNewShortRead(t *testing.T) {
	v, err := New(bytes.NewReader(make([]byte, Bytes-1)))
	if v != "" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("New on a short reader = %q, %v", v, err)
	}
	want := errors.New("no entropy")
	if _, err := New(errReader{want}); !errors.Is(err, want) {
		t.Fatalf("New's error = %v, want the reader's", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestValid(t *testing.T) {
	good := strings.Repeat("A", Len)
	for v, want := range map[string]bool{
		good:                             true,
		strings.Repeat("A", Len-1) + "w": true,
		strings.Repeat("A", Len-1) + "B": false, // a stray bit: a second spelling
		strings.Repeat("A", Len-1) + "_": false,
		strings.Repeat("A", Len-1):       false,
		strings.Repeat("A", Len+1):       false,
		good[:Len-1] + "=":               false,
		"A+" + good[2:]:                  false, // standard, not URL, alphabet
		"A/" + good[2:]:                  false,
		"":                               false,
	} {
		if Valid(v) != want {
			t.Errorf("Valid(%q) = %v, want %v", v, !want, want)
		}
	}
}

// TestValidMatchesStrictDecoding: Valid accepts exactly the strings that
// decode, strictly, to Bytes bytes and encode back to themselves.
func TestValidMatchesStrictDecoding(t *testing.T) {
	base := []byte(strings.Repeat("A", Len))
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. "
	for _, pos := range []int{0, 20, Len - 1} {
		for i := 0; i < len(alphabet); i++ {
			v := bytes.Clone(base)
			v[pos] = alphabet[i]
			b, err := base64.RawURLEncoding.Strict().DecodeString(string(v))
			want := err == nil && len(b) == Bytes
			if got := Valid(string(v)); got != want {
				t.Errorf("Valid(%q) = %v, strict decoding says %v", v, got, want)
			}
		}
	}
}

func FuzzValid(f *testing.F) {
	f.Add(strings.Repeat("A", Len))
	f.Add(strings.Repeat("A", Len-1) + "B")
	f.Fuzz(func(t *testing.T, v string) {
		// The decoder skips CR and LF wherever they are; a token has none.
		b, err := base64.RawURLEncoding.Strict().DecodeString(v)
		want := err == nil && len(b) == Bytes && !strings.ContainsAny(v, "\r\n")
		if Valid(v) != want {
			t.Fatalf("Valid(%q) = %v, strict decoding says %v", v, !want, want)
		}
	})
}
