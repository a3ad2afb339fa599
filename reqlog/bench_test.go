package reqlog

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// go test -run '^$' -bench . -benchmem ./reqlog

var quiet = slog.New(slog.DiscardHandler)

func BenchmarkEncode(b *testing.B) {
	l := fullLine()
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = AppendJSON(buf[:0], &l)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			out, _ := json.Marshal(&l)
			n = len(out) + 1
		}
		b.SetBytes(int64(n))
	})
}

// directWriter is the naive design the Writer is measured against: encode
// with encoding/json and write each line to the file under a mutex.
type directWriter struct {
	mu sync.Mutex
	f  *os.File
}

func (d *directWriter) WriteLine(l *Line) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err = d.f.Write(b)
	return err
}

type lineWriter interface{ WriteLine(*Line) error }

func benchWriters(b *testing.B, run func(b *testing.B, w lineWriter)) {
	b.Run("Writer_file", func(b *testing.B) {
		// At saturation (no handler work, several hundred MB/s of log) the
		// kernel throttles writes to the disk's speed and a write can stall
		// past the default MaxWait; the long MaxWait here makes the benchmark
		// measure that backpressure instead of counting drops.
		w, err := Open(filepath.Join(b.TempDir(), "log"), WriterOptions{MaxWait: time.Minute, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		run(b, w)
		b.StopTimer()
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		st := w.Stats()
		if st.WriteErrors != 0 {
			b.Fatalf("stats %+v", st)
		}
		b.ReportMetric(float64(st.Dropped)/float64(b.N), "dropped/op")
	})
	b.Run("Writer_discard", func(b *testing.B) {
		w := NewWriter(io.Discard, WriterOptions{Logger: quiet})
		run(b, w)
		b.StopTimer()
		w.Close()
	})
	b.Run("direct_file_write", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		run(b, &directWriter{f: f})
	})
}

func BenchmarkWriteLine(b *testing.B) {
	l := fullLine()
	benchWriters(b, func(b *testing.B, w lineWriter) {
		b.ReportAllocs()
		for b.Loop() {
			w.WriteLine(&l)
		}
	})
}

func BenchmarkWriteLineParallel(b *testing.B) {
	l := fullLine()
	benchWriters(b, func(b *testing.B, w lineWriter) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				w.WriteLine(&l)
			}
		})
	})
}

// nopResponseWriter is the cheapest ResponseWriter, so the benchmark shows
// the middleware's own cost.
type nopResponseWriter struct{ h http.Header }

func (w *nopResponseWriter) Header() http.Header         { return w.h }
func (w *nopResponseWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopResponseWriter) WriteHeader(int)             {}

func benchMiddleware(b *testing.B, parallel bool) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		FromContext(r.Context()).View("u_1842")
		w.Write([]byte("hello"))
	})
	serve := func(b *testing.B, h http.Handler) {
		b.ReportAllocs()
		if !parallel {
			r := httptest.NewRequest("GET", "/notifications?x=1", nil)
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")
			w := &nopResponseWriter{h: http.Header{}}
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			r := httptest.NewRequest("GET", "/notifications?x=1", nil)
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")
			w := &nopResponseWriter{h: http.Header{}}
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
		})
	}
	b.Run("bare", func(b *testing.B) { serve(b, handler) })
	b.Run("reqlog_discard", func(b *testing.B) {
		w := NewWriter(io.Discard, WriterOptions{Logger: quiet})
		defer w.Close()
		serve(b, Middleware(w, Options{})(handler))
	})
	b.Run("reqlog_file", func(b *testing.B) {
		w, err := Open(filepath.Join(b.TempDir(), "log"), WriterOptions{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		serve(b, Middleware(w, Options{})(handler))
		b.StopTimer()
		w.Close()
		b.ReportMetric(float64(w.Stats().Dropped)/float64(b.N), "dropped/op")
	})
}

func BenchmarkMiddleware(b *testing.B)         { benchMiddleware(b, false) }
func BenchmarkMiddlewareParallel(b *testing.B) { benchMiddleware(b, true) }
