package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testHandler answers by path, the way handlers a server must frame
// differently do. lean counts the requests the lean loop served.
func testHandler(lean *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(*response); ok {
			lean.Add(1)
		}
		q := r.URL.Query()
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello "+r.Header.Get("X-Who"))
		case "/sniff":
			io.WriteString(w, "<!doctype html><p>hi</p>")
		case "/size":
			n, _ := strconv.Atoi(q.Get("n"))
			chunk := strings.Repeat("x", 100)
			for n > 0 {
				k := min(n, len(chunk))
				io.WriteString(w, chunk[:k])
				n -= k
			}
		case "/declared":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "12345")
		case "/short":
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "12345")
		case "/over":
			w.Header().Set("Content-Length", "3")
			_, err := io.WriteString(w, "12345")
			w.Header().Set("X-Err", fmt.Sprint(err != nil))
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			_, err := io.WriteString(w, "body")
			if !errors.Is(err, http.ErrBodyNotAllowed) {
				panic("a body on 204")
			}
		case "/notmodified":
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "after hints")
		case "/deadline":
			err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute))
			io.WriteString(w, fmt.Sprint("deadline set: ", err == nil))
		case "/flush":
			io.WriteString(w, "one ")
			http.NewResponseController(w).Flush()
			io.WriteString(w, "two")
		case "/status":
			code, _ := strconv.Atoi(q.Get("code"))
			w.WriteHeader(code)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/split":
			w.Header().Set("X-Split", "a\r\nSet-Cookie: evil=1")
			w.Header()["Bad Name"] = []string{"x"}
			io.WriteString(w, "ok")
		case "/panic":
			io.WriteString(w, "partial")
			panic("boom")
		case "/abort":
			io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum, X-Late")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Undeclared", "7")
		case "/echo":
			w.Header().Set("X-Method", r.Method)
			w.Header().Set("X-Host", r.Host)
			w.Header().Set("X-Uri", r.RequestURI)
			w.Header().Set("X-Cookie", strings.Join(r.Header["Cookie"], "|"))
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	})
}

// servers starts the handler behind Server and behind a plain net/http
// server, with the same settings.
func servers(t *testing.T, h http.Handler, tune func(*http.Server)) (lean, std string) {
	t.Helper()
	quiet := log.New(io.Discard, "", 0)
	mk := func() *http.Server {
		s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 8 << 10, ErrorLog: quiet}
		if tune != nil {
			tune(s)
		}
		return s
	}
	l1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := &Server{Fallback: mk()}
	ss := mk()
	go ls.Serve(l1)
	go ss.Serve(l2)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ls.Shutdown(ctx)
		ss.Shutdown(ctx)
	})
	return l1.Addr().String(), l2.Addr().String()
}

