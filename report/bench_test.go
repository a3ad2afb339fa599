package report

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkMiddleware measures what the report middleware adds to a request
// that reports nothing (the common case), against the bare handler. Run with
//
//	go test -run '^$' -bench 'Middleware|Capture' -benchmem ./report/
func BenchmarkMiddleware(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	req := plantedRequest("GET", "/x")
	rep := New(Options{SessionCookie: "cordon_session"})
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", ok}, {"report", rep.Middleware(ok)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			w := httptest.NewRecorder()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkCapture measures one report with three context values and two
// fields, written as a JSON line.
func BenchmarkCapture(b *testing.B) {
	rep := New(Options{Sinks: []Sink{NewJSONSink(io.Discard)}})
	s := rep.Background("bench")
	if err := s.SetContext(map[string]any{"a": 1, "b": "two", "c": []string{"x", "y"}}); err != nil {
		b.Fatal(err)
	}
	err := errors.New("query timeout")
	b.ReportAllocs()
	for b.Loop() {
		s.Capture(err, "attempt", 3, "table", "flags")
	}
}
