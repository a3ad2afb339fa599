package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/cordon-sec/cordon/internal/h1"
)

// serveDirect answers a bodiless GET or HEAD (most of a site's traffic)
// over the fast transport's pool of upstream connections without
// httputil.ReverseProxy and http.Response: it writes the request line and
// headers to the upstream itself, reads the response header into the
// client's header map, guards it (informational responses, egress) and
// copies the body. It reports false, having done nothing, for a request it
// does not take; the reverse proxy answers that one.
//
// What it does is what the reverse-proxy path does: hop-by-hop headers
// (and those the Connection header names) removed both ways; Host kept;
// X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto and Forwarded set
// as rewrite sets them; the user header removed from the request;
// informational responses forwarded through guard1xx; a chunked body
// decoded (the server chunks it again) and its trailers dropped; a
// reused connection the upstream had closed retried once on a fresh one.
func (p *Proxy) serveDirect(w http.ResponseWriter, r *http.Request, info *reqInfo) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead || r.ContentLength != 0 ||
		r.Body != nil && r.Body != http.NoBody || len(r.TransferEncoding) > 0 || len(r.Trailer) > 0 ||
		r.URL.Opaque != "" || strings.IndexByte(r.URL.RawQuery, ';') >= 0 ||
		len(r.Header["Upgrade"]) > 0 || len(r.Header["Expect"]) > 0 {
		return false
	}
	ctx := r.Context()
	t := p.direct
	for attempt := 0; ; attempt++ {
		fc, reused, err := t.get(ctx, p.upAddr)
		if err != nil {
			p.failFor(w, info, err)
			return true
		}
		// A client that goes away (its context cancelled) breaks off the
		// exchange.
		stop := context.AfterFunc(ctx, func() { fc.c.SetDeadline(longAgo) })
		code, keep, err := p.exchange(w, r, info, fc)
		if err == nil {
			// The header is guarded and in w; now the body.
			keep = p.copyBody(w, r, fc, code) && keep
			if stop() && keep {
				t.put(p.upAddr, fc)
			} else {
				fc.c.Close()
			}
			return true
		}
		stop()
		fc.c.Close()
		var retry *retryable
		if errors.As(err, &retry) {
			if reused && attempt == 0 && ctx.Err() == nil {
				continue // a kept-alive connection the upstream had closed
			}
			err = retry.err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		p.failFor(w, info, err) // clears whatever of the upstream's header was read
		return true
	}
}

// retryable marks an error before any byte of the response arrived.
type retryable struct{ err error }

func (e *retryable) Error() string { return e.err.Error() }

// hopHeaders are removed in both directions (RFC 9110, 7.6.1), with the
// proxy's own forwarding headers, which it sets itself.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// connectionTokens returns the header names a Connection header lists, and
// whether it says close.
func connectionTokens(vs []string) (names []string, close bool) {
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			f = textproto.TrimString(f)
			if f == "" {
				continue
			}
			if strings.EqualFold(f, "close") {
				close = true
			}
			names = append(names, textproto.CanonicalMIMEHeaderKey(f))
		}
	}
	return names, close
}

