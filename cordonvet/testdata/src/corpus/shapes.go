package corpus

import (
	"context"
	"net/http"
	"sync"
	"time"

	auditpkg "example.com/audit"
	"example.com/authn"
	"github.com/gin-gonic/gin"
	"github.com/labstack/echo/v4"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
)

// More shapes of the same classes.

// BugAliasOfOtherPackageSink registers through a local alias of another
// package's recorder.
func BugAliasOfOtherPackageSink(c echo.Context) error {
	s := auditpkg.Sink
	s.Register("path", func() string { return c.Request().URL.Path })
	return nil
}

// SafeAliasOfOtherPackageSinkCopy registers a copied path the same way.
func SafeAliasOfOtherPackageSinkCopy(c echo.Context) error {
	s := auditpkg.Sink
	p := c.Request().URL.Path
	s.Register("path", func() string { return p })
	return nil
}

// BugSessionStoreTupleGoroutine saves a library session from a goroutine.
func BugSessionStoreTupleGoroutine(w http.ResponseWriter, r *http.Request) {
	sess, err := authn.Sessions.Get(r, "app")
	if err != nil {
		return
	}
	go func() {
		time.Sleep(time.Second)
		_ = sess.Save()
	}()
}

// SafeSessionStoreCopiesValue copies one value out first.
func SafeSessionStoreCopiesValue(w http.ResponseWriter, r *http.Request) {
	sess, err := authn.Sessions.Get(r, "app")
	if err != nil {
		return
	}
	user := sess.Values["user"]
	go notify(user)
}

// BugLoopJoinSkippedOnError starts one goroutine per item and returns on
// an error before waiting.
func BugLoopJoinSkippedOnError(c *gin.Context) {
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.String(200, "%s", id)
		}()
	}
	if c.Query("fail") != "" {
		c.AbortWithStatus(500)
		return
	}
	wg.Wait()
}

// SafeLoopJoinAfterLoop waits after the loop on every path.
func SafeLoopJoinAfterLoop(c *gin.Context) {
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.String(200, "%s", id)
		}()
	}
	wg.Wait()
	if c.Query("fail") != "" {
		c.AbortWithStatus(500)
	}
}

// BugSwitchReturnBeforeWait returns from one switch case before the Wait.
func BugSwitchReturnBeforeWait(w http.ResponseWriter, r *http.Request) {
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() error { return fetch(ctx, "a") })
	switch r.Method {
	case http.MethodHead:
		return
	default:
		_ = g.Wait()
	}
}

// SafeSwitchWaitEveryCase waits in every case, default included.
func SafeSwitchWaitEveryCase(w http.ResponseWriter, r *http.Request) {
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() error { return fetch(ctx, "a") })
	switch r.Method {
	case http.MethodHead:
		_ = g.Wait()
		return
	default:
		_ = g.Wait()
	}
}

// SafeGinSelectRequestDone waits for the result or for the request's own
// context, from which the goroutine's context derives.
func SafeGinSelectRequestDone(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), time.Second)
	defer cancel()
	out := make(chan error, 1)
	go func() { out <- fetch(ctx, "upstream") }()
	select {
	case <-c.Request.Context().Done():
	case err := <-out:
		_ = err
	}
}

// BugGinSelectDefault polls once and leaves the goroutine running.
func BugGinSelectDefault(c *gin.Context) {
	ctx := c.Request.Context()
	out := make(chan error, 1)
	go func() { out <- fetch(ctx, "upstream") }()
	select {
	case err := <-out:
		_ = err
	default:
	}
}

