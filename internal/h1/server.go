// Package h1 is a lean HTTP/1.1 server for the requests most of a site's
// traffic is made of: GET and HEAD without a body, on keep-alive
// connections. It serves those itself, with a few allocations per request
// and no goroutine but the connection's, and hands a connection to a
// standard net/http server, with the bytes it has read, the moment a
// request is anything else: a body, an upgrade, Expect, HTTP/1.0, a header
// it does not read exactly as net/http would, a header too large. The
// net/http server then answers that request and everything after it on the
// connection, so every edge case keeps net/http's behaviour.
//
// What differs from net/http on the requests it serves:
//   - The request's context is the connection's. It is cancelled when the
//     client goes away during a request that has run for watchAfter
//     (100 ms) or more: only then does the server read the connection in
//     the background to notice, where net/http does so for every request
//     (a syscall, a goroutine wake-up and two deadline changes each). A
//     client that leaves a quicker request is noticed at the handler's
//     next write, which fails, and the connection ends.
//   - The timeouts are kept to within a second (a deadline is moved at
//     most once a second), so a connection may wait up to a second less
//     than a timeout.
//   - Its writer flushes (http.Flusher, http.ResponseController) and takes
//     a write deadline (SetWriteDeadline); it cannot be hijacked and has no
//     read deadline to set, as a request it serves has no body (both
//     report http.ErrNotSupported through http.ResponseController).
//
// It speaks plain TCP only; put TLS in front of it or use net/http.
package h1

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
	"net/textproto"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves Fallback.Handler. Fallback's ReadHeaderTimeout (or
// ReadTimeout), WriteTimeout, IdleTimeout, MaxHeaderBytes and ErrorLog
// apply to the requests Server serves itself as well, each deadline moved
// at most once a second (so a timeout may act up to a second early).
type Server struct {
	Fallback *http.Server

	mu      sync.Mutex
	conns   map[*conn]struct{}
	ln      net.Listener
	handoff *handoffListener
	closing atomic.Bool
	started bool
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = http.ErrServerClosed

const (
	defaultHeaderTimeout = 10 * time.Second
	defaultMaxHeader     = 1 << 20 // net/http's DefaultMaxHeaderBytes
	readBufSize          = 4 << 10
)

func (s *Server) headerTimeout() time.Duration {
	if t := s.Fallback.ReadHeaderTimeout; t > 0 {
		return t
	}
	if t := s.Fallback.ReadTimeout; t > 0 {
		return t
	}
	return defaultHeaderTimeout
}

func (s *Server) idleTimeout() time.Duration {
	if t := s.Fallback.IdleTimeout; t > 0 {
		return t
	}
	return s.headerTimeout()
}

func (s *Server) maxHeader() int {
	if n := s.Fallback.MaxHeaderBytes; n > 0 {
		return n
	}
	return defaultMaxHeader
}

func (s *Server) logf(format string, args ...any) {
	if l := s.Fallback.ErrorLog; l != nil {
		l.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// Serve accepts connections on ln until Shutdown or an accept error, and
// returns that error (ErrServerClosed after Shutdown). It may be called
// once.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("h1: Serve called twice")
	}
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.started = true
	s.ln = ln
	s.conns = map[*conn]struct{}{}
	s.handoff = &handoffListener{addr: ln.Addr(), c: make(chan net.Conn), done: make(chan struct{})}
	s.mu.Unlock()
	go s.Fallback.Serve(s.handoff) // ends with ErrServerClosed at Shutdown
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logf("h1: accept error: %v; retrying in %v", err, delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		cc := s.newConn(c)
		if cc == nil {
			c.Close()
			continue
		}
		go cc.serve()
	}
}

// Shutdown stops accepting, closes idle connections, lets the requests in
// progress finish (each connection closes after its response), and shuts
// the fallback server down, all within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	ln, started := s.ln, s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	ln.Close()
	s.handoff.close()
	fallc := make(chan error, 1)
	go func() { fallc <- s.Fallback.Shutdown(ctx) }()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		for c := range s.conns {
			c.wake()
		}
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return <-fallc
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.c.Close()
			}
			s.mu.Unlock()
			<-fallc
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Server) newConn(c net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	cc := &conn{s: s, c: c, remote: c.RemoteAddr().String()}
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.Fallback)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, c.LocalAddr())
	ctx, cc.cancel = context.WithCancel(ctx)
	cc.base = (&http.Request{}).WithContext(ctx)
	s.conns[cc] = struct{}{}
	return cc
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// conn is one client connection while Server serves it.
type conn struct {
	s      *Server
	c      net.Conn
	remote string
	base   *http.Request // carries the context; each request is a copy
	cancel context.CancelFunc

	// The watch of a long request (watchAfter): a read of the connection
	// in the background, to cancel the context if the client goes away.
	watch        *time.Timer
	watchDone    chan struct{} // closed when the watching read has returned
	watchBuf     []byte        // what it read (the start of a next request)
	watchGone    bool          // it found the client gone
	watchMu      sync.Mutex    // orders the read's start against its stop
	watchStopped bool

	buf       []byte // read buffer: buf[r:w] is unread
	r, w      int
	bw        *bufio.Writer
	headBuf   []byte      // the response header being sent
	deadline  time.Time   // the read deadline last set
	wdeadline time.Time   // the write deadline last set
	idle      atomic.Bool // waiting for the next request
	out       *outBuf     // while a request is served
}

