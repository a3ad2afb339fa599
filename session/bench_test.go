package session

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cordon-sec/cordon/store/memstore"
)

// benchHandler reads one value and writes one value, the shape the
// comparison benchmarks in bench/ use.
var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	s := From(r)
	v, _ := s.GetString("greeting")
	if err := s.Put("greeting", "hello"); err != nil {
		panic(err)
	}
	w.Write([]byte(v))
})

var readHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	v, _ := From(r).GetString("greeting")
	w.Write([]byte(v))
})

func benchMiddleware(b *testing.B, h http.Handler, adjust func(*Manager)) {
	m := New(memstore.New(memstore.Options{}), Options{Logger: quiet})
	defer m.Close()
	if adjust != nil {
		adjust(m)
	}
	mw := m.Middleware(h)
	// Sign in once to get a valid cookie.
	login := httptest.NewRecorder()
	m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		From(r).Login("alice")
		From(r).Put("greeting", "hello")
	})).ServeHTTP(login, httptest.NewRequest("GET", "https://example.com/", nil))
	cookie := login.Result().Cookies()[0]
	req := httptest.NewRequest("GET", "https://example.com/", nil)
	req.AddCookie(cookie)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		mw.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.String() != "hello" {
			b.Fatalf("status %d body %q", rec.Code, rec.Body)
		}
	}
}

func BenchmarkBare(b *testing.B) {
	req := httptest.NewRequest("GET", "https://example.com/", nil)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func BenchmarkMiddlewareReadWrite(b *testing.B) { benchMiddleware(b, benchHandler, nil) }
func BenchmarkMiddlewareRead(b *testing.B)      { benchMiddleware(b, readHandler, nil) }

// BenchmarkProtections compares the middleware with each protection on and
// off, side by side in one run: "unguarded" replaces the guard by a plain
// writer that commits and adds the cookie and checks nothing (what any
// session library does); "unsealed" records no origin and checks no seal.
func BenchmarkProtections(b *testing.B) {
	for _, v := range []struct {
		name            string
		noGuard, noSeal bool
	}{
		{"full", false, false},
		{"unguarded", true, false},
		{"unsealed", false, true},
		{"unprotected", true, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			benchMiddleware(b, benchHandler, func(m *Manager) { m.noGuard, m.noSeal = v.noGuard, v.noSeal })
		})
	}
}
