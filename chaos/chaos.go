// Package chaos proves, by running it, that a cordon app hands no session to
// the wrong person even when the application's own code is hostile.
//
// Run serves a small app behind the session middleware on loopback and
// drives it with many clients, each signed in as its own user. Two kinds of
// buggy code run beside them, modelled on the 2021 incident:
//
//   - Handles kept past their request. Some handlers leave their session
//     handle in a queue, as an error reporter's lazy callback would; a
//     hostile goroutine and a reporter goroutine later use those handles to
//     read, log in, renew and write.
//   - A reused request environment. Handlers copy the raw session cookie of
//     the request into one shared "env" (as Unicorn's reused hash held it),
//     the hostile goroutine moves it into a shared cookie jar, and the next
//     handler writes whatever is in the jar into its own response, in one
//     of the shapes in Shapes: the Set-Cookie key in another spelling, a
//     trailer, comma-joined or nameless or inside another cookie, on an
//     informational response, on the writer below cordon's if it can
//     unwrap one.
//   - Kept response writers. Some handlers leave their ResponseWriter
//     behind, and the hostile goroutine later writes another user's cookie
//     through it.
//   - Cookie tossing. Some requests carry, besides the client's own
//     session, another user's token from the jar in a second Cookie header,
//     as a sibling subdomain can make a browser do.
//
// The oracle is the clients' own view: every response body must name the
// client's own user, and every session cookie a client receives must belong
// (per the store) to the client's own user. Anything else is a crossing.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-sec/cordon/internal/setcookie"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
)

// Config sizes a run. Zero fields take the defaults.
type Config struct {
	// Clients is the number of concurrent clients, each its own user
	// (default 64).
	Clients int
	// Requests is the total number of requests after sign-up (default
	// 64 per client).
	Requests int
	// Seed makes the clients' choices repeatable (default 1).
	Seed uint64
	// CaptureRate is the fraction of requests whose handle is kept past the
	// request (default 0.25).
	CaptureRate float64
	// Work is how long a handler works before it answers, as a real one
	// waits on its database (default 200µs). It is the window in which
	// code outside the request can reach the request's state.
	Work time.Duration
	// Adjust, if set, is called on the manager before the run starts (the
	// session package's tests use it to switch a protection off).
	Adjust func(*session.Manager)
	// NoKeptWriters switches the hostile use of kept response writers off.
	// A test that switches the guard off needs it: without the guard a
	// kept writer writes into net/http's finished response, a data race
	// inside net/http that the race detector stops the test for.
	NoKeptWriters bool
	// Progress, if set, is called about once a second with the counts so
	// far.
	Progress func(Result)
}

