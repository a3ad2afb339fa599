package session

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
)

// The hostile suite: every route by which application code has been seen,
// or could be expected, to hand one user's session cookie to another
// through cordon's net/http middleware. Each attack runs with every
// protection on (the oracle must see nothing) and with the one protection
// that stops it switched off (the oracle must see the crossing), so that a
// green run means something. The gin and echo adapters run the same kind
// of suite in their own modules, and `cordon chaos` runs these shapes under
// load.

// hostileEnv is one run: bob is signed in elsewhere, and his token is what
// the hostile code tries to hand to alice.
type hostileEnv struct {
	t      *testing.T
	f      *fixture
	bob    string // bob's token
	alice  *http.Client
	aliceT string // alice's token
	// pool is the writer below cordon's middleware, reused request after
	// request as gin's and echo's pooled writers are (attacks on kept
	// writers need it).
	pool *pooledWriter
	kept chan http.ResponseWriter
}

// an attack is one shape of the hostile code, installed at /x.
type attack struct {
	name string
	// off is the protection that stops it: "guard" (the whole guard), or
	// a check's name (see protectionNames).
	off string
	// handler is served at /x; env gives it bob's token.
	handler func(e *hostileEnv) http.HandlerFunc
	// late: the attack strikes after the status line, so the response
	// cannot fail any more; the guard strips and records.
	late bool
	// drive, if set, replaces the default (alice GETs /x) and returns
	// what the oracle is to look at.
	drive func(e *hostileEnv) seen
}

// seen is what alice's side of the wire carried.
type seen struct {
	status   int
	header   http.Header
	early    []http.Header // 1xx responses
	trailer  http.Header
	body     string
	answered string // whom /whoami answered alice as, if asked
}

// crossed reports whether bob's token or identity reached alice, in any
// shape: any header or trailer line, any 1xx, an answer as bob.
func (s seen) crossed(bobToken string) string {
	look := func(where string, h http.Header) string {
		for k, vs := range h {
			for _, v := range vs {
				if strings.Contains(v, bobToken) {
					return where + " " + k + ": " + v
				}
			}
		}
		return ""
	}
	if c := look("header", s.header); c != "" {
		return c
	}
	if c := look("trailer", s.trailer); c != "" {
		return c
	}
	for _, h := range s.early {
		if c := look("1xx", h); c != "" {
			return c
		}
	}
	if s.answered == "bob" {
		return "alice was answered as bob"
	}
	return ""
}

// inject writes bob's session cookie under the given header key.
func inject(key, line string) func(e *hostileEnv) http.HandlerFunc {
	return func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header()[key] = append(w.Header()[key], strings.ReplaceAll(line, "T", e.bob))
			io.WriteString(w, "body for alice")
		}
	}
}

