package session

import (
	"bytes"
	"encoding/base64"
	"maps"
	"net/http"
	"testing"
)

// FuzzCookie feeds arbitrary Cookie headers to the cookie reader and the
// token check: neither may panic, and whatever the check accepts must be
// exactly a canonical encoding of 32 bytes.
func FuzzCookie(f *testing.F) {
	f.Add("session=" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("a=b; session=\"x\"; session=y")
	f.Add("session=" + string(bytes.Repeat([]byte("A"), 5000)))
	f.Add("session")
	f.Add(";;;=;session=;")
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Cookie": {header, header}}}
		var buf [maxCandidates]string
		vals := requestCookies(r, "session", buf[:0])
		if len(vals) > maxCandidates {
			t.Fatalf("%d candidate values, more than %d", len(vals), maxCandidates)
		}
		for i := range vals {
			for j := i + 1; j < len(vals); j++ {
				if vals[i] == vals[j] {
					t.Fatalf("candidate %q twice", vals[i])
				}
			}
		}
		v, ok := requestCookie(r, "session")
		if ok != (len(vals) > 0) || ok && v != vals[0] {
			t.Fatalf("requestCookie = %q %v, candidates %q", v, ok, vals)
		}
		if !ok {
			return
		}
		if checkToken(v) != "" {
			return
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(v)
		if err != nil || len(b) != 32 {
			t.Fatalf("accepted %q: decodes to %d bytes, %v", v, len(b), err)
		}
		if base64.RawURLEncoding.EncodeToString(b) != v {
			t.Fatalf("accepted non-canonical %q", v)
		}
	})
}

// FuzzDecodeValues feeds arbitrary bytes to the session-data decoder: it may
// refuse them but never panic, and what it accepts must re-encode to a form
// that decodes to the same values.
func FuzzDecodeValues(f *testing.F) {
	f.Add([]byte{})
	f.Add(encodeValues(map[string]any{"s": "x", "n": int64(-3), "l": []any{true, 1.5, nil}, "m": map[string]any{"k": []string{"a"}}}))
	f.Add([]byte{1, 1, 'k', tagList, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 1, 'k', tagTime, 2, 0, 0})
	changes := map[string]change{"s": {v: "new"}, "zz": {v: int64(7)}, "a": {del: true}, "m": {del: true}, "": {v: true}}
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := decodeValues(data)
		// Reading one value without decoding the rest, and a commit that
		// merges changes into the encoding, refuse what decodeValues
		// refuses and agree with it on what it accepts.
		merged, mergeErr := applyChanges(data, changes)
		for _, k := range []string{"s", "n", "k", "a", ""} {
			raw, ok, lerr := lookupValue(data, k)
			if (lerr != nil) != (err != nil) {
				t.Fatalf("lookupValue(%q) error %v, decodeValues error %v", k, lerr, err)
			}
			if err != nil {
				continue
			}
			want, had := vals[k]
			if ok != had {
				t.Fatalf("lookupValue(%q) found %v, decodeValues %v", k, ok, had)
			}
			if ok {
				got, derr := decodeRaw(raw)
				if derr != nil || !bytes.Equal(encodeValues(map[string]any{k: got}), encodeValues(map[string]any{k: want})) {
					t.Fatalf("lookupValue(%q) = %#v (%v), decodeValues %#v", k, got, derr, want)
				}
			}
		}
		if (mergeErr != nil) != (err != nil) {
			t.Fatalf("applyChanges error %v, decodeValues error %v", mergeErr, err)
		}
		if err != nil {
			return
		}
		applied := maps.Clone(vals)
		for k, c := range changes {
			if c.del {
				delete(applied, k)
			} else {
				applied[k] = c.v
			}
		}
		// The same values; entries it leaves alone keep their bytes, which
		// need not be canonical (a varint may be padded).
		back, derr := decodeValues(merged)
		if want := encodeValues(applied); derr != nil || !bytes.Equal(encodeValues(back), want) {
			t.Fatalf("applyChanges:\n%x\nwant\n%x", merged, want)
		}
		enc := encodeValues(vals)
		again, err := decodeValues(enc)
		if err != nil {
			t.Fatalf("re-encoding of accepted data does not decode: %v", err)
		}
		// Encodings are canonical (sorted keys), and comparing them also
		// treats NaN as equal to itself, which DeepEqual does not.
		if !bytes.Equal(enc, encodeValues(again)) {
			t.Fatalf("round trip changed values:\n%#v\n%#v", vals, again)
		}
	})
}
