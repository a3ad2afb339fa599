package ginsession

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/cordon-sec/cordon/internal/testswitch"
	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

// The hostile suite through gin: each shape runs with every protection on
// (no crossing) and with the one that stops it off (the oracle must see a
// crossing). The net/http suite is session.TestHostileSuite.

type ginEnv struct {
	// engine is served in process, request after request on the test's
	// goroutine, so that gin's pool hands its context and writer from one
	// request to the next and nothing races but the hostile code.
	engine *gin.Engine
	m      *session.Manager
	bob    string // bob's token
	alice  string // alice's token
	// strike, if set, is run at the start of alice's /victim request:
	// the hostile code of a kept writer.
	strike chan func()
	kept   chan gin.ResponseWriter
}

type ginAttack struct {
	name, off string
	// route is served at /x (alice requests it) unless drive is set.
	route func(e *ginEnv) gin.HandlerFunc
	drive func(t *testing.T, e *ginEnv) (http.Header, string)
}

func newGinEnv(t *testing.T, a ginAttack, off bool) *ginEnv {
	t.Helper()
	gin.SetMode(gin.TestMode)
	e := &ginEnv{strike: make(chan func(), 1), kept: make(chan gin.ResponseWriter, 1)}
	e.m = session.New(memstore.New(memstore.Options{}), session.Options{Dev: true, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { e.m.Close() })
	if off && !testswitch.Off(e.m, a.off) {
		t.Fatalf("unknown protection %q", a.off)
	}
	r := gin.New()
	r.Use(Middleware(e.m))
	r.GET("/login", func(c *gin.Context) {
		if err := From(c).Login(c.Query("u")); err != nil {
			c.String(500, err.Error())
			return
		}
		c.String(200, "ok")
	})
	r.GET("/keep", func(c *gin.Context) {
		e.kept <- c.Writer //cordonvet:ignore the suite keeps the writer on purpose, to prove a kept writer is refused
		c.String(200, "bob's page")
	})
	r.GET("/victim", func(c *gin.Context) {
		select {
		case f := <-e.strike:
			f()
		default:
		}
		time.Sleep(time.Millisecond)
		p, _ := From(c).Principal()
		c.String(200, p)
	})
	if a.route != nil {
		r.GET("/x", a.route(e))
	}
	e.engine = r
	e.bob = ginLogin(t, e, "bob")
	e.alice = ginLogin(t, e, "alice")
	return e
}

func ginLogin(t *testing.T, e *ginEnv, user string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	e.engine.ServeHTTP(rec, httptest.NewRequest("GET", "/login?u="+user, nil))
	for _, c := range rec.Result().Cookies() {
		if c.Name == "session" {
			return c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// ginGet requests path with alice's cookie and returns headers, trailers
// and body as one header map and the body.
func ginGet(t *testing.T, e *ginEnv, path string) (http.Header, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Cookie", "session="+e.alice)
	rec := httptest.NewRecorder()
	e.engine.ServeHTTP(rec, req)
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

func ginInject(key, line string) func(e *ginEnv) gin.HandlerFunc {
	return func(e *ginEnv) gin.HandlerFunc {
		return func(c *gin.Context) {
			c.Writer.Header()[key] = append(c.Writer.Header()[key], strings.ReplaceAll(line, "T", e.bob))
			c.String(200, "body for alice")
		}
	}
}

// keptWriter: bob's request keeps c.Writer; while alice's request runs on
// gin's recycled context and writer, the kept writer strikes. gin's pool
// does not always hand the same writer back (the race detector drops
// pooled objects at random), so the shape is tried several times.
func keptWriter(use func(w gin.ResponseWriter, bob string)) func(t *testing.T, e *ginEnv) (http.Header, string) {
	return func(t *testing.T, e *ginEnv) (http.Header, string) {
		var all http.Header = http.Header{}
		for range 12 {
			e.engine.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/keep", nil))
			w := <-e.kept
			done := make(chan struct{})
			e.strike <- func() { use(w, e.bob); close(done) }
			h, body := ginGet(t, e, "/victim")
			<-done
			for k, v := range h {
				all[k] = append(all[k], v...)
			}
			if body != "alice" && body != "" {
				all["Body"] = append(all["Body"], body)
			}
		}
		return all, ""
	}
}

var ginAttacks = []ginAttack{
	{name: "c.Header", off: "guard", route: func(e *ginEnv) gin.HandlerFunc {
		return func(c *gin.Context) { c.Header("Set-Cookie", "session="+e.bob); c.String(200, "body for alice") }
	}},
	{name: "c.SetCookie", off: "guard", route: func(e *ginEnv) gin.HandlerFunc {
		return func(c *gin.Context) {
			c.SetCookie("session", e.bob, 0, "/", "", false, true)
			c.String(200, "body for alice")
		}
	}},
	{name: "lower-case key", off: "canonical", route: ginInject("set-cookie", "session=T")},
	{name: "trailer by prefix", off: "trailers", route: ginInject(http.TrailerPrefix+"Set-Cookie", "session=T")},
	{name: "comma-joined", off: "smuggled", route: ginInject("Set-Cookie", "x=1, session=T")},
	{name: "nameless", off: "smuggled", route: ginInject("Set-Cookie", "=session=T")},
	{name: "raw writer by Unwrap", off: "unwrap", route: func(e *ginEnv) gin.HandlerFunc {
		return func(c *gin.Context) {
			var raw http.ResponseWriter = c.Writer
			for {
				u, ok := raw.(interface{ Unwrap() http.ResponseWriter })
				if !ok {
					break
				}
				raw = u.Unwrap()
			}
			raw.Header().Add("Set-Cookie", "session="+e.bob)
			raw.WriteHeader(200)
			io.WriteString(raw, "body for alice")
		}
	}},
	{name: "kept c.Writer writes into the next response", off: "stale", drive: keptWriter(func(w gin.ResponseWriter, bob string) {
		w.Header().Set("Set-Cookie", "session="+bob)
		w.WriteHeader(200)
		w.WriteString("late")
	})},
	{name: "kept c.Writer, lower-case key, then a write", off: "stale", drive: keptWriter(func(w gin.ResponseWriter, bob string) {
		w.Header()["set-cookie"] = []string{"session=" + bob}
		w.Write([]byte("late"))
	})},
}

func TestHostileGin(t *testing.T) {
	for _, a := range ginAttacks {
		for _, off := range []bool{false, true} {
			name := a.name
			if off {
				name += "/oracle with " + a.off + " off"
			}
			t.Run(name, func(t *testing.T) {
				e := newGinEnv(t, a, off)
				var h http.Header
				var body string
				if a.drive != nil {
					h, body = a.drive(t, e)
				} else {
					h, body = ginGet(t, e, "/x")
				}
				c := carries(h, e.bob)
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
	gin.SetMode(gin.TestMode)
	m := session.New(memstore.New(memstore.Options{}), session.Options{Dev: true, Logger: slog.New(slog.DiscardHandler)})
	defer m.Close()
	r := gin.New()
	r.Use(Middleware(m))
	kept := make(chan *session.Session, 1)
	var origin string
	r.GET("/", func(c *gin.Context) {
		s, here := From(c), scope.Caller(0)
		origin = here
		kept <- s //cordonvet:ignore the test keeps the handle on purpose
	})
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	_, err := (<-kept).Principal()
	if !errors.Is(err, session.ErrRequestEnded) || !strings.Contains(err.Error(), origin) || strings.Contains(err.Error(), "ginsession.go") {
		t.Fatalf("stale error %v, want it to name %s", err, origin)
	}
}