// The shapes. T in a line stands for bob's token.
var hostileAttacks = []attack{
	{name: "canonical key", off: "guard", handler: inject("Set-Cookie", "session=T; Path=/")},
	{name: "lower-case key", off: "canonical", handler: inject("set-cookie", "session=T; Path=/")},
	{name: "upper-case key", off: "canonical", handler: inject("SET-COOKIE", "session=T; Path=/")},
	{name: "mixed-case key", off: "canonical", handler: inject("sEt-CoOkIe", "session=T; Path=/")},
	{name: "name in another case", off: "guard", handler: inject("Set-Cookie", "SESSION=T; Path=/")},
	{name: "white space around the pair", off: "guard", handler: inject("Set-Cookie", "  session = T ; Path=/")},
	{name: "quoted value", off: "guard", handler: inject("Set-Cookie", `session="T"; Path=/`)},
	{name: "full __Host- name", off: "guard", handler: inject("Set-Cookie", "__Host-session=T; Path=/; Secure")},
	{name: "comma-joined with another cookie", off: "smuggled", handler: inject("Set-Cookie", "x=1, session=T; Path=/")},
	{name: "comma-joined after it", off: "guard", handler: inject("Set-Cookie", "session=T, x=1; Path=/")},
	{name: "nameless pair", off: "smuggled", handler: inject("Set-Cookie", "=session=T; Path=/")},
	{name: "inside another cookie's attributes", off: "smuggled", handler: inject("Set-Cookie", "x=1; Path=/; session=T")},
	{name: "as another cookie's value", off: "smuggled", handler: inject("Set-Cookie", "x=session=T; Path=/")},
	{name: "comma-joined under a lower-case key", off: "canonical", handler: inject("set-cookie", "x=1, session=T")},
	{name: "trailer by prefix", off: "trailers", handler: inject(http.TrailerPrefix+"Set-Cookie", "session=T; Path=/")},
	{name: "trailer by prefix, lower case", off: "trailers", handler: inject(http.TrailerPrefix+"set-cookie", "session=T")},
	{name: "trailer by prefix after the body", off: "trailers", late: true, handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "body for alice")
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"Set-Cookie", "session="+e.bob)
		}
	}},
	{name: "announced trailer", off: "trailers", handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "Set-Cookie")
			io.WriteString(w, "body for alice")
			w.Header().Add("Set-Cookie", "session="+e.bob)
		}
	}},
	{name: "announced trailer, lower case", off: "trailers", handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Other, set-cookie")
			w.WriteHeader(200)
			io.WriteString(w, "body for alice")
			w.Header().Add("Set-Cookie", "session="+e.bob)
		}
	}},
	{name: "informational response", off: "guard", handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Set-Cookie", "session="+e.bob)
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Set-Cookie")
			io.WriteString(w, "body for alice")
		}
	}},
	{name: "informational response, lower-case key", off: "canonical", handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header()["set-cookie"] = []string{"session=" + e.bob}
			w.WriteHeader(http.StatusEarlyHints)
			delete(w.Header(), "set-cookie")
			io.WriteString(w, "body for alice")
		}
	}},
	{name: "Flush", off: "guard", handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Set-Cookie", "session="+e.bob)
			w.(http.Flusher).Flush()
			io.WriteString(w, "body for alice")
		}
	}},
	{name: "ResponseController", off: "guard", handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Set-Cookie", "session="+e.bob)
			rc := http.NewResponseController(w)
			_ = rc.SetWriteDeadline(time.Now().Add(time.Minute))
			_ = rc.Flush()
		}
	}},
	{name: "ServeContent", off: "guard", handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Add("Set-Cookie", "session="+e.bob)
			http.ServeContent(w, r, "x.txt", time.Time{}, strings.NewReader("body for alice"))
		}
	}},
	{name: "goroutine writes the header map", off: "guard", handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			done := make(chan struct{})
			go func() { w.Header().Add("Set-Cookie", "session="+e.bob); close(done) }()
			<-done
			io.WriteString(w, "body for alice")
		}
	}},
	{name: "raw writer by Unwrap", off: "unwrap", handler: func(e *hostileEnv) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			raw := w
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
	{name: "raw writer under a foreign deletion", off: "guard", handler: inject("Set-Cookie", "session=T; Max-Age=0; Max-Age=3600")},
	{name: "kept writer writes into the next response", off: "stale", drive: driveKeptWriter(func(w http.ResponseWriter, bob string) {
		w.Header().Add("Set-Cookie", "session="+bob)
		w.WriteHeader(200)
		io.WriteString(w, "late")
	})},
	{name: "kept writer's header map, then a write", off: "stale", drive: driveKeptWriter(func(w http.ResponseWriter, bob string) {
		w.Header()["set-cookie"] = []string{"session=" + bob}
		io.WriteString(w, "late")
	})},
	{name: "kept writer flushes", off: "stale", drive: driveKeptWriter(func(w http.ResponseWriter, bob string) {
		w.Header().Add("Set-Cookie", "session="+bob)
		w.(http.Flusher).Flush()
	})},
	{name: "two sessions in one Cookie header, foreign first", off: "ambiguous", drive: driveAmbiguous(func(alice, bob string) []string {
		return []string{"session=" + bob + "; session=" + alice}
	})},
	{name: "two sessions, the foreign one quoted", off: "ambiguous", drive: driveAmbiguous(func(alice, bob string) []string {
		return []string{`session="` + bob + `"; session=` + alice}
	})},
	{name: "two Cookie headers, foreign first", off: "ambiguous", drive: driveAmbiguous(func(alice, bob string) []string {
		return []string{"session=" + bob, "other=1; session=" + alice}
	})},
	{name: "three Cookie headers, foreign in the middle", off: "ambiguous", drive: driveAmbiguous(func(alice, bob string) []string {
		return []string{"a=1", "session=" + bob, "b=2; session=" + alice}
	})},
	{name: "own stale session beside a tossed valid one", off: "ambiguous", drive: func(e *hostileEnv) seen {
		stale := e.aliceT
		e.f.get(e.alice, "/login?u=alice") // alice's old session is destroyed
		return driveAmbiguous(func(_, bob string) []string { return []string{"session=" + bob + "; session=" + stale} })(e)
	}},
	{name: "kept handle logs in on a recycled state", off: "seal", drive: driveKeptHandle},
}

