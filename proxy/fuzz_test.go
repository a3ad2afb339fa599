package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/internal/setcookie"
	"github.com/cordon-sec/cordon/store"
)

// Cookie lines a browser reads one way and a naive parser another.
func TestSetCookieReadAsABrowserDoes(t *testing.T) {
	for line, want := range map[string]string{
		"sid=T; Path=/":       "T",
		" sid = T ; Path=/":   "T",
		"sid=\"T\"":           "T",
		"=sid=T":              "T",
		" = sid=T; HttpOnly":  "T",
		"sid\t=\tT":           "T",
		"sidx=T":              "-",
		"x=1, sid=T":          "-", // one cookie named x (browsers do not split on commas)
		"x=sid=T":             "-",
		"==sid=T":             "-",
		"sid":                 "-",
		"; sid=T":             "-",
		"sid=T=U; Max-Age=10": "T=U",
	} {
		v, ok := setcookie.Value(line, "sid")
		if got := map[bool]string{true: v, false: "-"}[ok]; got != want {
			t.Errorf("setcookie.Value(%q) = %q, want %q", line, got, want)
		}
	}
	for line, want := range map[string]bool{
		"sid=x; Max-Age=0; Max-Age=3600":                           false, // the last one wins
		"sid=x; Max-Age=3600; Max-Age=0":                           true,
		"sid=x; Max-Age=0abc":                                      false, // ignored
		"sid=x; Max-Age=000":                                       true,
		"sid=x; Expires=Thu, 01 Jan 1970 garbage":                  false, // unreadable: a session cookie
		"sid=x; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT": false, // Max-Age wins
		"sid=x; Expires=Thursday, 01-Jan-70 00:00:00 GMT":          true,
	} {
		if got := setcookie.Deletes(line); got != want {
			t.Errorf("setcookie.Deletes(%q) = %v, want %v", line, got, want)
		}
	}
}

// FuzzSetCookie checks the proxy's reading of a Set-Cookie line against
// net/http's: a line that net/http reads as setting the session cookie to a
// value, for longer than now, is seen by the proxy as setting it to that
// value and not as a deletion (else the guard would not check it).
func FuzzSetCookie(f *testing.F) {
	for _, s := range []string{
		"sid=T; Path=/; HttpOnly", "=sid=T", "sid=\"T\"; Max-Age=0; Max-Age=5", "sid=T; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
		"sid=T; Max-Age=-1", "x=1, sid=T", " sid = T ", "sid=T; expires=Fri, 01 Jan 2038 00:00:00 GMT; max-age=0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		v, ours := setcookie.Value(line, "sid")
		del := setcookie.Deletes(line)
		if ours && strings.ContainsAny(v, ";") {
			t.Fatalf("value %q of %q crosses an attribute", v, line)
		}
		c, err := http.ParseSetCookie(line)
		if err != nil || c.Name != "sid" || c.Value == "" {
			return
		}
		if !ours || v != c.Value && v != strings.Trim(c.Value, " \t\r\n") {
			t.Fatalf("net/http reads %q as sid=%q; the proxy as ours=%v %q", line, c.Value, ours, v)
		}
		installs := c.MaxAge > 0 || c.MaxAge == 0 && (c.RawExpires == "" || c.Expires.IsZero() || c.Expires.After(time.Now()))
		if installs && del {
			t.Fatalf("net/http installs %q (MaxAge %d, Expires %v); the proxy reads it as a deletion", line, c.MaxAge, c.Expires)
		}
	})
}

// FuzzCookieHeader checks reading and removing a cookie in request
// headers: after removeCookie the session is gone for the proxy and for
// net/http (the app sees none), and cookieValue agrees with net/http on a
// well-formed cookie.
func FuzzCookieHeader(f *testing.F) {
	for _, s := range []string{"sid=a; x=1", "x=1;sid=\"b\"; sid=c", " sid = d ", "sid", "a=b;;;sid=;", "sid=e\x00; y=2"} {
		f.Add(s, "z=1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		h := http.Header{"Cookie": {a, b}}
		_, ok := cookieValue(h, "sid")
		r := &http.Request{Header: h}
		// net/http skips malformed pairs: the proxy may see more, not less.
		if cs := r.CookiesNamed("sid"); len(cs) > 0 && cs[0].Value != "" && !ok {
			t.Fatalf("net/http reads sid=%q from %q; the proxy reads none", cs[0].Value, h["Cookie"])
		}
		removeCookie(h, "sid")
		if _, ok := cookieValue(h, "sid"); ok {
			t.Fatalf("sid still there after removal: %q", h["Cookie"])
		}
		if cs := (&http.Request{Header: h}).CookiesNamed("sid"); len(cs) > 0 {
			t.Fatalf("net/http still reads sid=%q after removal: %q", cs[0].Value, h["Cookie"])
		}
	})
}

