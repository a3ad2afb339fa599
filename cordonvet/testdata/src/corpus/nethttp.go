package corpus

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/session"
	"golang.org/x/sync/errgroup"
)

// ---- bugs ----

// BugAuditLogGoroutine logs the request after responding, in the
// background.
func BugAuditLogGoroutine(w http.ResponseWriter, r *http.Request) {
	render(w, "ok")
	go auditLog(r)
}

// BugTimeoutSelect writes from a goroutine the handler stops waiting for.
func BugTimeoutSelect(w http.ResponseWriter, r *http.Request) {
	done := make(chan struct{})
	go func() {
		render(w, "slow result")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		http.Error(w, "timeout", http.StatusGatewayTimeout)
	}
}

// BugReindexWithRequestContext starts background work with the request's
// context, which is cancelled (and whose values die) when the request ends.
func BugReindexWithRequestContext(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	go reindex(r.Context(), id)
	w.WriteHeader(http.StatusAccepted)
}

// BugWithoutCancelKeepsValues detaches cancellation but then reads the
// session handle, a request-scoped value, out of the detached context.
func BugWithoutCancelKeepsValues(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	go func() {
		_ = reindex(ctx, "all")
		_ = session.FromContext(ctx).Put("reindexed", "1")
	}()
}

var debugLastRequest *http.Request

// BugDebugLastRequest keeps the last request for a debug page.
func BugDebugLastRequest(w http.ResponseWriter, r *http.Request) {
	mu.Lock()
	debugLastRequest = r
	mu.Unlock()
}

// Streamer keeps open streams to push events into later.
type Streamer struct {
	mu      sync.Mutex
	streams map[string]http.ResponseWriter
}

// BugStreamerKeepsWriter registers the response writer for later pushes.
func (s *Streamer) BugStreamerKeepsWriter(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.streams[r.RemoteAddr] = w
	s.mu.Unlock()
}

// BugReporterHook installs an error hook that reads the request: the
// reporter keeps it for every later error of every request.
func BugReporterHook(w http.ResponseWriter, r *http.Request) {
	reporter.AddHook(func(err error) {
		fmt.Println("error on", r.URL.Path, err)
	})
}

// BugSessionExpiryTimer destroys the session later through the handle.
func BugSessionExpiryTimer(w http.ResponseWriter, r *http.Request) {
	sess := session.From(r)
	time.AfterFunc(30*time.Minute, func() {
		_ = sess.Put("expired", "1")
	})
}

// Job is work for the background workers.
type Job struct {
	Req  *http.Request
	Kind string
}

var jobs = make(chan Job, 100)

// BugJobCarriesRequest queues a job that carries the request.
func BugJobCarriesRequest(w http.ResponseWriter, r *http.Request) {
	jobs <- Job{Req: r, Kind: "thumbnail"}
}

// Flusher finishes responses after the handler has returned.
type Flusher struct{ onDone func() }

// BugFlusherClosureField stores a closure writing to w in a long-lived
// field.
func (f *Flusher) BugFlusherClosureField(w http.ResponseWriter, r *http.Request) {
	f.onDone = func() { _, _ = w.Write([]byte("done")) }
}

// BugRetryLater schedules a retry that replays the request object.
func BugRetryLater(w http.ResponseWriter, r *http.Request) {
	retryQueue.Push(func() {
		_, _ = http.DefaultClient.Do(r)
	})
}

var active = map[string]*session.Session{}

// BugActiveSessions keeps every session handle in a process-wide map.
func BugActiveSessions(w http.ResponseWriter, r *http.Request) {
	sess := session.From(r)
	mu.Lock()
	active[sess.Principal()] = sess
	mu.Unlock()
}

// Tracker remembers the last thing it saw, through a generic setter.
type Tracker struct{ last any }

func (t *Tracker) remember(v any) { t.last = v }

// BugTrackerSetterAny stores the request through a helper that takes any:
// cordonvet does not follow values into other functions' parameters of
// non-request types (a known miss).
func (t *Tracker) BugTrackerSetterAny(w http.ResponseWriter, r *http.Request) {
	t.remember(r)
}

type uploadJob struct{ req *http.Request }

func newUploadJob(r *http.Request) *uploadJob { return &uploadJob{req: r} }

var uploads = make(chan *uploadJob, 10)

// BugJobFromConstructor builds the job in a constructor, then queues it:
// the request travels inside a value a call returned (a known miss).
func BugJobFromConstructor(w http.ResponseWriter, r *http.Request) {
	j := newUploadJob(r)
	uploads <- j
}

// ---- safe look-alikes ----

// SafeAuditCopiedFields copies what the audit needs before the goroutine.
func SafeAuditCopiedFields(w http.ResponseWriter, r *http.Request) {
	path, user := r.URL.Path, r.Header.Get("X-User")
	render(w, "ok")
	go audit(context.Background(), user, path)
}

// SafeDetachedReindex gives the background work a detached context.
func SafeDetachedReindex(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	go func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_ = reindex(ctx, id)
	}(scope.Detach(r.Context()))
	w.WriteHeader(http.StatusAccepted)
}

// SafeWaitGroupFanout fetches in parallel and waits for every fetch.
func SafeWaitGroupFanout(w http.ResponseWriter, r *http.Request) {
	urls := r.URL.Query()["u"]
	var wg sync.WaitGroup
	errs := make([]error, len(urls))
	for i, u := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fetch(r.Context(), u)
		}()
	}
	wg.Wait()
	render(w, errs)
}

