package reqlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// logServer is an httptest server whose handler runs behind Middleware
// writing to a temporary file.
type logServer struct {
	*httptest.Server
	w    *Writer
	path string
}

func newLogServer(t *testing.T, opt Options, h http.Handler) *logServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "requests.log")
	w, err := Open(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(Middleware(w, opt)(h))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // superfluous WriteHeader calls are tested on purpose
	srv.Start()
	s := &logServer{Server: srv, w: w, path: path}
	t.Cleanup(func() { s.Server.Close(); w.Close() })
	return s
}

// waitLines waits until n lines were accepted by the writer, for requests
// whose handlers httptest.Server.Close does not wait for (hijacked ones).
func (s *logServer) waitLines(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); s.w.Stats().Lines < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d lines written, want %d", s.w.Stats().Lines, n)
		}
	}
}

// lines stops the server (waiting for every handler), closes the writer and
// reads the log back.
func (s *logServer) lines(t *testing.T) []Line {
	t.Helper()
	s.Server.Close()
	if err := s.w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	f, err := os.Open(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ls, err := ReadLines(f)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func get(t *testing.T, c *http.Client, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// fakeClock advances by step at every call.
type fakeClock struct {
	base time.Time
	step time.Duration
	n    atomic.Int64
}

func (c *fakeClock) Now() time.Time {
	return c.base.Add(time.Duration(c.n.Add(1)-1) * c.step)
}

func TestMiddlewareWritesEveryField(t *testing.T) {
	clock := &fakeClock{base: time.Date(2026, 11, 25, 17, 4, 5, 123456789, time.FixedZone("X", 3600)), step: 2500 * time.Microsecond}
	var ipSeen string
	asn := func(ip netip.Addr) int {
		if ip == netip.MustParseAddr("127.0.0.1") {
			return 64500
		}
		return 0
	}
	s := newLogServer(t, Options{Host: "web-7", Now: clock.Now, ASN: asn}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := FromContext(r.Context())
		if rec == nil {
			t.Error("no Record in the request context")
			return
		}
		ipSeen = rec.IP()
		rec.SessionIn("sid-in-fp", "u_1842")
		rec.SessionOut("sid-out-fp", "u_77")
		rec.View("u_1842")
		rec.Device("dev-fp")
		rec.Cache("miss")
		rec.Event(EventBadCookie, "expired")
		rec.Event(EventLogin, "")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "made")
	}))
	resp := get(t, s.Client(), s.URL+"/notifications/a%20b?token=SECRET&x=1", map[string]string{"User-Agent": "test-agent/1.0"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ls := s.lines(t)
	if len(ls) != 1 {
		t.Fatalf("%d lines, want 1", len(ls))
	}
	l := ls[0]
	raw, _ := os.ReadFile(s.path)
	if strings.Contains(string(raw), "SECRET") || strings.Contains(string(raw), "token") {
		t.Fatalf("query string leaked into the log: %s", raw)
	}
	want := Line{
		V: 1, TS: "2026-11-25T16:04:05.123456Z", DurMS: 2.5, Req: l.Req, Host: "web-7", PID: os.Getpid(), Seq: 1,
		IP: "127.0.0.1", UA: "test-agent/1.0", Method: "GET", Path: "/notifications/a b", Status: 201,
		SidIn: "sid-in-fp", UidIn: "u_1842", SidOut: "sid-out-fp", UidOut: "u_77", UidView: "u_1842",
		Dev: "dev-fp", Cache: "miss", Event: EventLogin, ASN: 64500,
	}
	if l != want {
		t.Fatalf("line\n got %+v\nwant %+v", l, want)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(l.Req) {
		t.Fatalf("req %q is not 128 bits of hex", l.Req)
	}
	if ipSeen != "127.0.0.1" {
		t.Fatalf("Record.IP() in handler = %q", ipSeen)
	}
}

func TestMiddlewareDefaults(t *testing.T) {
	s := newLogServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	before := time.Now().UTC()
	get(t, s.Client(), s.URL+"/", nil)
	get(t, s.Client(), s.URL+"/", nil)
	after := time.Now().UTC()
	ls := s.lines(t)
	host, _ := os.Hostname()
	if len(ls) != 2 {
		t.Fatalf("%d lines", len(ls))
	}
	for _, l := range ls {
		ts, err := time.Parse(time.RFC3339Nano, l.TS)
		if err != nil || !strings.HasSuffix(l.TS, "Z") || !strings.Contains(l.TS, ".") {
			t.Fatalf("ts %q: not RFC 3339 UTC with fraction (%v)", l.TS, err)
		}
		if ts.Before(before.Truncate(time.Microsecond)) || ts.After(after) {
			t.Fatalf("ts %v not within [%v, %v]", ts, before, after)
		}
		if l.DurMS < 0 || l.Host != host || l.Status != 200 || l.UA == "" || l.IP != "127.0.0.1" {
			t.Fatalf("bad line %+v", l)
		}
	}
	if ls[0].Req == ls[1].Req {
		t.Fatalf("two requests share the id %s", ls[0].Req)
	}
}

func TestMiddlewareSeqInArrivalOrder(t *testing.T) {
	s := newLogServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	const n = 20
	for i := 0; i < n; i++ {
		get(t, s.Client(), fmt.Sprintf("%s/%d", s.URL, i), nil)
	}
	ls := s.lines(t)
	if len(ls) != n {
		t.Fatalf("%d lines, want %d", len(ls), n)
	}
	for i, l := range ls {
		if l.Seq != int64(i+1) || l.Path != fmt.Sprintf("/%d", i) {
			t.Fatalf("line %d: seq %d path %s", i, l.Seq, l.Path)
		}
		if i > 0 && l.TS < ls[i-1].TS {
			t.Fatalf("ts goes back: %s after %s", l.TS, ls[i-1].TS)
		}
	}
}

func TestMiddlewareStatus(t *testing.T) {
	file := filepath.Join(t.TempDir(), "body")
	os.WriteFile(file, []byte(strings.Repeat("x", 100000)), 0o600)
	handlers := map[string]struct {
		h    http.HandlerFunc
		want int
	}{
		"write without header": {func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hi")) }, 200},
		"nothing written":      {func(w http.ResponseWriter, r *http.Request) {}, 200},
		"explicit 404":         {func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, 404},
		"second header ignored": {func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(418)
			w.WriteHeader(500)
		}, 418},
		"early hints then 204": {func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusNoContent)
		}, 204},
		"100 continue then write": {func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusContinue)
			w.Write([]byte("ok"))
		}, 200},
		"flush": {func(w http.ResponseWriter, r *http.Request) { w.(http.Flusher).Flush() }, 200},
		"controller flush": {func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
		}, 200},
		"controller deadline": {func(w http.ResponseWriter, r *http.Request) {
			if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
				t.Errorf("SetWriteDeadline through Unwrap: %v", err)
			}
			w.WriteHeader(202)
		}, 202},
		"readfrom": {func(w http.ResponseWriter, r *http.Request) {
			f, err := os.Open(file)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			if _, ok := w.(io.ReaderFrom); !ok {
				t.Error("wrapper hides io.ReaderFrom")
			}
			if n, err := io.Copy(w, f); n != 100000 || err != nil {
				t.Errorf("io.Copy = %d, %v", n, err)
			}
		}, 200},
		"writestring": {func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-A", "1")
			io.WriteString(w, "hello")
		}, 200},
		"panic": {func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }, 0},
		"panic after header": {func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500) // still in net/http's buffer: never sent
			panic(http.ErrAbortHandler)
		}, 0},
		"panic after flush": {func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, 500},
		"panic after big body": {func(w http.ResponseWriter, r *http.Request) {
			w.Write(make([]byte, 10000))
			panic(http.ErrAbortHandler)
		}, 200},
	}
	mux := http.NewServeMux()
	for name, c := range handlers {
		mux.Handle("/"+strings.ReplaceAll(name, " ", "-"), c.h)
	}
	s := newLogServer(t, Options{}, mux)
	got1xx := map[string]int{}
	for name := range handlers {
		path := "/" + strings.ReplaceAll(name, " ", "-")
		var n1xx int
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, header textproto.MIMEHeader) error { n1xx++; return nil },
		})
		// POST: the client does not retry it when the server aborts.
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL+path, nil)
		resp, err := s.Client().Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if c := handlers[name]; c.want != 0 && resp.StatusCode != c.want {
				t.Errorf("%s: client got %d, want %d", name, resp.StatusCode, c.want)
			}
			if name == "readfrom" && len(body) != 100000 {
				t.Errorf("readfrom: body %d bytes", len(body))
			}
		}
		got1xx[name] = n1xx
	}
	if got1xx["early hints then 204"] != 1 {
		t.Errorf("client saw %d informational responses, want 1", got1xx["early hints then 204"])
	}
	ls := s.lines(t)
	if len(ls) != len(handlers) {
		t.Fatalf("%d lines for %d requests", len(ls), len(handlers))
	}
	for _, l := range ls {
		name := strings.ReplaceAll(strings.TrimPrefix(l.Path, "/"), "-", " ")
		if c, ok := handlers[name]; !ok || l.Status != c.want {
			t.Errorf("%s: logged status %d, want %d", name, l.Status, c.want)
		}
	}
}