// wake interrupts an idle connection's read so that it sees Shutdown.
func (c *conn) wake() {
	if c.idle.Load() {
		c.c.SetReadDeadline(aLongTimeAgo)
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// outBuf is what a connection writes through while it serves a request;
// an idle connection holds none (idle connections cost their read buffer
// and goroutine only).
type outBuf struct {
	bw   *bufio.Writer
	body [2048]byte // a response's body until its length is known
}

var outPool = sync.Pool{New: func() any { return &outBuf{bw: bufio.NewWriterSize(nil, 4<<10)} }}

func (c *conn) takeOut() {
	c.out = outPool.Get().(*outBuf)
	c.bw = c.out.bw
	c.bw.Reset(c.c)
}

func (c *conn) releaseOut() {
	c.bw.Reset(nil)
	outPool.Put(c.out)
	c.out, c.bw = nil, nil
}

func (c *conn) serve() {
	handedOff := false
	defer func() {
		c.cancel()
		c.s.forget(c)
		if c.out != nil {
			c.releaseOut()
		}
		if !handedOff {
			c.c.Close()
		}
	}()
	c.buf = make([]byte, readBufSize)
	for {
		end, ok := c.readHead()
		if !ok {
			return
		}
		if end < 0 {
			handedOff = c.handOff()
			return
		}
		req, ok := c.parse(end)
		if !ok {
			handedOff = c.handOff()
			return
		}
		c.takeOut()
		if wt := c.s.Fallback.WriteTimeout; wt > 0 {
			// As net/http: the response must be written within
			// WriteTimeout of the end of the request's header.
			if want := time.Now().Add(wt); want.Sub(c.wdeadline) >= time.Second || want.Before(c.wdeadline) {
				c.wdeadline = want
				c.c.SetWriteDeadline(want)
			}
		} else if !c.wdeadline.IsZero() {
			c.wdeadline = time.Time{} // a handler's deadline was for its response only
			c.c.SetWriteDeadline(time.Time{})
		}
		c.startWatch()
		keep := c.serveOne(req)
		if !c.stopWatch() {
			keep = false // the client went away
		}
		c.releaseOut() // the response is flushed; a kept writer refuses
		c.r = end
		if !keep || c.s.closing.Load() {
			return
		}
		if c.r == c.w {
			c.r, c.w = 0, 0
			if len(c.buf) > readBufSize {
				c.buf = make([]byte, readBufSize) // a large header grew it
			}
		}
	}
}

// readHead reads until buf[r:] holds a whole request head, and returns
// the offset just past its blank line; -1 if the request is one for the
// fallback to read (a line without CR, or a head over the limit). ok is
// false if the connection is done (closed, timed out, idle at Shutdown).
func (c *conn) readHead() (end int, ok bool) {
	scanned := c.r
	for {
		if e, found, bad := scanHead(c.buf[:c.w], c.r, scanned); bad {
			return -1, true
		} else if found {
			if e-c.r > c.s.maxHeader() {
				return -1, true // too large, even if it came whole: net/http decides
			}
			return e, true
		} else {
			scanned = e
		}
		if c.w-c.r >= c.s.maxHeader() {
			return -1, true // net/http answers 431
		}
		if c.w == len(c.buf) {
			if c.r > 0 {
				n := copy(c.buf, c.buf[c.r:c.w])
				scanned -= c.r
				c.r, c.w = 0, n
			} else {
				nb := make([]byte, min(2*len(c.buf), c.s.maxHeader()+readBufSize))
				copy(nb, c.buf[:c.w])
				c.buf = nb
			}
		}
		empty := c.r == c.w
		now := time.Now()
		if empty {
			if c.s.closing.Load() {
				return 0, false
			}
			c.idle.Store(true)
			if c.s.closing.Load() { // Shutdown may have looked before idle was set
				return 0, false
			}
			c.setDeadline(now, c.s.idleTimeout())
		} else {
			c.setDeadline(now, c.s.headerTimeout())
		}
		n, err := c.c.Read(c.buf[c.w:])
		c.idle.Store(false)
		c.w += n
		if err != nil {
			if n > 0 && !isTimeout(err) {
				continue // the data first; the error again on the next read
			}
			if c.w > c.r && !c.s.closing.Load() && !isTimeout(err) {
				return -1, true // a partial request and EOF: net/http says what it says
			}
			return 0, false
		}
	}
}

// setDeadline sets the read deadline to now+d unless the one set is
// within a second of that already.
func (c *conn) setDeadline(now time.Time, d time.Duration) {
	want := now.Add(d)
	if diff := want.Sub(c.deadline); diff < time.Second && diff > -time.Second {
		return
	}
	c.deadline = want
	c.c.SetReadDeadline(want)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// scanHead looks in b[from:] for the blank line that ends a request head
// starting at start. It returns the offset past that line; or, when it is
// not there yet, how far it has looked (a whole line at a time). bad
// reports a line that ends in a bare LF.
func scanHead(b []byte, start, from int) (int, bool, bool) {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return i, false, false
		}
		j += i
		if j == start || b[j-1] != '\r' {
			return 0, false, true
		}
		if j-1 == i && i > start { // "\r\n" alone: the end of the head
			return j + 1, true, false
		}
		if j-1 == i { // a blank line before the request line
			return 0, false, true
		}
		i = j + 1
	}
}

// watchAfter is how long a request runs before the server watches for the
// client going away.
const watchAfter = 100 * time.Millisecond

// startWatch arms the watch for a request.
func (c *conn) startWatch() {
	c.watchMu.Lock()
	c.watchStopped = false
	c.watchMu.Unlock()
	if c.watch == nil {
		c.watchDone = make(chan struct{})
		c.watch = time.AfterFunc(watchAfter, c.watchRead)
		return
	}
	c.watch.Reset(watchAfter)
}

// watchRead reads the connection while the handler runs; it cancels the
// connection's context if the client has gone.
func (c *conn) watchRead() {
	defer close(c.watchDone)
	c.watchMu.Lock()
	if c.watchStopped {
		c.watchMu.Unlock()
		return
	}
	c.c.SetReadDeadline(time.Time{}) // the request's header deadline no longer applies
	c.watchMu.Unlock()
	var b [512]byte
	n, err := c.c.Read(b[:])
	c.watchBuf = append(c.watchBuf[:0], b[:n]...)
	c.watchGone = n == 0 && err != nil && !isTimeout(err)
	if c.watchGone {
		c.cancel() // EOF or a reset: nobody to answer
	}
}

// stopWatch ends the watch of the request just served, keeping what the
// watching read took. It reports false if the client has gone.
func (c *conn) stopWatch() bool {
	if c.watch.Stop() {
		return true // it never started
	}
	// The timer fired: the read runs, has run or is about to. Stop it and
	// wait.
	c.watchMu.Lock()
	c.watchStopped = true
	c.c.SetReadDeadline(aLongTimeAgo)
	c.watchMu.Unlock()
	<-c.watchDone
	c.watchDone = make(chan struct{})
	c.deadline = time.Time{} // set anew before the next read
	if len(c.watchBuf) > 0 {
		if len(c.buf)-c.w < len(c.watchBuf) {
			nb := make([]byte, c.w+len(c.watchBuf)+readBufSize)
			copy(nb, c.buf[:c.w])
			c.buf = nb
		}
		c.w += copy(c.buf[c.w:], c.watchBuf)
		c.watchBuf = c.watchBuf[:0]
	}
	gone := c.watchGone
	c.watchGone = false
	return !gone
}

// handOff gives the connection, with what was read of it, to the fallback
// server. It reports whether the fallback took it.
func (c *conn) handOff() bool {
	c.c.SetReadDeadline(time.Time{})
	pending := append([]byte(nil), c.buf[c.r:c.w]...)
	return c.s.handoff.give(&prefixConn{Conn: c.c, prefix: pending})
}

// parse reads the head in buf[r:end] into a request, or reports false for
// one the fallback must serve.
func (c *conn) parse(end int) (*http.Request, bool) {
	head := string(c.buf[c.r:end]) // one copy: every field is a part of it
	line, rest, _ := strings.Cut(head, "\r\n")
	method, rest2, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest2, " ")
	if !ok1 || !ok2 || method != "GET" && method != "HEAD" || proto != "HTTP/1.1" ||
		len(target) == 0 || target[0] != '/' || !validTarget(target) {
		return nil, false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}
	// A fresh header map and values for every request, as net/http makes
	// them: nothing a handler keeps of one request is part of the next.
	h := make(http.Header, strings.Count(rest, "\r\n"))
	if !ReadFields(rest, h) {
		return nil, false
	}
	for _, k := range [...]string{"Content-Length", "Transfer-Encoding", "Upgrade", "Expect", "Trailer", "Te", "Http2-Settings"} {
		if _, ok := h[k]; ok {
			return nil, false // a body, or something net/http handles
		}
	}
	hosts := h["Host"]
	if len(hosts) != 1 || !validHost(hosts[0]) {
		return nil, false // net/http answers 400
	}
	host := hosts[0]
	delete(h, "Host") // net/http moves it to Request.Host
	closeConn := false
	for _, v := range h["Connection"] {
		if HasToken(v, "upgrade") {
			return nil, false
		}
		closeConn = closeConn || HasToken(v, "close")
	}
	req := new(http.Request)
	*req = *c.base // the connection's context
	req.Method = method
	req.URL = u
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	req.Header = h
	req.Body = http.NoBody
	req.Host = host
	req.RemoteAddr = c.remote
	req.RequestURI = target
	req.Close = closeConn
	return req, true
}

