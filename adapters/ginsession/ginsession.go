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
	"errors"
	"net"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/cordon-sec/cordon/session"
)

// Middleware runs the rest of the gin chain inside m's session middleware.
// Register it first, before any other middleware: gin has no hooks of its
// own between a handler and the wire, so the guard sees everything that
// middleware registered after it and handlers put into the response, and
// nothing that a middleware registered before it does to the response
// around it.
//
// The writer a handler gets as c.Writer is the request's own: after the
// request it refuses every write (leaving a stale_use line), so a goroutine
// that kept it cannot reach the pooled gin writer that then serves the next
// request.
func Middleware(m *session.Manager) gin.HandlerFunc {
	return func(c *gin.Context) {
		orig := c.Writer
		m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gw := &writer{gin: orig, guard: w}
			// From here on the guard writes to gin's writer itself, and
			// the writer the handlers had refuses.
			defer gw.end()
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
	return session.FromContextCaller(c.Request.Context(), 1)
}

// errEnded is returned by a kept writer's Hijack after its request ended.
var errEnded = errors.New("ginsession: response writer used after its request ended")

// writer routes gin's writes through cordon's guard. gin sets the status
// lazily (WriteHeader only records it); so does writer, so that headers a
// handler adds after c.Status still pass the guard before anything is sent.
// Every method that would reach gin's pooled writer checks first, under
// mu, that the request has not ended.
type writer struct {
	gin   gin.ResponseWriter  // gin's own writer (pooled by gin)
	guard http.ResponseWriter // cordon's guard, in front of gin's writer

	mu     sync.Mutex
	ended  bool
	status int
	sent   bool
	size   int // the body size when the request ended
}

// end marks the request ended: from now on nothing reaches gin's writer.
func (w *writer) end() {
	w.mu.Lock()
	w.size = w.gin.Size()
	w.ended = true
	w.mu.Unlock()
}

func (w *writer) Header() http.Header { return w.guard.Header() }

func (w *writer) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		w.guard.WriteHeader(code) // refused and recorded by the guard
		return
	}
	if !w.sent && code > 0 {
		w.status = code
	}
}

func (w *writer) WriteHeaderNow() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writeHeaderNow()
}

func (w *writer) writeHeaderNow() {
	if w.ended {
		w.guard.WriteHeader(http.StatusOK) // refused and recorded by the guard
		return
	}
	if w.sent {
		return
	}
	w.sent = true
	code := w.status
	if code == 0 {
		code = http.StatusOK
	}
	w.guard.WriteHeader(code)
	w.gin.WriteHeaderNow()
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return w.guard.Write(p) // refused and recorded by the guard
	}
	w.writeHeaderNow()
	return w.guard.Write(p)
}

func (w *writer) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

func (w *writer) Status() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sent && w.status != 0 || w.ended {
		if w.status == 0 {
			return http.StatusOK
		}
		return w.status
	}
	return w.gin.Status()
}

func (w *writer) Size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return w.size
	}
	return w.gin.Size()
}

func (w *writer) Written() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent
}

func (w *writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.writeHeaderNow()
	}
	if f, ok := w.guard.(http.Flusher); ok {
		f.Flush() // after the request: refused and recorded by the guard
	}
}

func (w *writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return nil, nil, errEnded
	}
	w.sent = true
	return http.NewResponseController(w.guard).Hijack()
}

// CloseNotify is gin's; after the request it returns a closed channel.
func (w *writer) CloseNotify() <-chan bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		ch := make(chan bool, 1)
		ch <- true
		return ch
	}
	return w.gin.CloseNotify()
}

// Pusher returns gin's pusher during the request, nil after it.
func (w *writer) Pusher() http.Pusher {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return nil
	}
	return w.gin.Pusher()
}

// Unwrap returns cordon's guard writer (for http.ResponseController), which
// hands out nothing below it.
func (w *writer) Unwrap() http.ResponseWriter { return w.guard }

var _ gin.ResponseWriter = (*writer)(nil)
