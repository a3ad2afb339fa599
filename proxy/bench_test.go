package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cordon-sec/cordon/internal/token"
	"github.com/cordon-sec/cordon/reqlog"
)

// BenchmarkProxyGuarded measures one request through the proxy with the
// guard doing its work: the request presents a device cookie and a bound
// session, the upstream renews the session in its response, and every
// request is written to the request log.
//
//	go test -run=^$ -bench=ProxyGuarded -benchmem ./proxy/
func BenchmarkProxyGuarded(b *testing.B) {
	body := []byte("<!doctype html><p>hello</p>\n")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("sid"); err == nil {
			w.Header()["Set-Cookie"] = []string{"sid=" + c.Value + "; Path=/; HttpOnly"}
		}
		w.Write(body)
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	p, err := New(Options{Upstream: u, SessionCookie: "sid", Dev: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	lw, err := reqlog.Open(filepath.Join(b.TempDir(), "requests.log"), reqlog.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer lw.Close()
	srv := httptest.NewServer(reqlog.Middleware(lw, reqlog.Options{})(p))
	defer srv.Close()
	dev, _ := token.New(rand.Reader)
	sid, _ := token.New(rand.Reader)
	cookie := "cordon-dev=" + dev + "; sid=" + sid
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", srv.URL+"/", nil)
			req.Header.Set("Cookie", cookie)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(resp.Header["Set-Cookie"]) != 1 {
				b.Errorf("status %d, Set-Cookie %d", resp.StatusCode, len(resp.Header["Set-Cookie"]))
				return
			}
		}
	})
}

// loopConn is an upstream connection in memory: every request written to
// it is answered with resp.
type loopConn struct {
	fuzzConn
	resp []byte
	buf  bytes.Buffer
}

func (c *loopConn) Write(p []byte) (int, error) { c.buf.Write(c.resp); return len(p), nil }
func (c *loopConn) Read(p []byte) (int, error)  { return c.buf.Read(p) }

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) WriteHeader(int)             {}
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkProxyServeHTTP measures the proxy's own work per request, with
// the request log written: no sockets, the upstream answered from memory
// through the fast transport. Sub-benchmarks: GET / (a small JSON answer,
// no cookie), GET /login (a fresh session in every response) and GET
// /renew (the presented session renewed).
//
//	go test -run=^$ -bench=ProxyServeHTTP -benchmem ./proxy/
func BenchmarkProxyServeHTTP(b *testing.B) {
	small := `{"ok":true,"user":null,"items":[1,2,3],"msg":"hello, world"}` + "\n"
	for _, tc := range []struct {
		name, path string
		setCookie  func(sid string) string
	}{
		{"root", "/", func(string) string { return "" }},
		{"login", "/login", func(string) string {
			tok, _ := token.New(rand.Reader)
			return "sid=" + tok + "; Path=/; HttpOnly; SameSite=Lax"
		}},
		{"renew", "/renew", func(sid string) string { return "sid=" + sid + "; Path=/; HttpOnly; SameSite=Lax" }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p, err := New(Options{Upstream: mustURL("http://127.0.0.1:1"), SessionCookie: "sid", Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			dev, _ := token.New(rand.Reader)
			sid, _ := token.New(rand.Reader)
			ft := p.opt.Transport.(*fastTransport)
			ft.dial = func(context.Context, string, string) (net.Conn, error) {
				// /login's fresh session per response: the conn's canned
				// answer is rebuilt per dial; the benchmark below rewrites
				// it per request.
				return &loopConn{}, nil
			}
			lw := reqlog.NewWriter(io.Discard, reqlog.WriterOptions{})
			defer lw.Close()
			h := reqlog.Middleware(lw, reqlog.Options{})(p)
			cookie := DeviceCookie + "=" + dev + "; sid=" + sid
			// A context that can end, as a server's is (the lean loop's is
			// the connection's), so the client-gone watch is counted.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := httptest.NewRequestWithContext(ctx, "GET", "http://site.test"+tc.path, nil)
			req.Header.Set("Cookie", cookie)
			answer := func() []byte {
				hdr := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(small)) + "\r\n"
				if sc := tc.setCookie(sid); sc != "" {
					hdr += "Set-Cookie: " + sc + "\r\n"
				}
				return []byte(hdr + "\r\n" + small)
			}
			var c *loopConn
			ft.dial = func(context.Context, string, string) (net.Conn, error) {
				c = &loopConn{resp: answer()}
				return c, nil
			}
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				if c != nil && tc.name == "login" {
					c.resp = answer()
				}
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}