// SafeErrgroupFanout uses errgroup with the request context and waits.
func SafeErrgroupFanout(w http.ResponseWriter, r *http.Request) {
	g, ctx := errgroup.WithContext(r.Context())
	for _, u := range r.URL.Query()["u"] {
		g.Go(func() error { return fetch(ctx, u) })
	}
	if err := g.Wait(); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
}

// SafeJoinedResult waits for the goroutine's result before returning.
func SafeJoinedResult(w http.ResponseWriter, r *http.Request) {
	res := make(chan error, 1)
	go func() { res <- fetch(r.Context(), "http://backend/") }()
	if err := <-res; err != nil {
		http.Error(w, "backend", http.StatusBadGateway)
	}
}

// SafeTransactionClosure hands a closure to a synchronous helper.
func SafeTransactionClosure(w http.ResponseWriter, r *http.Request) {
	err := withTx(r.Context(), func(tx *Tx) error {
		_ = r.FormValue("name")
		return nil
	})
	if err != nil {
		http.Error(w, "db", http.StatusInternalServerError)
	}
}

// SafeSortClosure sorts with a comparison that reads the request.
func SafeSortClosure(w http.ResponseWriter, r *http.Request) {
	items := []string{"b", "a"}
	desc := r.URL.Query().Get("order") == "desc"
	sortBy(items, func(a, b string) bool {
		if r.URL.Query().Has("x") {
			return false
		}
		return (a < b) != desc
	})
	render(w, items)
}

// SafeTimerStopped arms a watchdog and stops it before returning.
func SafeTimerStopped(w http.ResponseWriter, r *http.Request) {
	t := time.AfterFunc(time.Second, func() { logger.Warn("slow", "path", r.URL.Path) })
	defer t.Stop()
	render(w, "ok")
}

// SafeCachePlainValue caches the rendered page, a string.
func SafeCachePlainValue(w http.ResponseWriter, r *http.Request) {
	page := "<html>" + r.URL.Path + "</html>"
	pageCache.Set(r.URL.Path, page)
}

// Stats counts hits per path on a long-lived handler.
type Stats struct {
	mu       sync.Mutex
	hits     map[string]int
	lastPath string
}

// SafeStatsPlainFields stores only strings and counts.
func (s *Stats) SafeStatsPlainFields(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.hits[r.URL.Path]++
	s.lastPath = r.URL.Path
	s.mu.Unlock()
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (sw *statusWriter) WriteHeader(code int) { sw.status = code; sw.ResponseWriter.WriteHeader(code) }

// SafeMiddlewareWrapper wraps the writer for this request only and
// replaces the request with one carrying a value.
func SafeMiddlewareWrapper(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: 200}
		ctx := context.WithValue(r.Context(), struct{}{}, "v")
		r = r.WithContext(ctx)
		next.ServeHTTP(sw, r)
		logger.Info("done", "status", sw.status)
	})
}

// SafeSessionPrincipalCopy audits with a copied principal and a detached
// context.
func SafeSessionPrincipalCopy(w http.ResponseWriter, r *http.Request) {
	sess := session.FromContext(r.Context())
	user := sess.Principal()
	ctx := scope.Detach(r.Context())
	go audit(ctx, user, "login")
}

var inflight sync.Map

// SafeInflightRemovedByDefer registers the request while it runs and
// removes it before returning.
func SafeInflightRemovedByDefer(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	inflight.Store(id, r)
	defer inflight.Delete(id)
	render(w, "ok")
}

type ctxKey struct{}

// SafeContextValueCopy reads a plain value out of the request context and
// hands only that to the goroutine.
func SafeContextValueCopy(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	user, _ := ctx.Value(ctxKey{}).(string)
	go notify("login " + user)
}

// BugMirrorTraffic replays the inbound request to a shadow backend in the
// background: the clone shares the inbound body, which the server closes
// when the handler returns.
func BugMirrorTraffic(w http.ResponseWriter, r *http.Request) {
	mirror := r.Clone(context.Background())
	mirror.URL.Host = "shadow.internal"
	go http.DefaultClient.Do(mirror)
	render(w, "ok")
}

// SafeOutgoingCall builds its own outgoing request and waits for it in a
// goroutine it does not join: nothing of the inbound request is in it.
func SafeOutgoingCall(w http.ResponseWriter, r *http.Request) {
	user := r.Header.Get("X-User")
	req, err := http.NewRequestWithContext(context.Background(), "POST", "http://audit.internal/", nil)
	if err != nil {
		return
	}
	req.Header.Set("X-User", user)
	go http.DefaultClient.Do(req)
	render(w, "ok")
}

type ctxJob struct {
	ctx context.Context
	id  string
}

var ctxJobs = make(chan *ctxJob, 10)

// BugContextInJobStruct queues a job that carries the request's context.
func BugContextInJobStruct(w http.ResponseWriter, r *http.Request) {
	ctxJobs <- &ctxJob{ctx: r.Context(), id: r.PathValue("id")}
	w.WriteHeader(http.StatusAccepted)
}

// AuditEvent is what the audit trail keeps of a request.
type AuditEvent struct {
	Path, User string
}

func newAuditEvent(r *http.Request) *AuditEvent {
	return &AuditEvent{Path: r.URL.Path, User: r.Header.Get("X-User")}
}

var auditEvents = make(chan *AuditEvent, 100)

// SafeConstructorCopiesFields builds an event of copied strings in a
// constructor and queues it.
func SafeConstructorCopiesFields(w http.ResponseWriter, r *http.Request) {
	auditEvents <- newAuditEvent(r)
}
