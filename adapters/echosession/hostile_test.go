package echosession

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v5"

	"github.com/cordon-sec/cordon/internal/testswitch"
	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

// The hostile suite through echo: each shape runs with every protection on
// (no crossing) and with the one that stops it off (the oracle must see a
// crossing). The net/http suite is session.TestHostileSuite.

type echoEnv struct {
	// e is served in process, request after request on the test's
	// goroutine, so that echo's pool hands its context from one request
	// to the next and nothing races but the hostile code.
	e      *echo.Echo
	bob    string
	alice  string
	strike chan func()
	kept   chan http.ResponseWriter
}

type echoAttack struct {
	name, off string
	// outer, if set, is middleware registered before echosession's.
	outer func(env *echoEnv) echo.MiddlewareFunc
	route func(env *echoEnv) echo.HandlerFunc
	drive func(t *testing.T, env *echoEnv) http.Header
}

func newEchoEnv(t *testing.T, a echoAttack, off bool) *echoEnv {
	t.Helper()
	env := &echoEnv{strike: make(chan func(), 1), kept: make(chan http.ResponseWriter, 1)}
	m := session.New(memstore.New(memstore.Options{}), session.Options{Dev: true, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { m.Close() })
	if off && !testswitch.Off(m, a.off) {
		t.Fatalf("unknown protection %q", a.off)
	}
	e := echo.New()
	if a.outer != nil {
		e.Use(a.outer(env))
	}
	e.Use(Middleware(m))
	e.GET("/login", func(c *echo.Context) error {
		if err := From(c).Login(c.QueryParam("u")); err != nil {
			return c.String(500, err.Error())
		}
		return c.String(200, "ok")
	})
	e.GET("/keep", func(c *echo.Context) error {
		env.kept <- c.Response() //cordonvet:ignore the suite keeps the writer on purpose, to prove a kept writer is refused
		return c.String(200, "bob's page")
	})
	e.GET("/victim", func(c *echo.Context) error {
		select {
		case f := <-env.strike:
			f()
		default:
		}
		p, _ := From(c).Principal()
		return c.String(200, p)
	})
	if a.route != nil {
		e.GET("/x", a.route(env))
	}
	env.e = e
	env.bob = echoLogin(t, env, "bob")
	env.alice = echoLogin(t, env, "alice")
	return env
}

func echoLogin(t *testing.T, env *echoEnv, user string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	env.e.ServeHTTP(rec, httptest.NewRequest("GET", "/login?u="+user, nil))
	for _, c := range rec.Result().Cookies() {
		if c.Name == "session" {
			return c.Value
		}
	}
	t.Fatalf("no session cookie: %d %q", rec.Code, rec.Body)
	return ""
}

func echoGet(env *echoEnv, path string) (http.Header, string) {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Cookie", "session="+env.alice)
	rec := httptest.NewRecorder()
	env.e.ServeHTTP(rec, req)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	h := resp.Header.Clone()
	for k, v := range resp.Trailer {
		h["Trailer-"+k] = v
	}
	return h, string(b)
}

func carries(h http.Header, token string) string {
	for k, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, token) {
				return k + ": " + v
			}
		}
	}
	return ""
}

func echoInject(key, line string) func(env *echoEnv) echo.HandlerFunc {
	return func(env *echoEnv) echo.HandlerFunc {
		return func(c *echo.Context) error {
			h := c.Response().Header()
			h[key] = append(h[key], strings.ReplaceAll(line, "T", env.bob))
			return c.String(200, "body for alice")
		}
	}
}

var echoAttacks = []echoAttack{
	{name: "Response().Header()", off: "guard", route: echoInject("Set-Cookie", "session=T; Path=/")},
	{name: "c.SetCookie", off: "guard", route: func(env *echoEnv) echo.HandlerFunc {
		return func(c *echo.Context) error {
			c.SetCookie(&http.Cookie{Name: "session", Value: env.bob, Path: "/"})
			return c.String(200, "body for alice")
		}
	}},
	{name: "error handler", off: "guard", route: func(env *echoEnv) echo.HandlerFunc {
		return func(c *echo.Context) error {
			c.Response().Header().Set("Set-Cookie", "session="+env.bob)
			return echo.ErrForbidden
		}
	}},
	{name: "lower-case key", off: "canonical", route: echoInject("set-cookie", "session=T")},
	{name: "trailer by prefix", off: "trailers", route: echoInject(http.TrailerPrefix+"set-cookie", "session=T")},
	{name: "inside another cookie", off: "smuggled", route: echoInject("Set-Cookie", "x=1; session=T")},
	{name: "Before hook of outer middleware", off: "lastword",
		outer: func(env *echoEnv) echo.MiddlewareFunc {
			return func(next echo.HandlerFunc) echo.HandlerFunc {
				return func(c *echo.Context) error {
					resp, err := echo.UnwrapResponse(c.Response())
					if err != nil {
						return err
					}
					resp.Before(func() {
						if env.bob != "" && c.Request().URL.Path == "/x" {
							resp.Header().Add("Set-Cookie", "session="+env.bob)
						}
					})
					return next(c)
				}
			}
		},
		route: func(env *echoEnv) echo.HandlerFunc {
			return func(c *echo.Context) error { return c.String(200, "body for alice") }
		}},
	{name: "kept c.Response() writes into the next response", off: "stale", drive: func(t *testing.T, env *echoEnv) http.Header {
		all := http.Header{}
		for range 12 {
			env.e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/keep", nil))
			w := <-env.kept
			env.strike <- func() {
				w.Header().Set("Set-Cookie", "session="+env.bob)
				w.WriteHeader(200)
				io.WriteString(w, "late")
			}
			h, _ := echoGet(env, "/victim")
			for k, v := range h {
				all[k] = append(all[k], v...)
			}
		}
		return all
	}},
}

func TestHostileEcho(t *testing.T) {
	for _, a := range echoAttacks {
		for _, off := range []bool{false, true} {
			name := a.name
			if off {
				name += "/oracle with " + a.off + " off"
			}
			t.Run(name, func(t *testing.T) {
				env := newEchoEnv(t, a, off)
				var h http.Header
				var body string
				if a.drive != nil {
					h = a.drive(t, env)
				} else {
					h, body = echoGet(env, "/x")
				}
				c := carries(h, env.bob)
				switch {
				case !off && c != "":
					t.Fatalf("crossing with every protection on: %s", c)
				case !off && a.drive == nil && strings.Contains(body, "body for alice"):
					t.Fatalf("the hostile response passed: %q", body)
				case off && c == "":
					t.Fatalf("%s off and the oracle saw no crossing", a.off)
				}
			})
		}
	}
}

// TestStaleHandleNamesTheApplication: a kept handle's error names the
// application's line that obtained it, not the adapter.
func TestStaleHandleNamesTheApplication(t *testing.T) {
	m := session.New(memstore.New(memstore.Options{}), session.Options{Dev: true, Logger: slog.New(slog.DiscardHandler)})
	defer m.Close()
	e := echo.New()
	e.Use(Middleware(m))
	kept := make(chan *session.Session, 1)
	var origin string
	e.GET("/", func(c *echo.Context) error {
		s, here := From(c), scope.Caller(0)
		origin = here
		kept <- s //cordonvet:ignore the test keeps the handle on purpose
		return nil
	})
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	_, err := (<-kept).Principal()
	if !errors.Is(err, session.ErrRequestEnded) || !strings.Contains(err.Error(), origin) || strings.Contains(err.Error(), "echosession.go") {
		t.Fatalf("stale error %v, want it to name %s", err, origin)
	}
}