// pooledWriter stands for a framework's pooled writer (or net/http's
// reused buffers) below cordon: one object that serves request after
// request. Each request gets a fresh recorder behind it.
type pooledWriter struct {
	mu  sync.Mutex
	rec *httptest.ResponseRecorder
}

func (p *pooledWriter) cur() *httptest.ResponseRecorder {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec
}
func (p *pooledWriter) Header() http.Header         { return p.cur().Header() }
func (p *pooledWriter) Write(b []byte) (int, error) { return p.cur().Write(b) }
func (p *pooledWriter) WriteHeader(code int)        { p.cur().WriteHeader(code) }
func (p *pooledWriter) Flush()                      { p.cur().Flush() }

// serve runs one request through the manager on the pooled writer.
func (e *hostileEnv) serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.pool.mu.Lock()
	e.pool.rec = rec
	e.pool.mu.Unlock()
	e.f.m.Middleware(h).ServeHTTP(e.pool, req)
	return rec
}

// driveKeptWriter: bob's request keeps its writer; after it ended, while
// alice's request is being served on the same pooled writer below, the
// kept writer is used.
func driveKeptWriter(use func(w http.ResponseWriter, bob string)) func(e *hostileEnv) seen {
	return func(e *hostileEnv) seen {
		var kept http.ResponseWriter
		keep := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			kept = w
			io.WriteString(w, "bob's page")
		})
		req := httptest.NewRequest("GET", "http://127.0.0.1/keep", nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: e.bob})
		e.serve(keep, req)
		// alice's request is now being served on the pooled writer; the
		// kept writer strikes before her handler writes.
		aliceH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			use(kept, e.bob)
			io.WriteString(w, "alice's page")
		})
		req = httptest.NewRequest("GET", "http://127.0.0.1/", nil)
		req.AddCookie(&http.Cookie{Name: "session", Value: e.aliceT})
		res := e.serve(aliceH, req).Result()
		b, _ := io.ReadAll(res.Body)
		return seen{status: res.StatusCode, header: res.Header, body: string(b)}
	}
}

// driveAmbiguous: alice's request carries bob's session too (tossed by a
// sibling subdomain); whoever it is answered as, it must not be bob.
func driveAmbiguous(cookies func(alice, bob string) []string) func(e *hostileEnv) seen {
	return func(e *hostileEnv) seen {
		req, _ := http.NewRequest("GET", e.f.srv.URL+"/whoami", nil)
		req.Header["Cookie"] = cookies(e.aliceT, e.bob)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			e.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return seen{status: resp.StatusCode, header: resp.Header, body: string(b), answered: string(b)}
	}
}