// serveOne runs the handler on req and finishes its response. It reports
// whether the connection may carry another request.
func (c *conn) serveOne(req *http.Request) (keep bool) {
	// A fresh writer and header map for every request: a handler (or
	// something it started) that keeps them past its return writes into
	// nothing, never into the next response on the connection.
	w := &response{c: c, req: req, h: make(http.Header, 8), declared: -1}
	defer func() {
		w.ended.Store(true)
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.s.logf("h1: panic serving %s: %v\n%s", c.remote, v, buf)
			}
			c.bw.Reset(c.c) // nothing more of this response leaves
			keep = false
		}
	}()
	h := c.s.Fallback.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	h.ServeHTTP(w, req)
	w.ended.Store(true) // from here on, only the server finishes it
	return w.finish() && !req.Close
}

// response is the http.ResponseWriter of a request Server serves.
type response struct {
	c        *conn
	req      *http.Request
	h        http.Header
	status   int   // 0 until WriteHeader
	sent     bool  // the header is in bw
	chunked  bool  // the body is sent chunked
	declared int64 // the Content-Length the handler set, -1 if none
	written  int64 // body bytes the handler wrote
	body     []byte
	sniff    []byte // the first write, when it went out unbuffered: for Content-Type
	failed   bool   // a write to the client failed
	close    bool   // close after this response
	// Taken from the header at WriteHeader.
	hasDate, hasType bool
	connection       []string
	trailers         []string    // declared in the Trailer header
	ended            atomic.Bool // the request is over: every method refuses
}