// SafeFastTimeoutWithResponse hands ctx over with TimeoutErrorWithResponse.
func SafeFastTimeoutWithResponse(ctx *fasthttp.RequestCtx) {
	done := make(chan struct{})
	go func() { renderFast(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		var resp fasthttp.Response
		ctx.TimeoutErrorWithResponse(&resp)
	}
}

// BugFastBorrowedBytesSent sends borrowed bytes to a worker.
func BugFastBorrowedBytesSent(ctx *fasthttp.RequestCtx) {
	fastWork <- ctx.Request.Header.Peek("X-Trace")
}

var fastWork = make(chan []byte, 8)

var (
	subsMu sync.Mutex
	subs   []http.ResponseWriter
)

func unsubscribe(w http.ResponseWriter) {
	subsMu.Lock()
	defer subsMu.Unlock()
	for i, s := range subs {
		if s == w {
			subs = append(subs[:i], subs[i+1:]...)
			return
		}
	}
}

// SafeSubscribersDeferHelper appends the writer and removes it with a
// deferred helper that rewrites the slice.
func SafeSubscribersDeferHelper(w http.ResponseWriter, r *http.Request) {
	subsMu.Lock()
	subs = append(subs, w)
	subsMu.Unlock()
	defer unsubscribe(w)
	<-r.Context().Done()
}

// BugSubscribersNoUndo appends the writer and returns.
func BugSubscribersNoUndo(w http.ResponseWriter, r *http.Request) {
	subsMu.Lock()
	subs = append(subs, w)
	subsMu.Unlock()
}

type streamsHub struct {
	mu      sync.Mutex
	clients map[string]echo.Context
}

func (h *streamsHub) drop(id string) { h.mu.Lock(); delete(h.clients, id); h.mu.Unlock() }

// SafeHubMethodDeferDrop keeps the echo context while it streams and
// drops it with a deferred method.
func (h *streamsHub) SafeHubMethodDeferDrop(c echo.Context) error {
	id := c.Param("id")
	h.mu.Lock()
	h.clients[id] = c
	h.mu.Unlock()
	defer h.drop(id)
	<-c.Request().Context().Done()
	return nil
}

// BugHubMethodNoDrop keeps the echo context and returns.
func (h *streamsHub) BugHubMethodNoDrop(c echo.Context) error {
	h.mu.Lock()
	h.clients[c.Param("id")] = c
	h.mu.Unlock()
	return nil
}

// SafeEchoCachePutCtx passes the request's context as the per-call
// context of a long-lived cache.
func SafeEchoCachePutCtx(c echo.Context) error {
	prefs.Put(c.Request().Context(), "theme", c.QueryParam("theme"))
	return nil
}

// BugEchoCachePutContextValue keeps the echo context as the value.
func BugEchoCachePutContextValue(c echo.Context) error {
	prefs.Put(c.Request().Context(), "ctx", c)
	return nil
}

// sseSession is a per-request event stream built by a constructor that
// also returns an error.
type sseSession struct {
	w  http.ResponseWriter
	id string
}

func upgradeSSE(w http.ResponseWriter, r *http.Request) (*sseSession, error) {
	return &sseSession{w: w, id: r.Header.Get("Last-Event-ID")}, nil
}

// EventBus fans events out to subscribers until their context is done.
type EventBus struct{}

func (b *EventBus) Subscribe(ctx context.Context, s *sseSession) error { return nil }

var events = &EventBus{}

// BugSSESessionGoroutine writes to the stream from a goroutine.
func BugSSESessionGoroutine(w http.ResponseWriter, r *http.Request) {
	sess, err := upgradeSSE(w, r)
	if err != nil {
		return
	}
	go func() { render(sess.w, "event") }()
}

// SafeSubscribeBoundedByRequest subscribes until the request's context is
// done, blocking meanwhile.
func SafeSubscribeBoundedByRequest(w http.ResponseWriter, r *http.Request) {
	sess, err := upgradeSSE(w, r)
	if err != nil {
		return
	}
	_ = events.Subscribe(r.Context(), sess)
}

// BugSubscribeBackground subscribes the stream for good.
func BugSubscribeBackground(w http.ResponseWriter, r *http.Request) {
	sess, err := upgradeSSE(w, r)
	if err != nil {
		return
	}
	go func() { _ = events.Subscribe(context.Background(), sess) }()
	_ = events.Subscribe(context.Background(), sess)
}

// SafeSSESessionCopiesID hands over the stream's plain ID only.
func SafeSSESessionCopiesID(w http.ResponseWriter, r *http.Request) {
	sess, err := upgradeSSE(w, r)
	if err != nil {
		return
	}
	id := sess.id
	go notify(id)
}