// TestMiddlewareClientAbort cancels the client mid-request: a request that
// never got a status logs 0, one that got its header first keeps it.
func TestMiddlewareClientAbort(t *testing.T) {
	started := make(chan struct{}, 2)
	handlerDone := make(chan struct{}, 2)
	s := newLogServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { handlerDone <- struct{}{} }()
		if r.URL.Path == "/after-header" {
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush()
		}
		started <- struct{}{}
		<-r.Context().Done()
		// Too late: the client is gone.
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("late"))
	}))
	for _, path := range []string{"/before-header", "/after-header"} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
		errc := make(chan error, 1)
		go func() {
			resp, err := s.Client().Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			errc <- err
		}()
		<-started
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: client error %v, want canceled", path, err)
		}
		<-handlerDone
	}
	ls := s.lines(t)
	if len(ls) != 2 {
		t.Fatalf("%d lines", len(ls))
	}
	want := map[string]int{"/before-header": 0, "/after-header": http.StatusAccepted}
	for _, l := range ls {
		if l.Status != want[l.Path] {
			t.Errorf("%s: status %d, want %d", l.Path, l.Status, want[l.Path])
		}
		if l.DurMS <= 0 {
			t.Errorf("%s: dur_ms %v", l.Path, l.DurMS)
		}
	}
}

