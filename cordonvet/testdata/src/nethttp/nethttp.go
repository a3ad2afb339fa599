package nethttp

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/session"
	"github.com/getsentry/sentry-go"
	"golang.org/x/sync/errgroup"
)

func audit(ctx context.Context, what string) {}
func use(r *http.Request)                    {}

var lastRequest *http.Request
var lastPath string

type Server struct {
	mu      sync.Mutex
	current *http.Request
	writers map[string]http.ResponseWriter
	cache   sync.Map
	paths   []string
}

func goroutineBug(w http.ResponseWriter, r *http.Request) {
	go func() { // want `\*http.Request r \(parameter of goroutineBug\) escapes its request: captured by a goroutine that is not joined before`
		use(r)
	}()
}

func goroutineArgBug(w http.ResponseWriter, r *http.Request) {
	go use(r) // want `escapes its request: captured by a goroutine`
}

func contextBug(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	go audit(ctx, "x") // want `request context ctx \(from r.Context\(\) \(from \*http.Request r .*\) escapes its request: captured by a goroutine.*fix: use scope.Detach`
}

func derivedContextBug(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	go audit(ctx, "x") // want `request context .* escapes its request`
}

// A context detached with WithoutCancel, handed on with copied values, is
// accepted; a request-scoped value read out of it is not.
func withoutCancelSafe(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	go audit(ctx, "x")
}

func withoutCancelReadBug(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	go func() { // want `\*session.Session session.FromContext\(ctx\), read through request context .*WithoutCancel`
		_ = session.FromContext(ctx).Put("k", "v")
	}()
}

func packageVarBug(w http.ResponseWriter, r *http.Request) {
	lastRequest = r // want `stored in package variable lastRequest`
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.current = r             // want `a field of the receiver s`
	s.writers[r.URL.Path] = w // want `\*http.Request r|http.ResponseWriter w .* a field of the receiver s`
	s.mu.Unlock()
	s.cache.Store("last", r) // want `registered via Store with s.cache`
}

func sendBug(ch chan *http.Request) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ch <- r // want `sent on channel ch`
	}
}

func afterFuncBug(w http.ResponseWriter, r *http.Request) {
	time.AfterFunc(time.Minute, func() { // want `registered with time.AfterFunc`
		w.WriteHeader(http.StatusGatewayTimeout)
	})
}

func reporterBug(w http.ResponseWriter, r *http.Request) {
	sentry.ConfigureScope(func(s *sentry.Scope) { // want `registered via ConfigureScope with the package-level state of sentry`
		s.AddEventProcessor(func(e *sentry.Event, h *sentry.EventHint) *sentry.Event { // want `registered via AddEventProcessor with s \(parameter s`
			e.Message += r.URL.Path
			return e
		})
	})
	sentry.CurrentHub().Scope().SetRequest(r) // want `registered via SetRequest with sentry.CurrentHub\(\).Scope\(\)`
}

func capturedOutsideBug(mux *http.ServeMux) {
	var last *http.Request
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		last = r // want `captured from outside the handler`
	})
	_ = last
}

type job struct {
	req  *http.Request
	done func()
}

func structChannelBug(queue chan job) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		j := job{req: r}
		queue <- j // want `carried in job\{...\}.*sent on channel queue`
	}
}

func closureStoredBug(hooks *[]func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := func() { use(r) }
		go f() // want `closure capturing \*http.Request r`
	}
}

func selectNotJoinedBug(w http.ResponseWriter, r *http.Request) {
	done := make(chan struct{})
	go func() { // want `captured by a goroutine`
		use(r)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}

// ---- safe ----

func safeCopies(w http.ResponseWriter, r *http.Request) {
	path, ua := r.URL.Path, r.Header.Get("User-Agent")
	go func() { audit(context.Background(), path+ua) }()
	lastPath = r.URL.Path
}

func safeDetach(w http.ResponseWriter, r *http.Request) {
	user := r.Header.Get("X-User")
	go func(ctx context.Context) { audit(ctx, user) }(scope.Detach(r.Context()))
	ctx := scope.Detach(r.Context())
	go audit(ctx, user)
}

func safeWaitGroup(w http.ResponseWriter, r *http.Request) {
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			use(r)
		}()
	}
	wg.Wait()
	wg.Go(func() { use(r) })
	wg.Wait()
}