// serveLean starts h behind a Server, its fallback's settings changed by
// tune, and returns the address; the server shuts down with the test.
func serveLean(t *testing.T, h http.Handler, tune func(*http.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	if tune != nil {
		tune(fb)
	}
	s := &Server{Fallback: fb}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return ln.Addr().String()
}

type answer struct {
	status  int
	header  http.Header
	trailer http.Header
	body    string
	err     string // a framing error reading the body
}

// roundTrip writes raw to addr and reads the responses to the requests
// (methods, in order) until the connection closes or goes quiet.
func roundTrip(t *testing.T, addr, raw string, methods []string) (got []answer, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := 0; ; i++ {
		c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
		m := "GET"
		if i < len(methods) {
			m = methods[i]
		}
		req, _ := http.NewRequest(m, "/", nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			var ne net.Error
			return got, !(errors.As(err, &ne) && ne.Timeout())
		}
		b, err := io.ReadAll(resp.Body)
		a := answer{status: resp.StatusCode, header: resp.Header, trailer: resp.Trailer, body: string(b)}
		if err != nil {
			a.err = "body: " + err.Error()
		}
		a.header.Del("Date")
		got = append(got, a)
		if err != nil || resp.Close {
			_, err := br.ReadByte()
			return got, err != nil
		}
	}
}

// TestSameAsNetHTTP sends the same bytes to Server and to net/http and
// wants the same answers, framing and connection state: for the requests
// the lean loop serves and for the ones it hands over.
func TestSameAsNetHTTP(t *testing.T) {
	var lean atomic.Int64
	leanAddr, stdAddr := servers(t, testHandler(&lean), nil)
	get := func(path string, extra ...string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: site.test\r\n" + strings.Join(extra, "") + "\r\n"
	}
	cases := []struct {
		name    string
		raw     string
		methods []string
		lean    int // requests the lean loop must have served
	}{
		{"small", get("/small", "X-Who: ann\r\n"), nil, 1},
		{"sniffed type", get("/sniff"), nil, 1},
		{"empty", get("/size?n=0"), nil, 1},
		{"buffered 2048", get("/size?n=2048"), nil, 1},
		{"chunked 2049", get("/size?n=2049"), nil, 1},
		{"chunked large", get("/size?n=100000"), nil, 1},
		{"declared", get("/declared"), nil, 1},
		{"trailers", get("/trailers"), nil, 1},
		{"declared short", get("/short"), nil, 1},
		{"declared over", get("/over"), nil, 1},
		{"204", get("/nocontent"), nil, 1},
		{"304", get("/notmodified"), nil, 1},
		{"418", get("/status?code=418"), nil, 1},
		{"599 unknown", get("/status?code=599"), nil, 1},
		{"early hints", get("/hints"), nil, 1},
		{"flush", get("/flush"), nil, 1},
		{"write deadline", get("/deadline"), nil, 1},
		{"handler closes", get("/close") + get("/small"), nil, 1},
		{"client closes", get("/small", "Connection: close\r\n") + get("/small"), nil, 1},
		{"response splitting", get("/split"), nil, 1},
		{"panic", get("/panic") + get("/small"), nil, 1},
		{"abort", get("/abort") + get("/small"), nil, 1},
		{"head", "HEAD /small HTTP/1.1\r\nHost: a\r\n\r\n" + get("/small"), []string{"HEAD", "GET"}, 2},
		{"head large", "HEAD /size?n=5000 HTTP/1.1\r\nHost: a\r\n\r\n" + get("/small"), []string{"HEAD", "GET"}, 2},
		{"head declared", "HEAD /declared HTTP/1.1\r\nHost: a\r\n\r\n", []string{"HEAD"}, 1},
		{"pipelined", get("/small", "X-Who: a\r\n") + get("/size?n=3000") + get("/small", "X-Who: b\r\n"), nil, 3},
		{"echo", get("/echo?q=1", "Cookie: a=1\r\nCookie: b=2\r\n"), nil, 1},
		{"case of names", "GET /echo HTTP/1.1\r\nhOsT: x.test\r\ncookie: a=1\r\n\r\n", nil, 1},
		{"no host", "GET /small HTTP/1.1\r\n\r\n", nil, 0},
		{"two hosts", "GET /small HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", nil, 0},
		{"bad host", "GET /small HTTP/1.1\r\nHost: a b\r\n\r\n", nil, 0},
		{"http/1.0", "GET /small HTTP/1.0\r\nHost: a\r\n\r\n", nil, 0},
		{"http/1.0 keep-alive", "GET /small HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n" + get("/small"), nil, 0},
		{"post with body", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + get("/small"), nil, 0},
		{"get then post", get("/small") + "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" + get("/small"), nil, 1},
		{"get with body", "GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi" + get("/small"), nil, 0},
		{"chunked request", "GET /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n" + get("/small"), nil, 0},
		{"smuggling CL and TE", "GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get("/small"), nil, 0},
		{"two lengths", "GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", nil, 0},
		{"expect", "GET /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", nil, 0},
		{"upgrade", "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", nil, 0},
		{"bare LF", "GET /small HTTP/1.1\nHost: a\n\n", nil, 0},
		{"bare LF later", "GET /small HTTP/1.1\r\nHost: a\n\r\n", nil, 0},
		{"obs-fold", "GET /echo HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\n b=2\r\n\r\n", nil, 0},
		{"space before colon", "GET /echo HTTP/1.1\r\nHost : a\r\n\r\n", nil, 0},
		{"NUL in value", "GET /echo HTTP/1.1\r\nHost: a\r\nCookie: a\x00b\r\n\r\n", nil, 0},
		{"absolute form", "GET http://a/small HTTP/1.1\r\nHost: a\r\n\r\n", nil, 0},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", nil, 0},
		{"lower-case method", "get /small HTTP/1.1\r\nHost: a\r\n\r\n", nil, 0},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", nil, 0},
		{"non-ASCII target", "GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", nil, 0},
		{"header too large", "GET /small HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("x", 20<<10) + "\r\n\r\n", nil, 0},
		{"header just over the limit, in one piece", "GET /small HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("x", 8<<10) + "\r\n\r\n", nil, 0},
		{"header just under the limit", "GET /small HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("x", 7<<10) + "\r\n\r\n", nil, 1},
		{"leading blank line", "\r\n" + get("/small"), nil, 0},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", nil, 0},
		{"truncated", "GET /small HTTP/1.1\r\nHost: a\r\n", nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := lean.Load()
			want, wantClosed := roundTrip(t, stdAddr, tc.raw, tc.methods)
			mid := lean.Load()
			got, gotClosed := roundTrip(t, leanAddr, tc.raw, tc.methods)
			if mid != before {
				t.Fatal("net/http's server served through a lean response")
			}
			if n := lean.Load() - mid; n != int64(tc.lean) {
				t.Errorf("the lean loop served %d requests, want %d", n, tc.lean)
			}
			if len(got) != len(want) {
				t.Fatalf("%d answers, net/http gives %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.status != w.status || g.body != w.body || g.err != w.err || !sameHeader(g.header, w.header) || !sameHeader(g.trailer, w.trailer) {
					t.Errorf("answer %d:\n got %d %v %q %s trailer %v\nwant %d %v %q %s trailer %v", i, g.status, g.header, g.body, g.err, g.trailer, w.status, w.header, w.body, w.err, w.trailer)
				}
			}
			if gotClosed != wantClosed {
				t.Errorf("connection closed: %v, net/http: %v", gotClosed, wantClosed)
			}
		})
	}
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if !slices.Equal(va, b[k]) {
			return false
		}
	}
	return true
}

// TestNoCrossTalk runs many connections at once, each pipelining requests
// with its own cookie, and wants every answer to carry its own request's
// value: the buffers the lean loop reuses never let one request's data
// into another's answer.
func TestNoCrossTalk(t *testing.T) {
	var lean atomic.Int64
	addr, _ := servers(t, testHandler(&lean), nil)
	const conns, perConn = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			go func() {
				bw := bufio.NewWriter(nc)
				for i := 0; i < perConn; i++ {
					pad := strings.Repeat("p", (c*perConn+i)%700) // heads of many sizes
					fmt.Fprintf(bw, "GET /echo?i=%d HTTP/1.1\r\nHost: h%d\r\nX-Pad: %s\r\nCookie: sid=c%d-r%d\r\n\r\n", i, c, pad, c, i)
				}
				bw.Flush()
			}()
			br := bufio.NewReader(nc)
			for i := 0; i < perConn; i++ {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				want := fmt.Sprintf("sid=c%d-r%d", c, i)
				if got := resp.Header.Get("X-Cookie"); got != want || resp.Header.Get("X-Host") != fmt.Sprintf("h%d", c) ||
					resp.Header.Get("X-Uri") != fmt.Sprintf("/echo?i=%d", i) {
					errs <- fmt.Errorf("connection %d request %d: cookie %q host %q uri %q", c, i, got, resp.Header.Get("X-Host"), resp.Header.Get("X-Uri"))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := lean.Load(); n != conns*perConn {
		t.Errorf("lean loop served %d of %d", n, conns*perConn)
	}
}

// TestIdleTimeout: an idle keep-alive connection is closed after the idle
// timeout, and one that trickles a header after the header timeout.
func TestIdleTimeout(t *testing.T) {
	var lean atomic.Int64
	addr, _ := servers(t, testHandler(&lean), func(s *http.Server) {
		s.ReadHeaderTimeout = 1500 * time.Millisecond
		s.IdleTimeout = 1500 * time.Millisecond
	})
	for _, first := range []string{"GET /small HTTP/1.1\r\nHost: a\r\n\r\n", "GET /small HTTP/1.1\r\n"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		io.WriteString(c, first)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // to the server's close
		if d := time.Since(start); d < 400*time.Millisecond || d > 8*time.Second {
			t.Errorf("%q: closed after %v, want about 1.5s", first, d)
		}
		c.Close()
	}
}

// TestShutdown: an idle connection is closed at once, a request in
// progress finishes with Connection: close, and Serve returns
// ErrServerClosed.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Fallback: &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	idle, _ := net.Dial("tcp", ln.Addr().String())
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(ibr, nil); err != nil || resp.StatusCode != 200 {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
	}
	busy, _ := net.Dial("tcp", ln.Addr().String())
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Errorf("idle connection at shutdown: %v, want EOF", err)
	}
	close(release)
	busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "done" || !resp.Close {
		t.Errorf("request in progress: %q, close %v", b, resp.Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// TestClientGoneFailsWrites: once the client has gone, the handler's
// writes fail (and it is not left writing into nothing).
func TestClientGoneFailsWrites(t *testing.T) {
	failed := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		big := strings.Repeat("x", 64<<10)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := io.WriteString(w, big); err != nil {
				failed <- true
				return
			}
			if http.NewResponseController(w).Flush() != nil {
				failed <- true
				return
			}
		}
		failed <- false
	})
	addr := serveLean(t, h, nil)
	c, _ := net.Dial("tcp", addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	io.ReadFull(c, make([]byte, 1000))
	c.Close()
	select {
	case ok := <-failed:
		if !ok {
			t.Error("writes to a closed client connection kept succeeding")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("handler still writing")
	}
}

// TestWriteTimeout: a client that does not read its answer has the
// connection cut after WriteTimeout, as under net/http.
func TestWriteTimeout(t *testing.T) {
	failed := make(chan time.Duration, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		big := strings.Repeat("x", 1<<20)
		for i := 0; i < 1000; i++ {
			if _, err := io.WriteString(w, big); err != nil {
				break
			}
		}
		failed <- time.Since(start)
	})
	addr := serveLean(t, h, func(s *http.Server) { s.WriteTimeout = 1500 * time.Millisecond })
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	select {
	case d := <-failed:
		if d < 400*time.Millisecond {
			t.Errorf("writes failed after %v, before the timeout", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a client that reads nothing held the handler past the write timeout")
	}
}

// TestLongRequestWatch: a request that runs long has its context
// cancelled when the client goes away, and a request pipelined behind a
// long one (read by the watch) is served in order.
func TestLongRequestWatch(t *testing.T) {
	cancelled := make(chan bool, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/wait":
			select {
			case <-r.Context().Done():
				cancelled <- true
			case <-time.After(10 * time.Second):
				cancelled <- false
			}
		case "/slow":
			time.Sleep(3 * watchAfter)
			io.WriteString(w, "slow")
		default:
			io.WriteString(w, "next:"+r.URL.Path)
		}
	})
	addr := serveLean(t, h, nil)

	c, _ := net.Dial("tcp", addr)
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(2 * watchAfter)
	c.Close()
	if !<-cancelled {
		t.Error("the context of a long request lived on after the client left")
	}

	c2, _ := net.Dial("tcp", addr)
	defer c2.Close()
	io.WriteString(c2, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(2 * watchAfter) // the watch is reading now
	io.WriteString(c2, "GET /second HTTP/1.1\r\nHost: a\r\n\r\nGET /third HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c2)
	for _, want := range []string{"slow", "next:/second", "next:/third"} {
		c2.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("waiting for %q: %v", want, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want {
			t.Errorf("got %q, want %q", b, want)
		}
	}
}

// TestKeptWriterReachesNothing: a handler that keeps its writer, its
// response header or its request header past its return (a goroutine it
// started, a lazy callback) cannot put anything into the next response
// on the connection, nor see the next request.
func TestKeptWriterReachesNothing(t *testing.T) {
	type kept struct {
		w   http.ResponseWriter
		h   http.Header
		req http.Header
	}
	keep := make(chan kept, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			keep <- kept{w, w.Header(), r.Header}
			io.WriteString(w, "first")
			return
		}
		k := <-keep
		// The first request's handler, late, while the second is served.
		k.h.Set("Set-Cookie", "session=FIRST-USERS")
		k.w.Header().Set("X-Late", "1")
		k.w.WriteHeader(http.StatusTeapot)
		n, err := io.WriteString(k.w, "late bytes")
		w.Header().Set("X-Late-Write", fmt.Sprint(n, err != nil))
		w.Header().Set("X-Kept-Request-Cookie", strings.Join(k.req["Cookie"], ","))
		io.WriteString(w, "second")
	})
	addr := serveLean(t, h, nil)
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: a\r\nCookie: session=first\r\n\r\n"+
		"GET /second HTTP/1.1\r\nHost: a\r\nCookie: session=second\r\n\r\n")
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, want := range []string{"first", "second"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != want || resp.StatusCode != 200 || len(resp.Header["Set-Cookie"]) != 0 || resp.Header.Get("X-Late") != "" {
			t.Fatalf("response %d: %d %v %q", i, resp.StatusCode, resp.Header, b)
		}
		if i == 1 {
			if got := resp.Header.Get("X-Late-Write"); got != "0 true" {
				t.Errorf("a late write on a kept writer: %s, want refused", got)
			}
			if got := resp.Header.Get("X-Kept-Request-Cookie"); got != "session=first" {
				t.Errorf("a kept request header reads %q: it must stay the first request's", got)
			}
		}
	}
}
