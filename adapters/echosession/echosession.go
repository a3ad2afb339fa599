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
func Middleware(m *session.Manager) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			origReq, origResp := c.Request(), c.Response()
			m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	return session.FromContext(c.Request().Context())
}