// exchange writes the request and reads the response header into
// w.Header(), guarded. It returns the final status code and whether the
// connection may be reused after the body.
func (p *Proxy) exchange(w http.ResponseWriter, r *http.Request, info *reqInfo, fc *fconn) (int, bool, error) {
	bw := fc.bw
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if path := r.URL.EscapedPath(); path == "" {
		bw.WriteByte('/')
	} else {
		bw.WriteString(path)
	}
	if r.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	listed, _ := connectionTokens(r.Header["Connection"])
	for k, vs := range r.Header {
		switch k {
		case "Host", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
			continue
		}
		if hopHeaders[k] || p.opt.UserHeader != "" && strings.EqualFold(k, p.opt.UserHeader) || contains(listed, k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(host)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\nX-Forwarded-Proto: ")
	bw.WriteString(proto)
	bw.WriteString("\r\nForwarded: ")
	for _, prior := range r.Header["Forwarded"] {
		bw.WriteString(prior)
		bw.WriteString(", ")
	}
	bw.WriteString("for=")
	bw.WriteString(forwardedNode(r.RemoteAddr))
	bw.WriteString(";host=")
	bw.WriteString(quoteIfNeeded(r.Host))
	bw.WriteString(";proto=")
	bw.WriteString(proto)
	bw.WriteString("\r\n\r\n")
	if err := bw.Flush(); err != nil {
		return 0, false, &retryable{err}
	}

	fc.lim.n = p.direct.maxHeader
	defer func() { fc.lim.n = -1 }()
	tp := textproto.Reader{R: fc.br}
	h := w.Header()
	for first := true; ; first = false {
		line, err := tp.ReadLine()
		if err != nil {
			if first && fc.br.Buffered() == 0 && !errors.Is(err, errHeaderTooLarge) {
				return 0, false, &retryable{err}
			}
			return 0, false, err
		}
		code, http10, err := parseStatusLine(line)
		if err != nil {
			return 0, false, err
		}
		if err := readHeader(fc, h); err != nil {
			return 0, false, err
		}
		if code == http.StatusSwitchingProtocols {
			return 0, false, errors.New("proxy: upstream switched protocols on a request without Upgrade")
		}
		if code < 200 {
			// Informational (103 Early Hints): forwarded, guarded, then
			// the real answer.
			p.guard1xx(h, info)
			w.WriteHeader(code)
			clear(h)
			continue
		}
		listed, close := connectionTokens(h["Connection"])
		keep := !close && !http10 || http10 && slices.ContainsFunc(h["Connection"], func(v string) bool { return h1.HasToken(v, "keep-alive") })
		for _, k := range listed {
			delete(h, k)
		}
		te := h["Transfer-Encoding"]
		for k := range hopHeaders {
			delete(h, k)
		}
		switch {
		case len(te) == 0:
		case len(te) == 1 && strings.EqualFold(textproto.TrimString(te[0]), "chunked"):
			delete(h, "Content-Length")
			fc.chunked = true
		default:
			return 0, false, errors.New("proxy: upstream sent an unsupported Transfer-Encoding")
		}
		fc.length = -1
		if !fc.chunked {
			if cl := h["Content-Length"]; len(cl) > 0 {
				n, ok := parseContentLength(cl)
				if !ok {
					return 0, false, errors.New("proxy: upstream sent a bad Content-Length")
				}
				fc.length = n
			}
		}
		if err := p.egressHeader(r.Context(), h, info); err != nil {
			return 0, false, err
		}
		return code, keep, nil
	}
}

// copyBody writes the status and copies the response body to w. It reports
// whether the body was read to its end, so that the connection may be
// reused.
func (p *Proxy) copyBody(w http.ResponseWriter, r *http.Request, fc *fconn, code int) (complete bool) {
	chunked := fc.chunked
	fc.chunked = false
	w.WriteHeader(code)
	if r.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified {
		return true
	}
	var src io.Reader
	stream := false
	switch {
	case chunked:
		src = httputil.NewChunkedReader(fc.br)
		stream = true
	case fc.length >= 0:
		fc.body = io.LimitedReader{R: fc.br, N: fc.length}
		src = &fc.body
		stream = hasPrefixFold(w.Header().Get("Content-Type"), "text/event-stream")
	default:
		src = fc.br // to the end of the connection
		stream = true
	}
	if !stream && !chunked && fc.length >= 0 && fc.length <= int64(fc.br.Buffered()) {
		// The whole body is in the connection's buffer already (a small
		// answer): written from there, without a copy buffer.
		b, _ := fc.br.Peek(int(fc.length))
		if _, err := w.Write(b); err != nil {
			return false // the client went away
		}
		fc.br.Discard(len(b))
		fc.body.N = 0
		return true
	}
	bp := p.rp.BufferPool.(*bufferPool).getPtr()
	defer p.rp.BufferPool.(*bufferPool).putPtr(bp)
	buf := *bp
	var flusher http.Flusher
	if stream {
		flusher, _ = w.(http.Flusher)
		if flusher != nil {
			flusher.Flush()
		}
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false // the client went away
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if r.Context().Err() != nil {
				return false
			}
			// The upstream broke off mid-body: the client must not take
			// a truncated answer for a whole one.
			fc.c.Close()
			panic(http.ErrAbortHandler)
		}
	}
	switch {
	case chunked:
		// Trailers are dropped (a Set-Cookie among them would not be
		// guarded); read them to the blank line.
		fc.lim.n = p.direct.maxHeader
		_, err := (&textproto.Reader{R: fc.br}).ReadMIMEHeader()
		fc.lim.n = -1
		return err == nil
	case fc.length >= 0:
		if fc.body.N > 0 {
			fc.c.Close()
			panic(http.ErrAbortHandler)
		}
		return true
	default:
		return false // read to the end of the connection
	}
}

// readHeader reads a response header block, to its blank line, into h,
// as textproto's ReadMIMEHeader reads it and the loop before it did (each
// key of the block replacing h's). A block of the common shape (CRLF
// lines of a token, a colon and a value of visible bytes) is read from one
// string by h1.ReadFields, as the lean server reads a request's; any other
// block, and any error,
// is handed, bytes and all, to textproto itself, so that the result is
// exactly its result.
func readHeader(fc *fconn, h http.Header) error {
	raw := fc.scratch[:0]
	defer func() {
		if cap(raw) <= 8<<10 {
			fc.scratch = raw[:0] // a rare large header is not kept per connection
		}
	}()
	simple := len(h) == 0
	var rerr error
	for {
		line, err := fc.br.ReadSlice('\n')
		raw = append(raw, line...)
		if err == bufio.ErrBufferFull {
			simple = false // a long line: textproto's
			continue
		}
		if err != nil {
			rerr = err
			break
		}
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			if len(line) == 1 {
				simple = false
			}
			break // the blank line
		}
		if line[len(line)-2] != '\r' || line[0] == ' ' || line[0] == '\t' {
			simple = false // a bare LF, or obs-fold
		}
	}
	if rerr != nil {
		// textproto, given the same bytes and then the same error.
		return readHeaderSlow(io.MultiReader(bytes.NewReader(raw), errReader{rerr}), h)
	}
	if !simple {
		return readHeaderSlow(bytes.NewReader(raw), h)
	}
	if !h1.ReadFields(string(raw), h) {
		return readHeaderSlow(bytes.NewReader(raw), h)
	}
	return nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// readHeaderSlow parses a header block read whole, and what follows it
// in r, with textproto.
func readHeaderSlow(r io.Reader, h http.Header) error {
	mh, err := textproto.NewReader(bufio.NewReader(r)).ReadMIMEHeader()
	if err != nil {
		return err
	}
	for k, vs := range mh {
		h[k] = vs
	}
	return nil
}

// parseStatusLine reads "HTTP/1.1 200 OK". It reports whether the
// upstream spoke HTTP/1.0.
func parseStatusLine(line string) (code int, http10 bool, err error) {
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || proto != "HTTP/1.1" && proto != "HTTP/1.0" {
		return 0, false, errors.New("proxy: malformed upstream status line")
	}
	status, _, _ := strings.Cut(rest, " ")
	if len(status) != 3 {
		return 0, false, errors.New("proxy: malformed upstream status code")
	}
	code, err = strconv.Atoi(status)
	if err != nil || code < 100 || status[0] == '+' || status[0] == '-' {
		return 0, false, errors.New("proxy: malformed upstream status code")
	}
	return code, proto == "HTTP/1.0", nil
}

// parseContentLength accepts one length, or several equal ones, of digits
// only.
func parseContentLength(vs []string) (int64, bool) {
	var n int64 = -1
	for _, v := range vs {
		v = textproto.TrimString(v)
		if v == "" || len(v) > 18 {
			return 0, false
		}
		var m int64
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return 0, false
			}
			m = m*10 + int64(v[i]-'0')
		}
		if n >= 0 && m != n {
			return 0, false
		}
		n = m
	}
	return n, true
}

func contains(names []string, k string) bool {
	for _, n := range names {
		if n == k {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
