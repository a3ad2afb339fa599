// Package ginsession gives gin handlers cordon's session, with the same
// guarantees as plain net/http: handles sealed when their request ends, and
// one door for the session cookie.
//
//	m := session.New(st, session.Options{})
//	r := gin.New()
//	r.Use(ginsession.Middleware(m))
//	r.GET("/me", func(c *gin.Context) {
//		user, err := ginsession.From(c).Principal()
//		...
//	})
//
// gin recycles its *gin.Context between requests. A handle obtained with
// From during a request is sealed when that request ends, so a goroutine
// that kept it gets ErrRequestEnded however the context is reused. What
// cordon cannot see is a goroutine that keeps the *gin.Context itself and
// calls From on it again after gin has handed the context to another
// request: it then reaches that other request, as everything else in the
// context does. Take the handle (or c.Copy()) before starting a goroutine;
// cordonvet reports a *gin.Context captured by a goroutine.
//
// The module is separate from cordon's core so that the core never depends
// on gin.
package ginsession

import (
	"bufio"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/cordon-sec/cordon/session"
)

// Middleware runs the rest of the gin chain inside m's session middleware.
// Register it before any handler that uses sessions.
func Middleware(m *session.Manager) gin.HandlerFunc {
	return func(c *gin.Context) {
		orig := c.Writer
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gw := &writer{ResponseWriter: orig, guard: w}
			c.Request, c.Writer = r, gw
			c.Next()
			gw.WriteHeaderNow()
		})).ServeHTTP(orig, c.Request)
		c.Writer = orig
	}
}

// From returns the session handle of the request c is serving. The handle
// records the caller's file:line, as session.From does.
func From(c *gin.Context) *session.Session {
	return session.FromContext(c.Request.Context())
}

// writer routes gin's writes through cordon's guard. gin sets the status
// lazily (WriteHeader only records it); so does writer, so that headers a
// handler adds after c.Status still pass the guard before anything is sent.
type writer struct {
	gin.ResponseWriter                     // gin's own writer: sizes, CloseNotify, Pusher
	guard              http.ResponseWriter // cordon's guard, in front of gin's writer
	status             int
	sent               bool
}

func (w *writer) Header() http.Header { return w.guard.Header() }

func (w *writer) WriteHeader(code int) {
	if !w.sent && code > 0 {
		w.status = code
	}
}

func (w *writer) WriteHeaderNow() {
	if w.sent {
		return
	}
	w.sent = true
	code := w.status
	if code == 0 {
		code = http.StatusOK
	}
	w.guard.WriteHeader(code)
	w.ResponseWriter.WriteHeaderNow()
}

func (w *writer) Write(p []byte) (int, error) {
	w.WriteHeaderNow()
	return w.guard.Write(p)
}

func (w *writer) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

func (w *writer) Status() int {
	if !w.sent && w.status != 0 {
		return w.status
	}
	return w.ResponseWriter.Status()
}

func (w *writer) Written() bool { return w.sent }

func (w *writer) Flush() {
	w.WriteHeaderNow()
	if f, ok := w.guard.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.sent = true
	return http.NewResponseController(w.guard).Hijack()
}

// Unwrap returns cordon's guard writer (for http.ResponseController).
func (w *writer) Unwrap() http.ResponseWriter { return w.guard }
