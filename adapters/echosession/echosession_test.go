package echosession

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/labstack/echo/v5"

	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/memstore"
)

type kept struct {
	handle *session.Session
	viaCtx error // From(c) on the kept context, after the request ended
}

func setup(t *testing.T) (*httptest.Server, store.Store, chan kept, chan struct{}) {
	t.Helper()
	st := memstore.New(memstore.Options{})
	m := session.New(st, session.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { m.Close() })
	r := echo.New()
	r.Use(Middleware(m))
	r.POST("/login", func(c *echo.Context) error {
		if err := From(c).Login(c.QueryParam("u")); err != nil {
			return c.String(500, err.Error())
		}
		return c.String(200, "ok")
	})
	r.GET("/me", func(c *echo.Context) error {
		p, err := From(c).Principal()
		if err != nil {
			return c.String(500, err.Error())
		}
		return c.String(200, p)
	})
	out := make(chan kept, 1)
	ended := make(chan struct{})
	r.GET("/keep", func(c *echo.Context) error {
		s := From(c)
		c.Set("handle", s) // the context store echo clears and reuses
		// A goroutine keeps the echo context and the handle past the request.
		go func() {
			<-ended // the request is over; gin has not reused c yet
			_, err := From(c).Principal()
			out <- kept{handle: s, viaCtx: err}
		}()
		return c.String(200, "kept")
	})
	r.GET("/inject", func(c *echo.Context) error {
		c.Response().Header().Set("Set-Cookie", "session="+c.QueryParam("tok")+"; Path=/")
		return c.String(200, "body")
	})
	r.GET("/fail", func(c *echo.Context) error {
		c.Response().Header().Set("Set-Cookie", "session="+c.QueryParam("tok")+"; Path=/")
		return echo.ErrForbidden
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, st, out, ended
}

func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

func call(t *testing.T, c *http.Client, method, url string) (int, string, *http.Response) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), resp
}

func TestSessionThroughEcho(t *testing.T) {
	srv, _, _, _ := setup(t)
	c := client(t)
	if code, body, _ := call(t, c, "POST", srv.URL+"/login?u=alice"); code != 200 || body != "ok" {
		t.Fatalf("login: %d %q", code, body)
	}
	if _, body, _ := call(t, c, "GET", srv.URL+"/me"); body != "alice" {
		t.Fatalf("me = %q", body)
	}
}

func TestKeptContextAndHandleAreSealed(t *testing.T) {
	srv, _, out, ended := setup(t)
	alice, bob := client(t), client(t)
	call(t, alice, "POST", srv.URL+"/login?u=alice")
	call(t, bob, "POST", srv.URL+"/login?u=bob")
	call(t, alice, "GET", srv.URL+"/keep")
	close(ended)
	k := <-out
	if !errors.Is(k.viaCtx, session.ErrRequestEnded) {
		t.Fatalf("From on the kept echo context after the request = %v, want ErrRequestEnded", k.viaCtx)
	}
	// echo now reuses its pooled context for bob's requests; the handle
	// alice's request handed out stays sealed and cannot reach bob.
	for range 5 {
		if _, body, _ := call(t, bob, "GET", srv.URL+"/me"); body != "bob" {
			t.Fatalf("bob sees %q", body)
		}
		if _, err := k.handle.Principal(); !errors.Is(err, session.ErrRequestEnded) {
			t.Fatalf("kept handle after reuse: %v, want ErrRequestEnded", err)
		}
		if err := k.handle.Login("mallory"); !errors.Is(err, session.ErrRequestEnded) {
			t.Fatalf("kept handle Login after reuse: %v, want ErrRequestEnded", err)
		}
	}
	if _, body, _ := call(t, bob, "GET", srv.URL+"/me"); body != "bob" {
		t.Fatalf("bob became %q", body)
	}
}

func TestGuardSeesEchoHeaders(t *testing.T) {
	srv, _, _, _ := setup(t)
	bob := client(t)
	call(t, bob, "POST", srv.URL+"/login?u=bob")
	var bobTok string
	for _, ck := range bob.Jar.Cookies(mustURL(t, srv.URL)) {
		bobTok = ck.Value
	}
	alice := client(t)
	call(t, alice, "POST", srv.URL+"/login?u=alice")
	code, body, resp := call(t, alice, "GET", srv.URL+"/inject?tok="+bobTok)
	if code != 500 || body == "body" || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("a handler's hand-written session cookie passed: %d %q %q", code, body, resp.Header.Values("Set-Cookie"))
	}
	// An error rendered by echo's error handler passes the guard too.
	if code, _, resp := call(t, alice, "GET", srv.URL+"/fail?tok="+bobTok); code == 200 || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("an error response carried a foreign cookie: %d %q", code, resp.Header.Values("Set-Cookie"))
	}
	if _, me, _ := call(t, alice, "GET", srv.URL+"/me"); me != "alice" {
		t.Fatalf("alice became %q", me)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
