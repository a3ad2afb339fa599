package corpus

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	auditpkg "example.com/audit"
	"example.com/authn"
	"github.com/cordon-sec/cordon/session"
	"github.com/gin-gonic/gin"
	"github.com/labstack/echo/v4"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
)

//cordonvet:scoped example.com/authn.Visit

// ---- long-lived objects of other packages ----

// BugAuditSinkRegister registers a probe reading the request with another
// package's process-wide recorder.
func BugAuditSinkRegister(w http.ResponseWriter, r *http.Request) {
	auditpkg.Sink.Register("checkout", func() string { return r.Header.Get("X-Cart") })
}

// SafeAuditSinkRegisterCopy registers a probe over a copied header.
func SafeAuditSinkRegisterCopy(w http.ResponseWriter, r *http.Request) {
	cart := r.Header.Get("X-Cart")
	auditpkg.Sink.Register("checkout", func() string { return cart })
}

// BugAuditLastSeenGin keeps the gin context in another package's variable.
func BugAuditLastSeenGin(c *gin.Context) {
	auditpkg.LastSeen = c
}

// SafeAuditLastPathGin keeps only the path.
func SafeAuditLastPathGin(c *gin.Context) {
	auditpkg.LastPath = c.Request.URL.Path
}

// BugAuditDefaultEcho stores the request in state behind an accessor.
func BugAuditDefaultEcho(c echo.Context) error {
	auditpkg.Default().Last = c.Request()
	return nil
}

// SafeAuditDefaultEcho records a copied path in the same state.
func SafeAuditDefaultEcho(c echo.Context) error {
	auditpkg.Default().Paths = append(auditpkg.Default().Paths, c.Path())
	auditpkg.Sink.Count(c.Path())
	return nil
}

// ---- request-scoped types of other libraries and of the app ----

// BugGrantGoroutine touches the request's grant after the request.
func BugGrantGoroutine(w http.ResponseWriter, r *http.Request) {
	g := authn.Lookup(r)
	go func() {
		time.Sleep(time.Minute)
		g.Touch()
	}()
	w.WriteHeader(http.StatusAccepted)
}

// SafeGrantCopyID hands over the grant's ID only.
func SafeGrantCopyID(w http.ResponseWriter, r *http.Request) {
	id := authn.Lookup(r).ID
	go notify(id)
}

var visits = make(chan *authn.Visit, 16)

// BugVisitQueued queues the per-request visit record the package names
// request-scoped with //cordonvet:scoped.
func BugVisitQueued(c *gin.Context) {
	v := authn.Begin(c.Request.URL.Path)
	visits <- v
}

// SafeUserLoadedForEmail loads a plain row with the request's context and
// hands it to a goroutine.
func SafeUserLoadedForEmail(c *gin.Context) {
	u := authn.LoadUser(c.Request.Context(), c.Param("id"))
	go sendWelcomeUser(u)
}

func sendWelcomeUser(u *authn.User) {}

// ---- joins that happen on some paths only ----

// BugImportDryRunSkipsWait returns early on a dry run, before the Wait.
func BugImportDryRunSkipsWait(w http.ResponseWriter, r *http.Request) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		process([]byte(r.Header.Get("X-Batch")))
		render(w, "imported")
	}()
	if r.URL.Query().Get("dry") == "1" {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	wg.Wait()
}

// SafeImportWaitsOnBothPaths waits on both branches.
func SafeImportWaitsOnBothPaths(w http.ResponseWriter, r *http.Request) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		render(w, "imported")
	}()
	if r.URL.Query().Get("dry") == "1" {
		wg.Wait()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	wg.Wait()
}

// BugGinAsyncFlagSkipsWait returns when the caller asks for async.
func BugGinAsyncFlagSkipsWait(c *gin.Context) {
	done := make(chan struct{})
	go func() {
		c.JSON(200, gin.H{"ok": true})
		close(done)
	}()
	if c.Query("async") == "1" {
		return
	}
	<-done
}