func TestMiddlewareHijack(t *testing.T) {
	s := newLogServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Hijacker); !ok {
			t.Error("wrapper hides http.Hijacker")
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
			t.Errorf("Write after Hijack: %v", err)
		}
		if r.Header.Get("Upgrade") != "" {
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString(line)
		} else {
			brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		}
		brw.Flush()
	}))
	conn, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprintf(conn, "ping\n")
	if echo, _ := br.ReadString('\n'); echo != "ping\n" {
		t.Fatalf("echo %q", echo)
	}
	conn.Close()
	get(t, s.Client(), s.URL+"/raw", nil)
	s.waitLines(t, 2)
	ls := s.lines(t)
	want := map[string]int{"/ws": 101, "/raw": 0}
	if len(ls) != 2 {
		t.Fatalf("%d lines", len(ls))
	}
	for _, l := range ls {
		if l.Status != want[l.Path] {
			t.Errorf("%s: status %d, want %d", l.Path, l.Status, want[l.Path])
		}
	}
}

func TestMiddlewareTrustedProxy(t *testing.T) {
	opt := Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	var seen atomic.Value
	s := newLogServer(t, opt, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(FromContext(r.Context()).IP())
	}))
	get(t, s.Client(), s.URL+"/", map[string]string{"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
	ls := s.lines(t)
	if len(ls) != 1 || ls[0].IP != "203.0.113.9" || seen.Load() != "203.0.113.9" {
		t.Fatalf("ip %+v, handler saw %v", ls, seen.Load())
	}
}

func TestMiddlewareLateAnnotationIgnored(t *testing.T) {
	var rec *Record
	s := newLogServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec = FromContext(r.Context())
		rec.View("u_1")
	}))
	get(t, s.Client(), s.URL+"/", nil)
	s.Server.Close() // every handler and its line are done
	rec.View("u_2")
	rec.SetIP("9.9.9.9")
	if rec.IP() != "127.0.0.1" {
		t.Fatalf("late SetIP changed the record: %s", rec.IP())
	}
	if ls := s.lines(t); ls[0].UidView != "u_1" {
		t.Fatalf("uid_view %q", ls[0].UidView)
	}
}

func TestMiddlewareHostileRequest(t *testing.T) {
	ua := strings.Repeat("a", MaxUA-1) + "é" + "\"},{\"uid_in\":\"u_1\"}\xff"
	s := newLogServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	get(t, s.Client(), s.URL+"/%22%7D%0A%7B%22uid_in%22:%22x%ff", map[string]string{"User-Agent": ua})
	get(t, s.Client(), s.URL+"/", map[string]string{"User-Agent": "\xff\xfe" + strings.Repeat("€", 200)})
	ls := s.lines(t)
	if len(ls) != 2 {
		t.Fatalf("%d lines", len(ls))
	}
	if ls[0].UA != strings.Repeat("a", MaxUA-1) || ls[0].UidIn != "" {
		t.Fatalf("ua %q uid_in %q", ls[0].UA, ls[0].UidIn)
	}
	if ls[0].Path != "/\"}\n{\"uid_in\":\"x\ufffd" {
		t.Fatalf("path %q", ls[0].Path)
	}
	if len(ls[1].UA) > MaxUA || !utf8.ValidString(ls[1].UA) || !strings.HasPrefix(ls[1].UA, "\ufffd€") {
		t.Fatalf("ua %q (%d bytes)", ls[1].UA, len(ls[1].UA))
	}
}

