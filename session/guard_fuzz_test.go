package session

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cordon-sec/cordon/internal/setcookie"
	"github.com/cordon-sec/cordon/store/memstore"
)

// FuzzGuardSetCookie: whatever header key and line a handler writes, the
// foreign token never reaches a Set-Cookie line of the response (headers
// or trailers) in a shape that names the session cookie, and the guard
// never panics. The line is prefix + "session=" + the token + suffix.
func FuzzGuardSetCookie(f *testing.F) {
	for _, s := range [][3]string{
		{"Set-Cookie", "", "; Path=/"},
		{"set-cookie", "x=1, ", ""},
		{"SET-COOKIE", "=", ""},
		{"Trailer:Set-Cookie", "", ""},
		{"Trailer:set-cookie", "a=b; ", "; Max-Age=0; Max-Age=60"},
		{"Set-Cookie", "x=", ""},
		{"Set-Cookie", `x="`, `"`},
		{"Set-Cookie", "", "; Max-Age=0"},
		{"sEt-cOoKiE", " ", " ; Secure"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	m := New(memstore.New(memstore.Options{}), Options{Logger: quiet, Dev: true, CleanupInterval: -1})
	f.Cleanup(func() { m.Close() })
	foreign := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	f.Fuzz(func(t *testing.T, key, prefix, suffix string) {
		if len(key)+len(prefix)+len(suffix) > 4096 {
			return
		}
		line := prefix + "session=" + foreign + suffix
		h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()[key] = append(w.Header()[key], line)
			w.Write([]byte("x"))
			w.Header()[key] = append(w.Header()[key], line) // again, after the status line
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/", nil))
		res := rec.Result()
		check := func(where string, hdr http.Header) {
			for k, vs := range hdr {
				if !setcookie.IsSetCookieKey(k) && !setcookie.IsSetCookieTrailerKey(k) {
					continue
				}
				for _, v := range vs {
					if kind, val := setcookie.Classify(v, "session", "__Host-session"); kind != setcookie.None && strings.Contains(val, foreign) {
						t.Fatalf("%s %q: %q left (line %q under %q)", where, k, v, line, key)
					}
				}
			}
		}
		check("header", res.Header)
		check("trailer", res.Trailer)
	})
}