// SafeGinDeferredWaitBeforeBranch defers the Wait before any return.
func SafeGinDeferredWaitBeforeBranch(c *gin.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Status(204)
	}()
	if c.Query("async") == "1" {
		return
	}
}

// BugEchoErrgroupErrorPath returns on a validation error before g.Wait.
func BugEchoErrgroupErrorPath(c echo.Context) error {
	var g errgroup.Group
	g.Go(func() error { return c.String(200, "working") })
	if c.QueryParam("id") == "" {
		return errors.New("no id")
	}
	return g.Wait()
}

// SafeEchoErrgroupWaitFirst waits before looking at the error.
func SafeEchoErrgroupWaitFirst(c echo.Context) error {
	var g errgroup.Group
	g.Go(func() error { return c.String(200, "working") })
	err := g.Wait()
	if c.QueryParam("id") == "" {
		return errors.New("no id")
	}
	return err
}

// ---- contexts detached with WithoutCancel ----

type sessKey struct{}

// SafeShipWithoutCancel hands a detached context and a copied order ID.
func SafeShipWithoutCancel(w http.ResponseWriter, r *http.Request) {
	order := r.PathValue("order")
	go reindex(context.WithoutCancel(r.Context()), order)
	w.WriteHeader(http.StatusAccepted)
}

// SafeGinAuditWithoutCancel audits with a detached context.
func SafeGinAuditWithoutCancel(c *gin.Context) {
	ctx := context.WithoutCancel(c.Request.Context())
	user := c.GetHeader("X-User")
	go audit(ctx, user, "login")
}

// BugWithoutCancelAssertsSession reads the session handle out of the
// detached context's values.
func BugWithoutCancelAssertsSession(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	go func() {
		s := ctx.Value(sessKey{}).(*session.Session)
		_ = s.Put("seen", "1")
	}()
}

func auditSession(ctx context.Context) {
	_ = session.FromContext(ctx).Put("audited", "1")
}

// BugWithoutCancelHelperReadsSession hands the detached context to a
// helper that reads the session out of it.
func BugWithoutCancelHelperReadsSession(c echo.Context) error {
	go auditSession(context.WithoutCancel(c.Request().Context()))
	return nil
}

// BugWithoutCancelPlusWriter hands the writer beside the detached context.
func BugWithoutCancelPlusWriter(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	go func() {
		_ = reindex(ctx, "all")
		render(w, "done")
	}()
}

// ---- selects on the result or the handed context's Done ----

func probe(ctx context.Context, host string, out chan<- error) { out <- fetch(ctx, host) }

// SafeHealthProbeSelect waits for the result or the deadline it handed.
func SafeHealthProbeSelect(w http.ResponseWriter, r *http.Request) {
	host := r.URL.Query().Get("host")
	ctx, cancel := context.WithDeadline(r.Context(), time.Now().Add(time.Second))
	defer cancel()
	out := make(chan error, 1)
	go probe(ctx, host, out)
	select {
	case <-ctx.Done():
		w.WriteHeader(http.StatusGatewayTimeout)
	case err := <-out:
		_ = err
	}
}

// SafeEchoProbeSelect is the same under echo.
func SafeEchoProbeSelect(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), time.Second)
	defer cancel()
	out := make(chan error, 1)
	host := c.QueryParam("host")
	go func() { out <- fetch(ctx, host) }()
	select {
	case err := <-out:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BugProbeSelectTimer stops waiting on a timer of its own.
func BugProbeSelectTimer(w http.ResponseWriter, r *http.Request) {
	out := make(chan error, 1)
	go probe(r.Context(), r.URL.Query().Get("host"), out)
	select {
	case <-out:
	case <-time.After(time.Second):
		w.WriteHeader(http.StatusGatewayTimeout)
	}
}

// BugProbeSelectWriter hands the writer too: after the Done case the
// goroutine may still write.
func BugProbeSelectWriter(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	out := make(chan error, 1)
	go func() {
		render(w, "probe")
		out <- fetch(ctx, "db")
	}()
	select {
	case <-ctx.Done():
	case <-out:
	}
}

// ---- fasthttp's TimeoutError hand-off ----

func renderFast(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("report") }

// SafeFastTimeoutHandoff calls TimeoutErrorWithCode where the goroutine
// may still hold ctx.
func SafeFastTimeoutHandoff(ctx *fasthttp.RequestCtx) {
	finished := make(chan struct{})
	go func() { renderFast(ctx); close(finished) }()
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		ctx.TimeoutErrorWithCode("still rendering", fasthttp.StatusServiceUnavailable)
	case <-finished:
	}
}