// ErrRequestEnded is what a writer kept past its request's end returns.
var ErrRequestEnded = errors.New("h1: the request has ended")

// Header returns the response's header; after the request, a detached
// map, so that a late change reaches no response.
func (w *response) Header() http.Header {
	if w.ended.Load() {
		return http.Header{}
	}
	return w.h
}

func (w *response) WriteHeader(code int) {
	if !w.ended.Load() {
		w.writeHeader(code)
	}
}

func (w *response) writeHeader(code int) {
	if w.status != 0 {
		return // superfluous, as net/http
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.status = code
	h := w.h
	if code == http.StatusSwitchingProtocols {
		w.close = true // HTTP ends on the connection; nothing for Server to speak
	}
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.declared = n
		} else {
			h.Del("Content-Length") // net/http drops a bad one too
		}
	}
	// The header as it is now is the one sent, as with net/http: what the
	// handler changes after WriteHeader does not leave.
	_, w.hasDate = h["Date"]
	_, w.hasType = h["Content-Type"]
	w.connection = h["Connection"]
	for _, v := range h["Trailer"] { // declared trailers, sent after a chunked body
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				w.trailers = append(w.trailers, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	if HasToken(h.Get("Connection"), "close") || w.req.Close {
		w.close = true
	}
	w.c.headBuf = appendHeader(w.c.headBuf[:0], h)
}

func (w *response) writeInformational(code int) {
	bw := w.c.bw
	writeStatusLine(bw, code)
	w.c.headBuf = appendHeader(w.c.headBuf[:0], w.h)
	bw.Write(w.c.headBuf)
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		w.fail()
	}
}