func safeErrgroup(w http.ResponseWriter, r *http.Request) error {
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() error { audit(ctx, r.URL.Path); return nil })
	g.Go(func() error { use(r); return nil })
	return g.Wait()
}

func safeChannelJoin(w http.ResponseWriter, r *http.Request) {
	done := make(chan error, 1)
	go func() { use(r); done <- nil }()
	<-done
}

func safeSyncHelper(w http.ResponseWriter, r *http.Request) {
	withLock(func() { use(r) })
	var local *http.Request
	func() { local = r }()
	_ = local
}

func withLock(f func()) { f() }

func safeAfterFuncStopped(w http.ResponseWriter, r *http.Request) {
	t := time.AfterFunc(time.Second, func() { use(r) })
	defer t.Stop()
}

func safeDeferredRemoval(s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.cache.Store(r.URL.Path, r)
		defer s.cache.Delete(r.URL.Path)
	}
}

func safeClonedHub(w http.ResponseWriter, r *http.Request) {
	hub := sentry.CurrentHub().Clone()
	hub.Scope().SetRequest(r)
	sentry.GetHubFromContext(r.Context()).Scope().SetRequest(r)
	sentry.WithScope(func(s *sentry.Scope) {
		s.SetRequest(r)
	})
}

func (s *Server) safePlainField(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.Path)
	s.mu.Unlock()
}

type wrapWriter struct {
	http.ResponseWriter
	status int
}

func (ww *wrapWriter) reset(w http.ResponseWriter) { ww.ResponseWriter = w }

func safeWrapper(w http.ResponseWriter, r *http.Request) {
	ww := &wrapWriter{ResponseWriter: w}
	ww.reset(w)
	r2 := r.WithContext(context.Background())
	_ = r2
}

type client struct {
	hc   *http.Client
	resp chan *http.Response
}

func (c *client) safeOutgoing(path string) error {
	req, err := http.NewRequest("GET", "http://backend"+path, nil)
	if err != nil {
		return err
	}
	go func() {
		resp, _ := c.hc.Do(req)
		c.resp <- resp
	}()
	return nil
}

type slowTransport struct{ next http.RoundTripper }

func (t *slowTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	type result struct {
		resp *http.Response
		err  error
	}
	ch := make(chan result, 1)
	go func() { resp, err := t.next.RoundTrip(req); ch <- result{resp, err} }()
	select {
	case res := <-ch:
		return res.resp, res.err
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}

func contextAfterFuncBug(w http.ResponseWriter, r *http.Request) {
	context.AfterFunc(r.Context(), func() { // want `registered with context.AfterFunc`
		w.WriteHeader(http.StatusServiceUnavailable)
	})
}

func safeContextAfterFuncStopped(w http.ResponseWriter, r *http.Request) {
	stop := context.AfterFunc(r.Context(), func() { use(r) })
	defer stop()
	user := r.Header.Get("X-User")
	context.AfterFunc(r.Context(), func() { audit(context.Background(), user) })
}

func shutdownHookBug(srv *http.Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		srv.RegisterOnShutdown(func() { use(r) }) // want `registered via RegisterOnShutdown with srv \(captured from outside the handler\)`
	}
}

type conn struct{}

func (c *conn) Close() error { return nil }

type store struct {
	cache sync.Map
	conn  *conn
}

func (s *store) removalOnOtherField(w http.ResponseWriter, r *http.Request) {
	s.cache.Store("k", r) // want `registered via Store with s.cache`
	defer s.conn.Close()
}

func waitsForRequestNotGoroutine(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	go func() { use(r); _ = ctx }() // want `captured by a goroutine`
	<-ctx.Done()
}

type holder struct{ w http.ResponseWriter }

func newHolder(w http.ResponseWriter) *holder { return &holder{w: w} }

var holders []*holder

func constructorBug(w http.ResponseWriter, r *http.Request) {
	holders = append(holders, newHolder(w)) // want `http.ResponseWriter w .* carried in the result of newHolder\(w\) escapes its request: stored in package variable holders`
}

// An outer variable assigned inside a handler literal is reported at the
// store; it does not make the server that runs the handler an escape.
func serveWithCapture(ln net.Listener) {
	var last *http.Request
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last = r // want `stored in last, captured from outside the handler`
	})}
	go srv.Serve(ln)
	_ = last
}
