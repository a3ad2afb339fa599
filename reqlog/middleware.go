package reqlog

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cordon-sec/cordon/internal/ctxvalue"
)

// MaxUA is the number of bytes of the User-Agent a line keeps.
const MaxUA = 256

// Options configure Middleware and the client-IP resolution (ClientIP).
// The zero value is ready to use: no proxy trusted, the host name from
// os.Hostname, the real clock and crypto/rand.
type Options struct {
	// TrustedProxies are the networks whose forwarding header is believed
	// (see ClientIP). Empty: no proxy is trusted and ip is the peer address.
	TrustedProxies []netip.Prefix

	// ProxyHeader names the one header the trusted proxies write:
	// HeaderXForwardedFor (the default when empty) or HeaderForwarded.
	// Middleware panics on any other value.
	ProxyHeader string

	// Host is the `host` field; empty means os.Hostname ("unknown" if that
	// fails).
	Host string

	// Now is the clock for `ts` and `dur_ms`; nil means time.Now.
	Now func() time.Time

	// ASN, if set, looks up the autonomous system number of the client IP
	// for the `asn` field (0: unknown, omitted). It runs on the request's
	// goroutine, once per request: it must be fast (an in-memory table).
	ASN func(ip netip.Addr) int

	// Rand is the source of request ids; nil means crypto/rand.Reader. If it
	// fails, crypto/rand is used for that id.
	Rand io.Reader
}

// Middleware returns middleware that writes one line to w for every request
// it serves, when the handler has returned (the response is sent) or the
// request was aborted (a panic, or the client went away: status 0). It puts a
// *Record in the request context (NewContext) for the layers below to
// annotate; what they record after the line is written is ignored.
//
// seq comes from w's counter, so every middleware of a process must share
// one Writer for seq to count the process's requests.
//
// It panics if w is nil or opt.ProxyHeader is not a supported header.
func Middleware(w *Writer, opt Options) func(http.Handler) http.Handler {
	if w == nil {
		panic("cordon/reqlog: Middleware with a nil Writer")
	}
	if h := opt.ProxyHeader; h != "" && !strings.EqualFold(h, HeaderXForwardedFor) && !strings.EqualFold(h, HeaderForwarded) {
		panic("cordon/reqlog: unsupported ProxyHeader " + h)
	}
	if opt.Host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "unknown"
		}
		opt.Host = h
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	opt.TrustedProxies = append([]netip.Prefix(nil), opt.TrustedProxies...)
	pid := os.Getpid()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			start := opt.Now()
			seq := w.NextSeq()
			mem := &requestMem{}
			rec, ww := &mem.rec, &mem.ww
			addr, raw := opt.clientAddr(r)
			if addr.IsValid() {
				raw = addrString(addr, r.RemoteAddr)
			}
			rec.ip = raw // rec is not shared yet
			ww.ResponseWriter, ww.req = rw, r
			mem.ctx.Context, mem.ctx.V = r.Context(), rec
			completed := false
			defer func() {
				end := opt.Now()
				ts, id := tsAndID(start, opt.Rand)
				l := Line{
					V:      Version,
					TS:     ts,
					DurMS:  float64(end.Sub(start).Nanoseconds()) / 1e6,
					Req:    id,
					Host:   opt.Host,
					PID:    pid,
					Seq:    seq,
					UA:     cutUA(r.UserAgent()),
					Method: r.Method,
					Path:   urlPath(r),
					Status: ww.finalStatus(completed),
				}
				if opt.ASN != nil && addr.IsValid() {
					l.ASN = opt.ASN(addr)
				}
				if l.DurMS < 0 {
					l.DurMS = 0
				}
				rec.fill(&l)
				rec.keep(w, &opt, &l)
				_ = w.WriteLine(&l) // failures are counted and reported by w
			}()
			next.ServeHTTP(ww, r.WithContext(&mem.ctx))
			completed = true
		})
	}
}

// requestMem is what Middleware needs per request, in one allocation: the
// Record, the response writer and the context that carries the Record.
// Each is fresh for its request (a Record outlives it, for Late).
type requestMem struct {
	rec Record
	ww  responseWriter
	ctx recordCtx
}

// recordCtx is a context carrying a Record, as NewContext would carry it.
type recordCtx = ctxvalue.Context[recordKey, *Record]

// addrString is addr.String(), without its allocation when the peer
// address (remoteAddr, host:port) already spells addr that way: an IPv4
// address parses only from its one canonical dotted-decimal form, so when
// the host part parses as addr itself it is the same string.
func addrString(addr netip.Addr, remoteAddr string) string {
	if addr.Is4() {
		host, _, err := net.SplitHostPort(remoteAddr)
		if err == nil {
			if p, err := netip.ParseAddr(host); err == nil && p.Is4() && p == addr {
				return host
			}
		}
	}
	return addr.String()
}

// tsLen is the length of a formatted ts: 2006-01-02T15:04:05.000000Z.
const tsLen = 27