// Result is what a run observed.
type Result struct {
	Requests  int64 `json:"requests"`
	Crossings int64 `json:"crossings"`
	// StaleRefused counts uses of kept handles that were refused with
	// ErrRequestEnded; StaleActed counts those that were not.
	StaleRefused int64 `json:"stale_refused"`
	StaleActed   int64 `json:"stale_acted"`
	// Injected counts foreign session cookies the buggy handlers wrote into
	// their responses (InjectedByShape by shape); GuardBlocks the
	// guard_block events.
	Injected        int64            `json:"injected"`
	InjectedByShape map[string]int64 `json:"injected_by_shape,omitempty"`
	// StaleWritesRefused counts writes through kept response writers that
	// were refused; StaleWritesActed those that were not.
	StaleWritesRefused int64 `json:"stale_writes_refused"`
	StaleWritesActed   int64 `json:"stale_writes_acted"`
	// Tossed counts requests that carried another user's session beside
	// their own; Ambiguous the bad_cookie "ambiguous" events.
	Tossed      int64         `json:"tossed"`
	Ambiguous   int64         `json:"ambiguous"`
	GuardBlocks int64         `json:"guard_blocks"`
	Blocked500  int64         `json:"blocked_responses"`
	Errors      int64         `json:"errors"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	// FirstCrossing describes the first crossing seen, if any.
	FirstCrossing string `json:"first_crossing,omitempty"`
}

// env is the shared, reused request environment of the buggy app.
type env struct {
	mu         sync.Mutex
	lastCookie string   // the raw session cookie of the latest request
	jar        []string // cookie values waiting to be written by the next handler
}

type slotKey struct{}

// slot carries a handle out of a request, to be published only after the
// session middleware has returned (so the hostile code only ever holds
// handles of requests that have ended).
type slot struct {
	h *session.Session
	w http.ResponseWriter
}

// Shapes are the forms in which the buggy handlers write a foreign session
// cookie into their responses.
var Shapes = []string{
	"canonical", "lower-case key", "upper-case key", "trailer", "announced trailer",
	"comma-joined", "nameless", "attribute", "cookie value", "informational", "unwrapped writer",
}

type run struct {
	cfg     Config
	shapes  [16]atomic.Int64
	writers chan http.ResponseWriter
	st      store.Store
	m       *session.Manager
	env     env
	kept    chan *session.Session
	reports chan func() error
	res     Result
	first   sync.Once
	// receivers maps each session fingerprint to the first client that
	// received it.
	receivers sync.Map
	// tokens holds recent tokens of signed-in clients, for cookie tossing.
	tokMu  sync.Mutex
	tokens [64]string
	tokN   int
}

// Run executes one chaos run against st with the given session options and
// returns what it observed. It stops early, with what it has, when ctx ends.
func Run(ctx context.Context, st store.Store, opt session.Options, cfg Config) (Result, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 64
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 64 * cfg.Clients
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.CaptureRate == 0 {
		cfg.CaptureRate = 0.25
	}
	if cfg.Work == 0 {
		cfg.Work = 200 * time.Microsecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	// The harness serves plain HTTP on loopback: development cookies.
	opt.Dev = true
	r := &run{cfg: cfg, st: st, kept: make(chan *session.Session, 1024), reports: make(chan func() error, 1024),
		writers: make(chan http.ResponseWriter, 256)}
	userEvent := opt.OnEvent
	opt.OnEvent = func(ctx context.Context, ev session.Event) {
		if ev.Name == reqlog.EventGuardBlock {
			atomic.AddInt64(&r.res.GuardBlocks, 1)
		}
		if ev.Name == reqlog.EventBadCookie && ev.Detail == session.BadAmbiguous {
			atomic.AddInt64(&r.res.Ambiguous, 1)
		}
		if userEvent != nil {
			userEvent(ctx, ev)
		}
	}
	r.m = session.New(st, opt)
	defer r.m.Close()
	if cfg.Adjust != nil {
		cfg.Adjust(r.m)
	}
	srv := httptest.NewServer(r.handler())
	defer srv.Close()

	hctx, stopHostile := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); r.hostile(hctx) }()
	go func() { defer bg.Done(); r.reporter(hctx) }()
	go func() { defer bg.Done(); r.staleWriter(hctx) }()

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	stopProgress := r.progress(start)
	for i := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{r: r, base: srv.URL, hc: &http.Client{Transport: tr}, user: fmt.Sprintf("user-%03d", i),
				rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i)))}
			c.loop(ctx, &next)
		}()
	}
	wg.Wait()
	stopProgress()
	stopHostile()
	bg.Wait()
	r.res.Elapsed = time.Since(start)
	return r.snapshot(), nil
}

func (r *run) snapshot() Result {
	by := map[string]int64{}
	for i, name := range Shapes {
		if n := r.shapes[i].Load(); n > 0 {
			by[name] = n
		}
	}
	return Result{
		InjectedByShape:    by,
		StaleWritesRefused: atomic.LoadInt64(&r.res.StaleWritesRefused), StaleWritesActed: atomic.LoadInt64(&r.res.StaleWritesActed),
		Tossed: atomic.LoadInt64(&r.res.Tossed), Ambiguous: atomic.LoadInt64(&r.res.Ambiguous),
		Requests: atomic.LoadInt64(&r.res.Requests), Crossings: atomic.LoadInt64(&r.res.Crossings),
		StaleRefused: atomic.LoadInt64(&r.res.StaleRefused), StaleActed: atomic.LoadInt64(&r.res.StaleActed),
		Injected: atomic.LoadInt64(&r.res.Injected), GuardBlocks: atomic.LoadInt64(&r.res.GuardBlocks),
		Blocked500: atomic.LoadInt64(&r.res.Blocked500), Errors: atomic.LoadInt64(&r.res.Errors),
		Elapsed: r.res.Elapsed, FirstCrossing: r.res.FirstCrossing,
	}
}

func (r *run) progress(start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				res := r.snapshot()
				res.Elapsed = time.Since(start)
				r.cfg.Progress(res)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (r *run) crossing(format string, args ...any) {
	atomic.AddInt64(&r.res.Crossings, 1)
	r.first.Do(func() { r.res.FirstCrossing = fmt.Sprintf(format, args...) })
}

// handler is the app: the session middleware inside an outer layer that
// publishes kept handles once the middleware has returned.
func (r *run) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, req *http.Request) {
		s := session.From(req)
		if err := s.Login(req.FormValue("u")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		r.keep(req, s)
		io.WriteString(w, req.FormValue("u"))
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, req *http.Request) {
		s := session.From(req)
		r.keep(req, s)
		time.Sleep(r.cfg.Work)
		// The buggy part: the raw cookie goes into the shared env, and the
		// shared jar goes into this response.
		if c, err := req.Cookie(r.cookieName(req)); err == nil {
			r.env.mu.Lock()
			r.env.lastCookie = c.Value
			r.env.mu.Unlock()
		}
		r.env.mu.Lock()
		jar := r.env.jar
		r.env.jar = nil
		r.env.mu.Unlock()
		for _, v := range jar {
			atomic.AddInt64(&r.res.Injected, 1)
			w = r.inject(w, r.cookieName(req), v)
		}
		if sl, _ := req.Context().Value(slotKey{}).(*slot); sl != nil && !r.cfg.NoKeptWriters && rand.Float64() < r.cfg.CaptureRate/4 {
			sl.w = w
		}
		switch req.FormValue("do") {
		case "put":
			if err := s.Put("n", req.FormValue("n")); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		case "renew":
			if err := s.Renew(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		p, err := s.Principal()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, p)
	})
	inner := r.m.Middleware(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sl := &slot{}
		inner.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), slotKey{}, sl)))
		if sl.w != nil {
			select {
			case r.writers <- sl.w: //cordonvet:ignore chaos keeps writers on purpose, to prove a kept writer is refused
			default:
			}
		}
		if sl.h == nil {
			return
		}
		h := sl.h
		select {
		case r.kept <- h: //cordonvet:ignore chaos keeps handles on purpose, to prove a sealed handle refuses late use
		default:
		}
		// An error-report callback that closes over the handle, as the 2021
		// reporter's lazy callbacks closed over the controller.
		select {
		case r.reports <- func() error { _, err := h.Principal(); return err }: //cordonvet:ignore chaos keeps handles on purpose, to prove a sealed handle refuses late use
		default:
		}
	})
}

// inject writes the foreign session cookie v into w's response in one of
// the Shapes, chosen at random, and returns the writer the handler goes on
// with.
func (r *run) inject(w http.ResponseWriter, name, v string) http.ResponseWriter {
	i := rand.IntN(len(Shapes))
	r.shapes[i].Add(1)
	h := w.Header()
	pair := name + "=" + v
	switch Shapes[i] {
	case "canonical":
		h.Add("Set-Cookie", pair+"; Path=/; HttpOnly")
	case "lower-case key":
		h["set-cookie"] = append(h["set-cookie"], pair+"; Path=/")
	case "upper-case key":
		h["SET-COOKIE"] = append(h["SET-COOKIE"], pair)
	case "trailer":
		h[http.TrailerPrefix+"Set-Cookie"] = append(h[http.TrailerPrefix+"Set-Cookie"], pair)
	case "announced trailer":
		h.Set("Trailer", "Set-Cookie")
	case "comma-joined":
		h.Add("Set-Cookie", "theme=dark, "+pair)
	case "nameless":
		h.Add("Set-Cookie", "="+pair+"; Path=/")
	case "attribute":
		h.Add("Set-Cookie", "theme=dark; Path=/; "+pair)
	case "cookie value":
		h.Add("Set-Cookie", "theme="+pair)
	case "informational":
		h.Add("Set-Cookie", pair)
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Set-Cookie")
	case "unwrapped writer":
		// Code that looks for the writer below, as libraries that unwrap
		// to find an optional interface do, and writes there.
		for {
			u, ok := w.(interface{ Unwrap() http.ResponseWriter })
			if !ok {
				break
			}
			w = u.Unwrap()
		}
		w.Header().Add("Set-Cookie", pair)
	}
	if Shapes[i] == "announced trailer" {
		// The cookie goes into Set-Cookie after the status line.
		return &lateCookie{ResponseWriter: w, line: pair}
	}
	return w
}

// lateCookie adds a Set-Cookie line once the status line has gone, for a
// trailer the handler announced.
type lateCookie struct {
	http.ResponseWriter
	line string
	done bool
}

func (l *lateCookie) Write(p []byte) (int, error) {
	n, err := l.ResponseWriter.Write(p)
	if !l.done {
		l.done = true
		l.Header().Add("Set-Cookie", l.line)
	}
	return n, err
}

// cookieName is the session cookie's name as the app serves it: plain HTTP
// on loopback gets the development name.
func (r *run) cookieName(*http.Request) string {
	return strings.TrimPrefix(session.DefaultCookieName, "__Host-")
}

// keep leaves the handle for the hostile code with probability CaptureRate.
func (r *run) keep(req *http.Request, s *session.Session) {
	sl, _ := req.Context().Value(slotKey{}).(*slot)
	if sl == nil {
		return
	}
	if rand.Float64() < r.cfg.CaptureRate {
		sl.h = s
	}
}

// stale records the outcome of one use of a kept handle.
func (r *run) stale(err error) {
	switch {
	case errors.Is(err, session.ErrRequestEnded):
		atomic.AddInt64(&r.res.StaleRefused, 1)
	case err == nil:
		atomic.AddInt64(&r.res.StaleActed, 1)
	default:
		atomic.AddInt64(&r.res.Errors, 1)
	}
}

// hostile uses every kept handle to act on whatever request it may now
// reach, and moves the env's last cookie into the shared jar.
func (r *run) hostile(ctx context.Context) {
	rnd := rand.New(rand.NewPCG(r.cfg.Seed, 1<<40))
	var held []*session.Session
	for {
		select {
		case <-ctx.Done():
			return
		case h := <-r.kept:
			held = append(held, h)
			if len(held) > 256 {
				held = held[1:]
			}
		}
		h := held[rnd.IntN(len(held))]
		switch rnd.IntN(5) {
		case 0:
			r.stale(h.Login(fmt.Sprintf("hostile-%d", rnd.IntN(4))))
		case 1:
			r.stale(h.Renew())
		case 2:
			r.stale(h.Put("stolen", "yes"))
		case 3:
			_, _, err := h.Get("n")
			r.stale(err)
		default:
			_, err := h.Principal()
			r.stale(err)
		}
		r.env.mu.Lock()
		if r.env.lastCookie != "" {
			r.env.jar = append(r.env.jar, r.env.lastCookie)
			r.env.lastCookie = ""
		}
		r.env.mu.Unlock()
	}
}

// staleWriter writes another user's cookie through kept response writers
// of ended requests.
func (r *run) staleWriter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-r.writers:
			r.env.mu.Lock()
			v := r.env.lastCookie
			r.env.mu.Unlock()
			if v == "" {
				v = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
			}
			w.Header().Add("Set-Cookie", r.cookieName(nil)+"="+v)
			if _, err := w.Write([]byte("late")); err != nil {
				atomic.AddInt64(&r.res.StaleWritesRefused, 1)
			} else {
				atomic.AddInt64(&r.res.StaleWritesActed, 1)
			}
		}
	}
}

// reporter runs queued error-report callbacks, later, in the background.
func (r *run) reporter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-r.reports:
			r.stale(f())
		}
	}
}

// publish remembers a token a client received, for tossing.
func (r *run) publish(tok string) {
	r.tokMu.Lock()
	r.tokens[r.tokN%len(r.tokens)] = tok
	r.tokN++
	r.tokMu.Unlock()
}

// tossable returns a recent token other than own, or "".
func (r *run) tossable(own string) string {
	r.tokMu.Lock()
	defer r.tokMu.Unlock()
	if r.tokN == 0 {
		return ""
	}
	t := r.tokens[rand.IntN(min(r.tokN, len(r.tokens)))]
	if t == own {
		return ""
	}
	return t
}

// client is one user's browser.
type client struct {
	r     *run
	base  string
	hc    *http.Client
	user  string
	token string
	rnd   *rand.Rand
}

func (c *client) loop(ctx context.Context, next *atomic.Int64) {
	for ctx.Err() == nil {
		if c.token == "" {
			if !c.do(ctx, "POST", "/login", "u="+c.user) {
				continue
			}
		}
		if next.Add(1) > int64(c.r.cfg.Requests) {
			return
		}
		q := "/me"
		switch n := c.rnd.IntN(20); {
		case n == 0:
			q += "?do=renew"
		case n < 5:
			q += fmt.Sprintf("?do=put&n=%d", n)
		}
		c.do(ctx, "GET", q, "")
	}
}

// do sends one request and checks the response against the oracle. It
// reports whether the request got an answer.
func (c *client) do(ctx context.Context, method, path, form string) bool {
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		atomic.AddInt64(&c.r.res.Errors, 1)
		return false
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	name := c.r.cookieName(req)
	if c.token != "" {
		req.Header.Set("Cookie", name+"="+c.token)
		// Cookie tossing: another user's session beside the client's own,
		// in a second Cookie header, before or after it.
		if other := c.r.tossable(c.token); other != "" && c.rnd.IntN(50) == 0 {
			atomic.AddInt64(&c.r.res.Tossed, 1)
			if c.rnd.IntN(2) == 0 {
				req.Header["Cookie"] = []string{name + "=" + other, name + "=" + c.token}
			} else {
				req.Header.Add("Cookie", name+"="+other)
			}
		}
	}
	var early []string
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			early = append(early, h.Values("Set-Cookie")...)
			return nil
		},
	}))
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			atomic.AddInt64(&c.r.res.Errors, 1)
		}
		return false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	atomic.AddInt64(&c.r.res.Requests, 1)
	// Every Set-Cookie line the client was sent, wherever: the final
	// headers, the trailers, informational responses; read in every shape
	// (the token must not reach the client in any form).
	lines := append(early, resp.Header.Values("Set-Cookie")...)
	lines = append(lines, resp.Trailer.Values("Set-Cookie")...)
	for _, line := range lines {
		kind, v := setcookie.Classify(line, name)
		if kind == setcookie.None {
			continue
		}
		if kind == setcookie.Primary && setcookie.Deletes(line) {
			c.token = ""
			continue
		}
		fp := store.Fingerprint(v)
		owner := "<unknown session>"
		if s, err := c.r.st.Find(context.WithoutCancel(ctx), store.HashToken(v)); err == nil {
			owner = s.Principal
		}
		// A session may reach one client only, and a signed-in session only
		// its own user. A fresh anonymous session is a client's own (after a
		// blocked response cost it its renewed cookie, for example).
		first, _ := c.r.receivers.LoadOrStore(fp, c.user)
		switch {
		case first != c.user:
			c.r.crossing("%s %s by %s received the session cookie %s first sent to %s (owner %q) in %q", method, path, c.user, fp, first, owner, line)
		case owner != c.user && owner != "":
			c.r.crossing("%s %s by %s received the session cookie %s of %q in %q", method, path, c.user, fp, owner, line)
		}
		if kind == setcookie.Primary {
			c.token = v
			c.r.publish(v)
		}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		switch got := string(b); got {
		case c.user:
		case "":
			c.token = "" // signed out (a blocked renewal): sign in again
		default:
			c.r.crossing("%s %s by %s answered for %q", method, path, c.user, got)
			c.token = ""
		}
	case resp.StatusCode == http.StatusInternalServerError && strings.TrimSpace(string(b)) == http.StatusText(http.StatusInternalServerError):
		atomic.AddInt64(&c.r.res.Blocked500, 1)
	default:
		atomic.AddInt64(&c.r.res.Errors, 1)
	}
	return true
}