// statusBody reports whether the status allows a body.
func (w *response) statusBody() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified && w.status >= 200
}

func (w *response) head() bool { return w.req.Method == http.MethodHead }

func (w *response) Write(p []byte) (int, error) { return w.write(p, "") }

func (w *response) WriteString(s string) (int, error) { return w.write(nil, s) }

// write takes p or s. A body is buffered until the handler returns (then
// its length is known) or it outgrows the buffer (then it is chunked), as
// net/http does; for HEAD it is counted and dropped.
func (w *response) write(p []byte, s string) (int, error) {
	if w.ended.Load() {
		return 0, ErrRequestEnded
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n := len(p) + len(s)
	if !w.statusBody() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.failed {
		return 0, errClientGone
	}
	if w.declared >= 0 && w.written+int64(n) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(n)
	if !w.sent {
		if w.declared < 0 && len(w.body)+n <= len(w.c.out.body) {
			if w.body == nil {
				w.body = w.c.out.body[:0]
			}
			w.body = append(append(w.body, p...), s...)
			return n, nil
		}
		if len(w.body) == 0 {
			w.sniff = p
			if p == nil {
				w.sniff = []byte(s[:min(len(s), 512)])
			}
		}
		w.sendHeader(false)
	}
	if w.head() || n == 0 {
		return n, nil
	}
	var err error
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(n), 16))
		bw.WriteString("\r\n")
	}
	if p != nil {
		_, err = bw.Write(p)
	} else {
		_, err = bw.WriteString(s)
	}
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.fail()
		return 0, err
	}
	return n, nil
}

var errClientGone = errors.New("h1: the client connection failed")

func (w *response) fail() {
	w.failed = true
	w.close = true
}

// SetWriteDeadline sets the connection's write deadline for the rest of
// this response, as net/http's writer does (http.ResponseController).
func (w *response) SetWriteDeadline(t time.Time) error {
	if w.ended.Load() {
		return ErrRequestEnded
	}
	w.c.wdeadline = t
	return w.c.c.SetWriteDeadline(t)
}

// Flush sends the header and what is buffered.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting the error (http.ResponseController).
func (w *response) FlushError() error {
	if w.ended.Load() {
		return ErrRequestEnded
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return errClientGone
	}
	if !w.sent {
		w.sendHeader(false)
	}
	if err := w.c.bw.Flush(); err != nil {
		w.fail()
		return err
	}
	return nil
}