// BugFastTimeoutNoHandoff gives up on the goroutine without handing ctx
// over.
func BugFastTimeoutNoHandoff(ctx *fasthttp.RequestCtx) {
	finished := make(chan struct{})
	go func() { renderFast(ctx); close(finished) }()
	select {
	case <-time.After(500 * time.Millisecond):
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	case <-finished:
	}
}

// BugFastTimeoutOnePath hands ctx over on the timer path but returns early
// on another.
func BugFastTimeoutOnePath(ctx *fasthttp.RequestCtx) {
	finished := make(chan struct{})
	go func() { renderFast(ctx); close(finished) }()
	if ctx.QueryArgs().Has("nowait") {
		return
	}
	select {
	case <-time.After(time.Second):
		ctx.TimeoutError("slow")
	case <-finished:
	}
}

// SafeFastAppendBytes copies the query into its own buffer.
func SafeFastAppendBytes(ctx *fasthttp.RequestCtx) {
	var scratch [64]byte
	q := ctx.QueryArgs().AppendBytes(scratch[:0])
	go process(q)
}

var bytePool sync.Pool

// BugFastPeekPooled keeps a borrowed slice in a pool.
func BugFastPeekPooled(ctx *fasthttp.RequestCtx) {
	b := ctx.QueryArgs().Peek("q")
	bytePool.Put(&b)
}

// ---- stores undone before return ----

var (
	watchMu  sync.Mutex
	nextID   uint64
	watchers = map[uint64]http.ResponseWriter{}
)

func forget(id uint64) { watchMu.Lock(); delete(watchers, id); watchMu.Unlock() }

// SafeWatchDeferForget registers the writer and removes it with a
// deferred helper; the handler lives until the request is done.
func SafeWatchDeferForget(w http.ResponseWriter, r *http.Request) {
	watchMu.Lock()
	nextID++
	id := nextID
	watchers[id] = w
	watchMu.Unlock()
	defer forget(id)
	<-r.Context().Done()
}

// BugWatchNeverForgotten registers the writer and never removes it.
func BugWatchNeverForgotten(w http.ResponseWriter, r *http.Request) {
	watchMu.Lock()
	nextID++
	watchers[nextID] = w
	watchMu.Unlock()
}

var ginStreams = map[string]*gin.Context{}

// SafeGinStreamDeferDelete removes the stream with a deferred closure.
func SafeGinStreamDeferDelete(c *gin.Context) {
	id := c.Param("id")
	mu.Lock()
	ginStreams[id] = c
	mu.Unlock()
	defer func() {
		mu.Lock()
		delete(ginStreams, id)
		mu.Unlock()
	}()
	<-c.Request.Context().Done()
}

type client struct {
	w    http.ResponseWriter
	send chan []byte
}

type hubT struct {
	register   chan *client
	unregister chan *client
}

var hub = &hubT{register: make(chan *client), unregister: make(chan *client)}

// SafeHubUnregister registers a client holding the writer and unregisters
// it before returning.
func SafeHubUnregister(w http.ResponseWriter, r *http.Request) {
	cl := &client{w: w, send: make(chan []byte, 8)}
	hub.register <- cl
	defer func() { hub.unregister <- cl }()
	<-r.Context().Done()
}

// BugHubRegisterOnly registers the client and never unregisters it.
func BugHubRegisterOnly(w http.ResponseWriter, r *http.Request) {
	cl := &client{w: w, send: make(chan []byte, 8)}
	hub.register <- cl
}

