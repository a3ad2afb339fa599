package demo

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// bodyCases are strings that exercise every escape appendJSONString makes.
var bodyCases = []string{
	"", "bench", `quote " and \ backslash`, "<script>&amp;</script>",
	"\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f", "line\u2028sep\u2029para",
	"bad \xff\xfe utf-8 \xc3", "é ü 漢字 🙂", "\xe2\x80", "\xed\xa0\x80 surrogate",
}

// checkBody fails unless appendBody encodes v exactly as json.Marshal
// does, plus the newline.
func checkBody(t *testing.T, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendBody(nil, v)
	if !ok || !bytes.Equal(got, append(want, '\n')) {
		t.Errorf("appendBody(%#v) = %q, %v; json.Marshal says %q", v, got, ok, want)
	}
	if !json.Valid(got) {
		t.Errorf("appendBody(%#v) = %q: not valid JSON", v, got)
	}
}

func TestAppendBodyIsMarshal(t *testing.T) {
	checkBody(t, userBody{})
	for _, s := range bodyCases {
		checkBody(t, userBody{User: &s})
		checkBody(t, errBody{Error: s})
	}
	// Anything else goes through encoding/json.
	checkBody(t, map[string]int{"n": 1})
	if _, ok := appendBody(nil, func() {}); ok {
		t.Error("a value json cannot encode was reported encoded")
	}
}

func FuzzAppendBody(f *testing.F) {
	for _, s := range bodyCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkBody(t, userBody{User: &s})
		checkBody(t, errBody{Error: s})
	})
}

// TestWriteJSON: the answer's status, Content-Type and body, for
// writeJSON and for whoami's writeUser (from a pooled buffer, used again),
// and an answer that cannot be encoded becomes a 500 with the generic
// error.
func TestWriteJSON(t *testing.T) {
	var bufs bodyBufs
	name := "alice"
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusCreated, userBody{User: &name})
	if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != "{\"user\":\"alice\"}\n" {
		t.Errorf("writeJSON: %d %q %q", rec.Code, rec.Header(), rec.Body)
	}
	for _, user := range []string{"", "alice", "<b>\xff"} {
		rec := httptest.NewRecorder()
		writeUser(rec, &bufs, user)
		want, _ := json.Marshal(userBody{User: &user})
		if user == "" {
			want = []byte(`{"user":null}`)
		}
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != string(want)+"\n" {
			t.Errorf("writeUser(%q): %d %q %q", user, rec.Code, rec.Header(), rec.Body)
		}
	}
	rec = httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, func() {})
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != "{\"error\":\"internal error\"}\n" {
		t.Errorf("unencodable: %d %q", rec.Code, rec.Body)
	}
}

// TestSecurityHeaderKeys: the keys securityHeaders puts straight into the
// header map are canonical (else Header.Get would not find them and a
// second, differently spelled header could go out).
func TestSecurityHeaderKeys(t *testing.T) {
	for _, k := range securityHeaderKeys {
		if c := http.CanonicalHeaderKey(k); c != k {
			t.Errorf("%q is not canonical (%q)", k, c)
		}
	}
}

// TestSecurityHeadersPerResponse: each response gets the headers, replacing
// a value set before, and its own copy of them: a handler that changes or
// appends to one response's header changes no other response's.
func TestSecurityHeadersPerResponse(t *testing.T) {
	h := securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/tamper" {
			w.Header()["X-Frame-Options"][0] = "ALLOWALL"
			w.Header().Add("Cache-Control", "public")
		}
	}))
	for _, path := range []string{"/tamper", "/", "/tamper", "/"} {
		rec := httptest.NewRecorder()
		rec.Header().Set("Cache-Control", "public, max-age=60")
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if path == "/tamper" {
			continue
		}
		for i, k := range securityHeaderKeys {
			if got := rec.Header().Values(k); len(got) != 1 || got[0] != securityHeaderValues[i] {
				t.Errorf("%s %s = %q, want %q", path, k, got, securityHeaderValues[i])
			}
		}
	}
}
