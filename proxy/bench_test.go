package proxy

import (
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

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
	dev, _ := newToken(rand.Reader)
	sid, _ := newToken(rand.Reader)
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