// driveKeptHandle: a handle of an ended request of alice's logs in as bob
// after the middleware recycled her request's state for a later request
// (the shape of a framework that pools its contexts).
func driveKeptHandle(e *hostileEnv) seen {
	var kept *Session
	keep := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { kept = From(r) })
	req := httptest.NewRequest("GET", "http://127.0.0.1/keep", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: e.aliceT})
	e.serve(keep, req)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = kept.Login("bob") // the recycled state is now this request's
		p, _ := From(r).Principal()
		io.WriteString(w, p)
	})
	req = httptest.NewRequest("GET", "http://127.0.0.1/", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: e.aliceT})
	rec := e.serve(h, req)
	return seen{status: rec.Code, header: rec.Header(), body: rec.Body.String(), answered: rec.Body.String()}
}

func newHostileEnv(t *testing.T, a attack, protectionOff bool) *hostileEnv {
	e := &hostileEnv{t: t, pool: &pooledWriter{}}
	mux := http.NewServeMux()
	mux.Handle("/", app())
	if a.handler != nil {
		mux.Handle("/x", a.handler(e))
	}
	e.f = newFixture(t, mux, Options{})
	if protectionOff {
		if !switchOff(e.f.m, a.off) {
			t.Fatalf("unknown protection %q", a.off)
		}
		if a.off == "seal" {
			switchOff(e.f.m, "recycle")
		}
	}
	e.bob = issue(t, e.f, "bob")
	e.alice = e.f.client()
	e.f.get(e.alice, "/login?u=alice")
	e.aliceT = e.f.cookie(e.alice)
	return e
}

// run drives the attack against alice and returns what she saw.
func (e *hostileEnv) run(a attack) seen {
	if a.drive != nil {
		return a.drive(e)
	}
	var s seen
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		s.early = append(s.early, http.Header(h))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", e.f.srv.URL+"/x", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: e.aliceT})
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.status, s.header, s.trailer, s.body = resp.StatusCode, resp.Header, resp.Trailer, string(b)
	// Ask, with alice's cookie, whom she is now.
	if body, _ := e.f.get(e.alice, "/whoami"); body == "bob" {
		s.answered = body
	}
	return s
}

func TestHostileSuite(t *testing.T) {
	if len(hostileAttacks) < 30 {
		t.Fatalf("%d attack shapes; the suite promises at least 30 over net/http", len(hostileAttacks))
	}
	for _, a := range hostileAttacks {
		t.Run(a.name, func(t *testing.T) {
			e := newHostileEnv(t, a, false)
			s := e.run(a)
			if c := s.crossed(e.bob); c != "" {
				t.Fatalf("crossing with every protection on: %s (status %d)", c, s.status)
			}
			if s.status == 200 && strings.Contains(s.body, "body for alice") && a.drive == nil && !a.late {
				t.Errorf("the hostile response passed with 200 and its body")
			}
			recorded := len(e.f.ev.named(reqlog.EventGuardBlock)) + len(e.f.ev.named(reqlog.EventStaleUse)) + len(e.f.ev.named(reqlog.EventBadCookie))
			if recorded == 0 {
				t.Errorf("nothing recorded: no guard_block, stale_use or bad_cookie")
			}
		})
		t.Run(a.name+"/oracle with "+a.off+" off", func(t *testing.T) {
			e := newHostileEnv(t, a, true)
			if c := e.run(a).crossed(e.bob); c == "" {
				t.Fatalf("%s off and the oracle saw no crossing", a.off)
			}
		})
	}
}