// sendHeader writes the status line and header into bw, choosing the
// framing: the declared length, the whole body's when the handler is done
// (done), else chunked.
func (w *response) sendHeader(done bool) {
	w.sent = true
	var extra [4]string
	ex := extra[:0]
	if !w.hasDate {
		ex = append(ex, "Date: "+httpDate())
	}
	if !w.hasType && w.statusBody() {
		if len(w.body) > 0 {
			ex = append(ex, "Content-Type: "+http.DetectContentType(w.body))
		} else if len(w.sniff) > 0 {
			ex = append(ex, "Content-Type: "+http.DetectContentType(w.sniff))
		}
	}
	w.sniff = nil
	switch {
	case !w.statusBody() || w.declared >= 0:
	case done && (!w.head() || len(w.body) > 0) && len(w.trailers) == 0:
		ex = append(ex, "Content-Length: "+strconv.Itoa(len(w.body)))
	case w.head():
	default: // as net/http: chunked, also to carry declared trailers
		w.chunked = true
		ex = append(ex, "Transfer-Encoding: chunked")
	}
	if w.c.s.closing.Load() {
		w.close = true
	}
	if w.close {
		ex = append(ex, "Connection: close")
	} else {
		for _, v := range w.connection {
			w.c.headBuf = appendField(w.c.headBuf, "Connection", v)
		}
	}
	bw := w.c.bw
	writeStatusLine(bw, w.status)
	bw.Write(w.c.headBuf)
	for _, l := range ex {
		bw.WriteString(l)
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	body := w.body
	w.body = nil
	if len(body) > 0 && !w.head() {
		if w.chunked {
			bw.WriteString(strconv.FormatInt(int64(len(body)), 16))
			bw.WriteString("\r\n")
			bw.Write(body)
			bw.WriteString("\r\n")
		} else {
			bw.Write(body)
		}
	}
}

// finish ends the response once the handler has returned, and reports
// whether the connection may be reused.
func (w *response) finish() bool {
	if w.status == 0 {
		w.writeHeader(http.StatusOK)
	}
	if !w.sent {
		w.sendHeader(true)
	}
	if w.chunked {
		w.c.bw.WriteString("0\r\n")
		w.c.bw.Write(w.appendTrailers(w.c.headBuf[:0]))
		w.c.bw.WriteString("\r\n")
	}
	if w.declared >= 0 && w.written < w.declared && w.statusBody() && !w.head() {
		w.close = true // the client would wait for the rest
	}
	if err := w.c.bw.Flush(); err != nil {
		w.fail()
	}
	return !w.close && !w.failed
}

// appendTrailers appends the trailer fields, as net/http sends them: the
// declared ones' values as the handler left them, and every key set with
// http.TrailerPrefix.
func (w *response) appendTrailers(b []byte) []byte {
	t := http.Header{}
	for _, k := range w.trailers {
		if vs, ok := w.h[k]; ok {
			t[k] = vs
		}
	}
	for k, vs := range w.h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			t[textproto.CanonicalMIMEHeaderKey(name)] = vs
		}
	}
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Trailer"} {
		delete(t, k) // never as trailers
	}
	if len(t) == 0 {
		return b
	}
	return appendHeader(b, t)
}

func writeStatusLine(bw *bufio.Writer, code int) {
	if code == http.StatusOK {
		bw.WriteString("HTTP/1.1 200 OK\r\n")
		return
	}
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	bw.WriteString(text)
	bw.WriteString("\r\n")
}

// appendHeader appends h's lines but Transfer-Encoding and Connection
// (the server writes those). As net/http does, it skips a name that is not
// a token and writes CR and LF in a value as spaces, so that no header can
// split the response.
func appendHeader(b []byte, h http.Header) []byte {
	for k, vs := range h {
		if !ValidFieldName(k) || k == "Transfer-Encoding" || k == "Connection" {
			continue
		}
		for _, v := range vs {
			b = appendField(b, k, v)
		}
	}
	return b
}

// appendField appends the line "k: v", CR and LF in v written as spaces.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' {
			b = append(b, ' ')
		} else {
			b = append(b, c)
		}
	}
	return append(b, "\r\n"...)
}

// httpDate is the Date header's value, formatted once a second.
func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := cachedDate.Load(); d != nil && d.sec == sec {
		return d.s
	}
	d := &dateValue{sec: sec, s: now.UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.s
}

type dateValue struct {
	sec int64
	s   string
}

var cachedDate atomic.Pointer[dateValue]

// prefixConn is a connection whose first reads return what the lean server
// had read of it.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// CloseWrite half-closes a TCP connection, as net/http does after an
// error answer so that the client reads it before the reset.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// handoffListener is the fallback server's listener: its connections are
// the ones the lean server gives it.
type handoffListener struct {
	addr net.Addr
	c    chan net.Conn
	once sync.Once
	done chan struct{}
}

func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.c <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) close() { l.once.Do(func() { close(l.done) }) }

func (l *handoffListener) Close() error { l.close(); return nil }

func (l *handoffListener) Addr() net.Addr { return l.addr }

var _ io.StringWriter = (*response)(nil)