// ---- per-call context arguments ----

// PrefCache is a process-wide cache whose methods take a per-call context.
type PrefCache struct{}

func (p *PrefCache) Put(ctx context.Context, k string, v any)                    {}
func (p *PrefCache) Set(ctx context.Context, k string, v any, ttl time.Duration) {}

var prefs = &PrefCache{}

// SafePrefsPutCtx bounds the call with the request's context.
func SafePrefsPutCtx(w http.ResponseWriter, r *http.Request) {
	prefs.Put(r.Context(), "lang", r.URL.Query().Get("lang"))
}

// SafeGinCacheSetCtx is the go-redis shape under gin.
func SafeGinCacheSetCtx(c *gin.Context) {
	prefs.Set(c.Request.Context(), "k:"+c.Param("id"), c.Query("v"), time.Minute)
}

// BugPrefsPutRequest keeps the request itself as the value.
func BugPrefsPutRequest(w http.ResponseWriter, r *http.Request) {
	prefs.Put(r.Context(), "last", r)
}

// ---- setters and per-request holders ----

type reqScope struct{ request *http.Request }

// SetRequest sets up a per-request scope; the caller decides its life.
func (s *reqScope) SetRequest(r *http.Request) { s.request = r }

// SafeScopeSetRequest builds a per-request scope.
func SafeScopeSetRequest(w http.ResponseWriter, r *http.Request) {
	s := &reqScope{}
	s.SetRequest(r)
	render(w, s.request.URL.Path)
}

type lastSeenHandler struct{ last *http.Request }

// BugHandlerKeepsLast is a handler method keeping the last request.
func (h *lastSeenHandler) BugHandlerKeepsLast(w http.ResponseWriter, r *http.Request) {
	h.last = r
}

// ---- pools ----

type reqState struct{ r *http.Request }

var statePool = sync.Pool{New: func() any { return new(reqState) }}

// SafeOwnPool recycles its own per-request state.
func SafeOwnPool(w http.ResponseWriter, r *http.Request) {
	st := statePool.Get().(*reqState)
	st.r = r
	render(w, st.r.URL.Path)
	st.r = nil
	statePool.Put(st)
}

var ginPool sync.Pool

// BugGinContextPooled puts gin's context into the app's own pool.
func BugGinContextPooled(c *gin.Context) {
	ginPool.Put(c)
}

// ---- joins through a per-request helper's channel ----

type streamWriter struct {
	w      http.ResponseWriter
	doneCh chan struct{}
}

func newStreamWriter(w http.ResponseWriter) *streamWriter {
	return &streamWriter{w: w, doneCh: make(chan struct{})}
}

func (s *streamWriter) pump() { render(s.w, "chunk"); close(s.doneCh) }

// SafeStreamWriterDoneCh waits on the helper's done channel.
func SafeStreamWriterDoneCh(w http.ResponseWriter, r *http.Request) {
	sw := newStreamWriter(w)
	go sw.pump()
	<-sw.doneCh
}

// BugStreamWriterNoWait starts the pump and returns.
func BugStreamWriterNoWait(w http.ResponseWriter, r *http.Request) {
	sw := newStreamWriter(w)
	go sw.pump()
}

// pageView is the app's own per-request record, named request-scoped by
// its doc comment.
//
//cordonvet:scoped
type pageView struct {
	Path string
	hits []string
}

var lastView *pageView

// BugPageViewKept keeps the per-request record in a package variable.
func BugPageViewKept(w http.ResponseWriter, r *http.Request) {
	pv := &pageView{Path: r.URL.Path}
	lastView = pv
}

// SafePageViewLocal uses the record inside the request only.
func SafePageViewLocal(w http.ResponseWriter, r *http.Request) {
	pv := &pageView{Path: r.URL.Path}
	pv.hits = append(pv.hits, r.URL.Path)
	render(w, pv.Path)
}
