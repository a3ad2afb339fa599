package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"time"
)

// fastTransport sends GET and HEAD requests without a body to a plain-HTTP
// upstream over HTTP/1.1 on the caller's goroutine, with its own pool of
// keep-alive connections, and hands every other request (bodies, upgrades,
// other methods, TLS) to the standard transport.
//
// Why: http.Transport runs a reader and a writer goroutine per connection
// and hands each request and response between them and the caller over
// channels, and parks the reader on every idle connection. Under load on a
// proxy that is a good part of the CPU that is not syscalls (profiled under
// wrk: bench/proxy/RESULTS.md). The requests it takes are the ones a site
// serves most and the only ones it may safely send again: a reused
// connection the upstream had closed is retried once on a fresh one.
type fastTransport struct {
	fallback    *http.Transport
	maxIdle     int
	idleTimeout time.Duration
	maxHeader   int64
	dialer      net.Dialer
	// dial, if set, replaces dialer (tests and fuzzing).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	idle map[string][]*fconn
}

type fconn struct {
	c         net.Conn
	scratch   []byte // readHeader's buffer
	lim       *limitReader
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	// Per response, for serveDirect: its framing and body reader.
	chunked bool
	length  int64
	body    io.LimitedReader
}

// limitReader fails reads past n bytes while n >= 0; it caps a response's
// header (give or take one buffer).
type limitReader struct {
	r io.Reader
	n int64
}

var errHeaderTooLarge = errors.New("proxy: upstream response header too large")

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func newFastTransport(fallback *http.Transport, maxHeader int64) *fastTransport {
	return &fastTransport{
		fallback: fallback, maxIdle: fallback.MaxIdleConnsPerHost, idleTimeout: fallback.IdleConnTimeout,
		maxHeader: maxHeader, dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		idle: map[string][]*fconn{},
	}
}

func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" || (req.Method != http.MethodGet && req.Method != http.MethodHead) ||
		(req.Body != nil && req.Body != http.NoBody) || req.ContentLength != 0 || req.Close ||
		req.Header.Get("Upgrade") != "" || len(req.Trailer) > 0 {
		return t.fallback.RoundTrip(req)
	}
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	for attempt := 0; ; attempt++ {
		fc, reused, err := t.get(req.Context(), addr)
		if err != nil {
			return nil, err
		}
		resp, err := t.do(req, fc, addr)
		if err == nil {
			return resp, nil
		}
		fc.c.Close()
		if !reused || attempt > 0 || req.Context().Err() != nil || errors.Is(err, errHeaderTooLarge) {
			return nil, err
		}
		// A kept-alive connection the upstream had closed: GET and HEAD
		// may be sent again, once, on a fresh one.
	}
}

func (t *fastTransport) get(ctx context.Context, addr string) (*fconn, bool, error) {
	now := time.Now()
	t.mu.Lock()
	for {
		l := t.idle[addr]
		if len(l) == 0 {
			break
		}
		fc := l[len(l)-1]
		l[len(l)-1] = nil
		t.idle[addr] = l[:len(l)-1]
		if t.idleTimeout > 0 && now.Sub(fc.idleSince) > t.idleTimeout {
			fc.c.Close()
			continue
		}
		t.mu.Unlock()
		return fc, true, nil
	}
	t.mu.Unlock()
	dial := t.dialer.DialContext
	if t.dial != nil {
		dial = t.dial
	}
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	lim := &limitReader{r: c, n: -1}
	return &fconn{c: c, lim: lim, br: bufio.NewReaderSize(lim, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, false, nil
}

func (t *fastTransport) put(addr string, fc *fconn) {
	fc.idleSince = time.Now()
	t.mu.Lock()
	if len(t.idle[addr]) < t.maxIdle {
		t.idle[addr] = append(t.idle[addr], fc)
		fc = nil
	}
	t.mu.Unlock()
	if fc != nil {
		fc.c.Close()
	}
}

// CloseIdleConnections closes the idle connections of both transports.
func (t *fastTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*fconn{}
	t.mu.Unlock()
	for _, l := range idle {
		for _, fc := range l {
			fc.c.Close()
		}
	}
	t.fallback.CloseIdleConnections()
}

var longAgo = time.Unix(1, 0)

func (t *fastTransport) do(req *http.Request, fc *fconn, addr string) (*http.Response, error) {
	// A client that goes away (or a proxy shutting down) ends the exchange:
	// every blocked read or write on the connection returns at once.
	stop := context.AfterFunc(req.Context(), func() { fc.c.SetDeadline(longAgo) })
	if err := req.Write(fc.bw); err != nil {
		stop()
		return nil, err
	}
	if err := fc.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	fc.lim.n = t.maxHeader
	var resp *http.Response
	var err error
	for {
		resp, err = http.ReadResponse(fc.br, req)
		if err != nil {
			stop()
			if ctxErr := req.Context().Err(); ctxErr != nil {
				return nil, ctxErr
			}
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			stop()
			return nil, errors.New("proxy: upstream switched protocols on a request without Upgrade")
		}
		resp.Body.Close()
		// An informational response (103 Early Hints): handed to the
		// request's client trace as http.Transport does (the reverse proxy
		// forwards it through the guard), then wait for the real one.
		if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				stop()
				return nil, err
			}
		}
	}
	fc.lim.n = -1
	b := &fbody{rc: resp.Body, t: t, fc: fc, addr: addr, stop: stop, keep: !resp.Close, ctx: req.Context()}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// fbody returns the connection to the pool when its body has been read to
// the end, and closes it when the body is closed early or fails.
type fbody struct {
	rc   io.ReadCloser
	t    *fastTransport
	fc   *fconn
	addr string
	stop func() bool
	keep bool
	done bool
	err  error
	ctx  context.Context
}

func (b *fbody) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if err != nil {
		if ctxErr := b.ctx.Err(); ctxErr != nil && err != io.EOF {
			err = ctxErr // the deadline set when the client left
		}
		b.err = err
		b.finish(err == io.EOF)
	}
	return n, err
}

func (b *fbody) Close() error {
	if !b.done {
		b.err = errors.New("proxy: read on a closed response body")
		b.finish(false)
	}
	return nil
}

func (b *fbody) finish(complete bool) {
	b.done = true
	if b.err == nil {
		b.err = io.EOF
	}
	// stop reports false when the request's context already fired: the
	// connection's deadline is then in the past, and it is not reused.
	if b.stop() && complete && b.keep {
		b.t.put(b.addr, b.fc)
		return
	}
	b.fc.c.Close()
}

var _ http.RoundTripper = (*fastTransport)(nil)