// fuzzConn is an upstream connection that answers with fixed bytes.
type fuzzConn struct {
	r *bytes.Reader
	net.Conn
}

func (c *fuzzConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// recorder records every header block written, informational ones too.
type recorder struct {
	h      http.Header
	blocks []http.Header
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(code int) {
	if r.wrote {
		return
	}
	r.blocks = append(r.blocks, r.h.Clone())
	if code >= 200 {
		r.wrote = true
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(200)
	}
	return r.body.Write(p)
}

// FuzzUpstreamResponse feeds arbitrary bytes to the proxy as the upstream's
// answer to a GET (the fast transport's parsing, 1xx handling and the
// guard): the proxy never panics, and no header block it writes (final or
// informational) carries the session of another device, in any spelling or
// shape, nor the user header.
func FuzzUpstreamResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 103 Early Hints\r\nSet-Cookie: sid=FOREIGN\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nset-cookie: sid=FOREIGN; Path=/\r\nSet-Cookie: =sid=FOREIGN\r\nX-App-User: bob\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nSet-Cookie: sid=FOREIGN; Max-Age=0; Max-Age=9\r\n\r\nbody",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n",
		"HTTP/1.0 200 OK\r\nSet-Cookie: sid=\"FOREIGN\"\r\nConnection: close\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	b := NewBindingsLimited(Limits{MaxIssued: 1 << 12}) // fresh sessions the upstream sets bind here
	foreign := store.Fingerprint("FOREIGN")
	p, err := New(Options{Upstream: mustURL("http://upstream.test"), SessionCookie: "sid", UserHeader: "X-App-User",
		Bindings: b, MaxResponseHeader: 8 << 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	ft := p.opt.Transport.(*fastTransport)
	f.Fuzz(func(t *testing.T, resp []byte) {
		// Bound to another device (again, should the table have evicted it).
		if bd, _, _ := b.Bind(context.Background(), foreign, Binding{Device: "someone else"}); bd.Device != "someone else" {
			t.Fatalf("FOREIGN is bound to %q", bd.Device)
		}
		ft.dial = func(context.Context, string, string) (net.Conn, error) {
			return &fuzzConn{r: bytes.NewReader(resp)}, nil
		}
		ft.CloseIdleConnections()
		rec := &recorder{h: http.Header{}}
		req := httptest.NewRequest("GET", "http://site.test/", nil)
		func() {
			// A body the upstream breaks off aborts the handler, as under
			// net/http's server (which recovers it and closes the
			// connection); nothing else may panic.
			defer func() {
				if e := recover(); e != nil && e != http.ErrAbortHandler {
					panic(e)
				}
			}()
			p.ServeHTTP(rec, req)
		}()
		for _, h := range rec.blocks {
			for k, vs := range h {
				if strings.EqualFold(k, "X-App-User") {
					t.Fatalf("the user header left: %q", vs)
				}
				if !strings.EqualFold(k, "Set-Cookie") {
					continue
				}
				for _, l := range vs {
					// In any shape a client might read: the browser's own
					// cookie, or the name smuggled elsewhere in the line.
					if kind, v := setcookie.Classify(l, "sid"); v == "FOREIGN" && (kind == setcookie.Smuggled || !setcookie.Deletes(l)) {
						t.Fatalf("another device's session left: %q in %q", l, h)
					}
				}
			}
		}
		io.Copy(io.Discard, &rec.body)
	})
}

// FuzzReadHeader: the response header reader gives what textproto's
// ReadMIMEHeader gives, for any bytes, and leaves the reader at the same
// place.
func FuzzReadHeader(f *testing.F) {
	for _, s := range []string{
		"Content-Type: a\r\nSet-Cookie: x=1\r\nset-cookie: y=2\r\n\r\nbody",
		"A:  b \t\r\n\r\n",
		"A: b\r\n c\r\n\r\n",
		"A b: c\r\n\r\n",
		"A: b\nC: d\n\n",
		"A: \x01\r\n\r\n",
		"A: b\r\n",
		":x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := textproto.NewReader(bufio.NewReader(bytes.NewReader(b))).ReadMIMEHeader()
		br := bufio.NewReader(bytes.NewReader(b))
		got := http.Header{}
		gerr := readHeader(&fconn{br: br}, got)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("error %v, textproto's %v", gerr, werr)
		}
		if werr != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%v, textproto's %v", got, want)
		}
		for k, vs := range want {
			if !slices.Equal(got[k], vs) {
				t.Fatalf("%s: %q, textproto's %q", k, got[k], vs)
			}
		}
		// The reader is left just past the blank line, as textproto's.
		tr := bufio.NewReader(bytes.NewReader(b))
		textproto.NewReader(tr).ReadMIMEHeader()
		wantRest, _ := io.ReadAll(tr)
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, wantRest) {
			t.Fatalf("left %q, textproto %q", rest, wantRest)
		}
	})
}