func TestCutUA(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", 300), strings.Repeat("a", 256)},
		{strings.Repeat("a", 255) + "é", strings.Repeat("a", 255)},
		{strings.Repeat("a", 254) + "é", strings.Repeat("a", 254) + "é"},
		{strings.Repeat("a", 254) + "😀", strings.Repeat("a", 254)},
		{strings.Repeat("a", 250) + "\xff" + "bbbbbb", strings.Repeat("a", 250) + "\ufffd" + "bbb"},
	} {
		got := cutUA(tt.in)
		if got != tt.want || len(got) > MaxUA || !utf8.ValidString(got) {
			t.Errorf("cutUA(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMiddlewareConcurrent runs many requests at once, each annotating its
// own record, with stale goroutines annotating after the request ended.
func TestMiddlewareConcurrent(t *testing.T) {
	var stale sync.WaitGroup
	release := make(chan struct{})
	s := newLogServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := FromContext(r.Context())
		id := strings.TrimPrefix(r.URL.Path, "/")
		rec.SessionIn("fp-"+id, "u_"+id)
		rec.View("u_" + id)
		stale.Add(1)
		go func() { // outlives the request; must never change its line
			defer stale.Done()
			<-release
			rec.View("stale")
			rec.Event(EventGuardBlock, "late")
		}()
		w.Write([]byte(id))
	}))
	const workers, each = 16, 25
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				get(t, s.Client(), fmt.Sprintf("%s/%d", s.URL, g*each+i), nil)
			}
		}()
	}
	wg.Wait()
	s.Server.Close() // every handler has returned and its line is written
	close(release)
	stale.Wait()
	ls := s.lines(t)
	if len(ls) != workers*each {
		t.Fatalf("%d lines, want %d", len(ls), workers*each)
	}
	seqs := map[int64]bool{}
	for _, l := range ls {
		id := strings.TrimPrefix(l.Path, "/")
		if l.UidView != "u_"+id || l.Event != "" || l.UidIn != "u_"+id || l.SidIn != "fp-"+id {
			t.Fatalf("line for %s carries another request's annotations: %+v", l.Path, l)
		}
		if l.Seq < 1 || l.Seq > workers*each || seqs[l.Seq] {
			t.Fatalf("seq %d out of range or repeated", l.Seq)
		}
		seqs[l.Seq] = true
	}
}

func TestMiddlewarePanicsOnBadSetup(t *testing.T) {
	for name, f := range map[string]func(){
		"nil writer": func() { Middleware(nil, Options{}) },
		"bad header": func() { Middleware(NewWriter(io.Discard, WriterOptions{}), Options{ProxyHeader: "X-Real-IP"}) },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "cordon/reqlog: ") {
					t.Errorf("%s: panic %v", name, r)
				}
			}()
			f()
		}()
	}
}

func TestAppendTS(t *testing.T) {
	for in, want := range map[time.Time]string{
		time.Date(2021, 3, 2, 17, 4, 5, 123456789, time.UTC):                "2021-03-02T17:04:05.123456Z",
		time.Date(2021, 1, 1, 0, 30, 0, 999, time.FixedZone("plus1", 3600)): "2020-12-31T23:30:00.000000Z",
		time.Date(999, 12, 31, 23, 59, 59, 999999999, time.UTC):             "0999-12-31T23:59:59.999999Z",
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC):                        "0000-01-01T00:00:00.000000Z",
	} {
		got := string(appendTS(nil, in))
		if got != want {
			t.Errorf("appendTS(%v) = %s, want %s", in, got, want)
		}
		if ref := in.UTC().Format("2006-01-02T15:04:05.000000Z07:00"); in.Year() < 10000 && got != ref {
			t.Errorf("appendTS(%v) = %s, time.Format gives %s", in, got, ref)
		}
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestRequestIDSource(t *testing.T) {
	start := time.Date(2021, 3, 2, 17, 4, 5, 0, time.UTC)
	ts, id := tsAndID(start, strings.NewReader(strings.Repeat("\xab", 16)))
	if ts != "2021-03-02T17:04:05.000000Z" || id != strings.Repeat("ab", 16) {
		t.Fatalf("ts %s id %s", ts, id)
	}
	_, id1 := tsAndID(start, failingReader{})
	_, id2 := tsAndID(start, failingReader{})
	if len(id1) != 32 || id1 == id2 {
		t.Fatalf("failing source: ids %s %s", id1, id2)
	}
}

// TestMiddlewareHTTP2 runs the wrapper over HTTP/2, whose ResponseWriter
// flushes and pushes but cannot be hijacked.
func TestMiddlewareHTTP2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "requests.log")
	w, err := Open(path, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	srv := httptest.NewUnstartedServer(Middleware(w, Options{})(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if _, _, err := http.NewResponseController(rw).Hijack(); !errors.Is(err, http.ErrNotSupported) {
			t.Errorf("Hijack over HTTP/2: %v", err)
		}
		rw.WriteHeader(http.StatusPartialContent)
		if err := http.NewResponseController(rw).Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
	})))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	resp := get(t, srv.Client(), srv.URL+"/h2?q=1", nil)
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("proto %s status %d", resp.Proto, resp.StatusCode)
	}
	srv.Close()
	w.Close()
	f, _ := os.Open(path)
	defer f.Close()
	ls, err := ReadLines(f)
	if err != nil || len(ls) != 1 || ls[0].Status != http.StatusPartialContent || ls[0].Path != "/h2" {
		t.Fatalf("%+v %v", ls, err)
	}
}

