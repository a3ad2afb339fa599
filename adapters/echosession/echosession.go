// Package echosession gives echo (v5) handlers cordon's session, with the
// same guarantees as plain net/http: handles sealed when their request ends,
// and one door for the session cookie.
//
//	m := session.New(st, session.Options{})
//	e := echo.New()
//	e.Use(echosession.Middleware(m))
//	e.GET("/me", func(c *echo.Context) error {
//		user, err := echosession.From(c).Principal()
//		...
//	})
//
// echo pools its *echo.Context and, since v5.2, clears and reuses the
// context's value store between requests — the pattern of the 2021 incident.
// A handle obtained with From during a request is sealed when that request
// ends, so a goroutine that kept it gets ErrRequestEnded however the context
// is reused. A goroutine that keeps the *echo.Context itself and calls From
// on it after echo handed the context to another request reaches that other
// request, as everything else in the context does: take the handle before
// starting a goroutine; cordonvet reports an echo context captured by one.
//
// The module is separate from cordon's core so that the core never depends
// on echo.
package echosession

import (
	"net/http"

	"github.com/labstack/echo/v5"

	"github.com/cordon-sec/cordon/session"
)

// Middleware runs the rest of the echo chain inside m's session middleware.
// A handler's error is rendered by echo's HTTPErrorHandler inside the
// session middleware, so that its response passes the guard too.
//
// The guard's check runs last, after every Before hook: hooks registered by
// handlers and middleware inside run before the guard, and hooks that
// middleware outside this one registered on echo's own Response are
// followed by a second check (session.LastWord) just above the wire, which
// fails the response closed if one of them added a session cookie.
//
// Handlers get a Response of their own request: a goroutine that keeps
// c.Response() gets every write refused after the request (and a stale_use
// line), never the pooled Response that serves the next one.
func Middleware(m *session.Manager) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			origReq, origResp := c.Request(), c.Response()
			// Below echo's own Response, where its Before hooks have run.
			var base *echo.Response
			if r, err := echo.UnwrapResponse(origResp); err == nil && r.ResponseWriter != nil {
				base = r
			}
			bind := func(http.ResponseWriter) {}
			if base != nil {
				raw := base.ResponseWriter
				base.ResponseWriter, bind = session.LastWord(raw)
				defer func() { base.ResponseWriter = raw }()
			}
			m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				bind(w)
				c.SetRequest(r)
				c.SetResponse(echo.NewResponse(w, c.Logger()))
				if err := next(c); err != nil {
					c.Echo().HTTPErrorHandler(c, err)
				}
			})).ServeHTTP(origResp, origReq)
			c.SetResponse(origResp)
			return nil
		}
	}
}

// From returns the session handle of the request c is serving. The handle
// records the caller's file:line, as session.From does.
func From(c *echo.Context) *session.Session {
	return session.FromContextCaller(c.Request().Context(), 1)
}