// TestAmbiguousFailsClosed: several values under the cookie's name that are
// not all valid sessions of one principal make the request anonymous,
// clear the cookie and record bad_cookie "ambiguous", whatever the order;
// two sessions of the same principal do not.
func TestAmbiguousFailsClosed(t *testing.T) {
	f := newFixture(t, app(), Options{})
	alice, bob, alice2 := issue(t, f, "alice"), issue(t, f, "bob"), issue(t, f, "alice")
	get := func(cookies ...string) (string, *http.Response) {
		req, _ := http.NewRequest("GET", f.srv.URL+"/whoami", nil)
		req.Header["Cookie"] = cookies
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b), resp
	}
	body, resp := get("session=" + alice + "; session=" + bob)
	if body != "" || !strings.HasPrefix(resp.Header.Get("Set-Cookie"), "session=;") {
		t.Fatalf("ambiguous: answered %q, Set-Cookie %q", body, resp.Header.Get("Set-Cookie"))
	}
	evs := f.ev.named(reqlog.EventBadCookie)
	if len(evs) != 1 || evs[0].Detail != BadAmbiguous {
		t.Fatalf("events %+v, want one bad_cookie ambiguous", evs)
	}
	if body, _ := get("session="+alice2, "session="+alice); body != "alice" {
		t.Fatalf("two sessions of alice: answered %q", body)
	}
	if body, _ := get("session=" + alice2 + "; session=" + bob); body != "" {
		t.Fatalf("own session first, then another principal's: answered %q", body)
	}
	if body, _ := get("session=garbage; session=" + bob); body != "" {
		t.Fatalf("garbage beside a valid session: answered %q", body)
	}
	if body, _ := get("session=" + alice); body != "alice" {
		t.Fatalf("alice's own session alone afterwards: answered %q", body)
	}
}

// TestKeptWriterRefusesAndDetaches: after its request, cordon's writer
// refuses every write with ErrRequestEnded, leaves one stale_use line, and
// hands out a detached header map.
func TestKeptWriterRefusesAndDetaches(t *testing.T) {
	var kept http.ResponseWriter
	var buf safeBuffer
	lw := reqlog.NewWriter(&buf, reqlog.WriterOptions{})
	f := newFixture(t, http.NewServeMux(), Options{})
	h := reqlog.Middleware(lw, reqlog.Options{})(f.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kept = w
		io.WriteString(w, "ok")
	})))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://127.0.0.1/", nil))
	if _, err := kept.Write([]byte("late")); err == nil || !strings.Contains(err.Error(), "request ended") {
		t.Fatalf("late Write = %v", err)
	}
	kept.WriteHeader(500)
	kept.(http.Flusher).Flush()
	if err := http.NewResponseController(kept).Flush(); err == nil {
		t.Fatal("late ResponseController.Flush succeeded")
	}
	if err := http.NewResponseController(kept).SetWriteDeadline(time.Now()); err == nil {
		t.Fatal("late SetWriteDeadline succeeded")
	}
	h1 := kept.Header()
	h1.Set("Set-Cookie", "x")
	if kept.Header().Get("Set-Cookie") != "" {
		t.Fatal("the header map after the request is not detached")
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	lines, err := reqlog.ReadLines(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	stale := 0
	for _, l := range lines {
		if l.Event == reqlog.EventStaleUse {
			stale++
		}
	}
	if stale != 1 {
		t.Fatalf("%d stale_use lines, want 1:\n%s", stale, buf.String())
	}
}

// TestResponseControllerThroughGuard: what http.ResponseController offers
// works through cordon's writer, which hands out nothing below it.
func TestResponseControllerThroughGuard(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
			t.Error("the guard hands out the writer below it")
		}
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline: %v", err)
		}
		if err := rc.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetReadDeadline: %v", err)
		}
		if err := rc.EnableFullDuplex(); err != nil {
			t.Errorf("EnableFullDuplex: %v", err)
		}
		io.WriteString(w, "a")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		io.WriteString(w, "b")
	}), Options{})
	if body, resp := f.get(f.c, "/"); body != "ab" || resp.StatusCode != 200 {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// TestDeadlineUnblocksAStuckWrite: a write deadline set from another
// goroutine reaches the connection while a write is blocked on a client
// that does not read.
func TestDeadlineUnblocksAStuckWrite(t *testing.T) {
	done := make(chan error, 1)
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		go func() {
			time.Sleep(200 * time.Millisecond)
			done <- rc.SetWriteDeadline(time.Now())
		}()
		chunk := make([]byte, 1<<20)
		for range 256 { // far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}), Options{})
	resp, err := http.Get(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read: the handler's writes block
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("SetWriteDeadline: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SetWriteDeadline waited for the blocked write")
	}
}
