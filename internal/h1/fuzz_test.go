package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"testing"
)

// FuzzParse: whatever request head the lean loop takes for itself,
// net/http reads the same way: the same method, target, host and header,
// and no body. What net/http would refuse or read otherwise, the lean loop
// must hand over.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /x?y=1 HTTP/1.1\r\nHost: a.test:80\r\nCookie: a=1\r\ncookie: b=2\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX:  v \t\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET // HTTP/1.1\r\nHost: [::1]:8\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: \x80\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	s := &Server{Fallback: &http.Server{}}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &conn{s: s, buf: b, w: len(b), base: &http.Request{}}
		end, found, bad := scanHead(b, 0, 0)
		if bad || !found {
			return
		}
		req, ok := c.parse(end)
		if !ok {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:end])))
		if err != nil {
			t.Fatalf("taken, but net/http refuses it: %v", err)
		}
		if want.Method != req.Method || want.RequestURI != req.RequestURI || want.Host != req.Host ||
			want.URL.String() != req.URL.String() || want.ContentLength != 0 || want.Close != req.Close ||
			want.Proto != req.Proto || len(want.TransferEncoding) != 0 {
			t.Fatalf("taken as %s %q host %q close %v; net/http: %s %q host %q close %v length %d",
				req.Method, req.RequestURI, req.Host, req.Close, want.Method, want.RequestURI, want.Host, want.Close, want.ContentLength)
		}
		if len(want.Header) != len(req.Header) {
			t.Fatalf("header %v; net/http %v", req.Header, want.Header)
		}
		for k, vs := range want.Header {
			if !slices.Equal(vs, req.Header[k]) {
				t.Fatalf("%s: %q; net/http %q", k, req.Header[k], vs)
			}
		}
	})
}