// TestMiddlewareHandMadeRequest: a request built without a URL or a remote
// address (as in unit tests of other packages) is logged, not a panic.
func TestMiddlewareHandMadeRequest(t *testing.T) {
	var out syncBuffer
	w := NewWriter(&out, WriterOptions{})
	h := Middleware(w, Options{})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), (&http.Request{Method: "GET", Header: http.Header{}}).WithContext(context.Background()))
	w.Close()
	ls := readAll(t, strings.NewReader(out.String()))
	if len(ls) != 1 || ls[0].Status != 200 || ls[0].IP != "" || ls[0].Path != "" {
		t.Fatalf("%+v", ls)
	}
}

// TestMiddlewareDeadlineIsNotAbort: a handler answering after a deadline set
// by an outer middleware did send its status.
func TestMiddlewareDeadlineIsNotAbort(t *testing.T) {
	var out syncBuffer
	w := NewWriter(&out, WriterOptions{})
	h := Middleware(w, Options{})(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		rw.WriteHeader(http.StatusGatewayTimeout)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	w.Close()
	if ls := readAll(t, strings.NewReader(out.String())); len(ls) != 1 || ls[0].Status != http.StatusGatewayTimeout {
		t.Fatalf("%+v", ls)
	}
}

// TestLateRepeatsTheEndedRequest: a Late line carries the ended request's
// client and session fields exactly as its own line did, with a new id and
// time, status 0, no session out, and the event with " req=" and the ended
// request's id.
func TestLateRepeatsTheEndedRequest(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, WriterOptions{})
	kept := make(chan *Record, 1)
	opt := Options{Host: "node-7", ASN: func(netip.Addr) int { return 64500 }}
	h := Middleware(w, opt)(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rec := FromContext(r.Context())
		rec.SessionIn("00112233445566778899aabbccddeeff", "alice")
		rec.SessionOut("ffeeddccbbaa99887766554433221100", "alice")
		rec.View("alice")
		rec.Device("0123456789abcdef0123456789abcdef")
		rec.Cache("hit")
		rec.Event(EventRenew, "")
		kept <- rec
		rw.WriteHeader(http.StatusTeapot)
	}))
	req := httptest.NewRequest("POST", "/profile?x=1", nil)
	req.RemoteAddr = "203.0.113.9:4321"
	req.Header.Set("User-Agent", "test-agent/1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	(<-kept).Late(EventStaleUse, "handle kept")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines, err := ReadLines(&buf)
	if err != nil || len(lines) != 2 {
		t.Fatalf("%d lines, %v", len(lines), err)
	}
	first, late := lines[0], lines[1]
	want := first
	want.TS, want.Req, want.DurMS, want.Status = late.TS, late.Req, 0, 0
	want.SidOut, want.UidOut = "", ""
	want.Event, want.Detail = EventStaleUse, "handle kept req="+first.Req
	if late != want {
		t.Errorf("late line\n%+v\nwant\n%+v", late, want)
	}
	if late.Req == first.Req || len(late.Req) != 32 || len(late.TS) != tsLen {
		t.Errorf("late line's id %q and time %q", late.Req, late.TS)
	}
	if first.Host != "node-7" || first.ASN != 64500 || first.IP != "203.0.113.9" || first.UA != "test-agent/1" || first.Status != http.StatusTeapot || first.Path != "/profile" {
		t.Errorf("first line %+v", first)
	}
}