// appendTS appends t in UTC, RFC 3339 with microseconds (time.AppendFormat
// does the same at several times the cost).
func appendTS(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	if year < 0 || year > 9999 {
		year = 0 // RFC 3339 has four-digit years
	}
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, min, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendDigits appends v, 0 <= v < 10^n, as n decimal digits.
func appendDigits(b []byte, v, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; i >= len(b)-n; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// tsAndID returns the formatted arrival time and a new request id (128
// random bits in hex), sharing one allocation.
func tsAndID(start time.Time, src io.Reader) (ts, id string) {
	var raw [16]byte
	ok := false
	if src != nil {
		raw, ok = readRandom(src)
	}
	if !ok {
		rand.Read(raw[:]) // never fails (crypto/rand crashes the program instead)
	}
	var b [tsLen + 32]byte
	appendTS(b[:0], start)
	hex.Encode(b[tsLen:], raw[:])
	s := string(b[:])
	return s[:tsLen], s[tsLen:]
}

// urlPath is the request's path, without the query ("" if the request has
// no URL, as a hand-made request may not).
func urlPath(r *http.Request) string {
	if r.URL == nil {
		return ""
	}
	return r.URL.Path
}

// readRandom reads 16 bytes from src (kept apart so that only a custom
// source costs an allocation).
func readRandom(src io.Reader) (r [16]byte, ok bool) {
	b := make([]byte, len(r))
	if _, err := io.ReadFull(src, b); err != nil {
		return r, false
	}
	copy(r[:], b)
	return r, true
}

// cutUA cuts ua to MaxUA bytes without splitting a character, replacing
// invalid UTF-8 with U+FFFD first, so the result is valid UTF-8 of at most
// MaxUA bytes.
func cutUA(ua string) string {
	if !utf8.ValidString(ua) {
		ua = strings.ToValidUTF8(ua, "\uFFFD")
	}
	if len(ua) <= MaxUA {
		return ua
	}
	i := MaxUA
	for i > 0 && !utf8.RuneStart(ua[i]) {
		i--
	}
	return ua[:i]
}

// responseWriter records the final status the handler sends. It passes every
// optional ability of the underlying writer through (Flush, Hijack,
// ReadFrom, Push, and the rest via Unwrap for http.ResponseController).
type responseWriter struct {
	http.ResponseWriter
	req      *http.Request
	status   int  // final status sent, 0 if none (yet)
	decided  bool // a final status was sent or is known never to be sent
	hijacked bool
	flushed  bool  // the handler flushed: the header has left the server
	written  int64 // body bytes written
}

// finalStatus is the status for the log line once the handler has returned
// (completed) or panicked.
func (w *responseWriter) finalStatus(completed bool) int {
	switch {
	case w.decided && (completed || w.hijacked || w.flushed || w.written > panicBuffered):
		return w.status
	case w.decided:
		// The handler panicked before its header left the server's buffer:
		// net/http drops the buffered response and closes the connection.
		return 0
	case w.hijacked:
		// The handler took the connection without a status through
		// WriteHeader; for an upgrade it answered 101 on the raw connection.
		if isUpgrade(w.req) {
			return http.StatusSwitchingProtocols
		}
		return 0
	case !completed || w.clientGone():
		// A panic aborts the response; a client that went away gets nothing.
		return 0
	default:
		return http.StatusOK // net/http sends 200 when the handler returns
	}
}

// panicBuffered is how many body bytes net/http's HTTP/1 server buffers
// before the header goes to the connection: a handler that panics after
// writing more has sent its status.
const panicBuffered = 2048

// clientGone reports whether the server cancelled the request because the
// client went away. A deadline an outer middleware put on the context is not
// that: a status written after it is still sent.
func (w *responseWriter) clientGone() bool {
	return errors.Is(w.req.Context().Err(), context.Canceled)
}

func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "upgrade") {
				return true
			}
		}
	}
	return false
}

// sent notes that a final status goes out now, unless the client has already
// gone away (then nothing reaches it and the line says 0).
func (w *responseWriter) sent(code int) {
	if w.decided || w.hijacked { // after Hijack, net/http refuses writes
		return
	}
	w.decided = true
	if !w.clientGone() {
		w.status = code
	}
}

// WriteHeader passes the header on; informational 1xx responses (except 101,
// which ends HTTP on the connection) are not the final status.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.sent(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.sent(http.StatusOK)
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// WriteString passes strings through without a copy when the underlying
// writer can.
func (w *responseWriter) WriteString(s string) (int, error) {
	w.sent(http.StatusOK)
	n, err := io.WriteString(w.ResponseWriter, s)
	w.written += int64(n)
	return n, err
}

// ReadFrom lets io.Copy use the underlying writer's ReadFrom (sendfile).
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	w.sent(http.StatusOK)
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, src)
	}
	w.written += n
	return n, err
}

type writerOnly struct{ io.Writer }

// Flush sends what is buffered (and the header: 200 if none was set).
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting the error; http.ResponseController uses it.
func (w *responseWriter) FlushError() error {
	w.sent(http.StatusOK)
	w.flushed = true
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection to the handler (http.ErrNotSupported when the
// underlying writer cannot, as with HTTP/2).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// Push passes HTTP/2 server push through.
func (w *responseWriter) Push(target string, opts *http.PushOptions) error {
	if p, ok := w.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
