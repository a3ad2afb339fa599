package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBodyDeadline: a client that stops sending a request's body is cut
// off after the body's limit (without bodyDeadline the handler's read
// would wait for ever: no ReadTimeout is set), and the limit does not
// outlive its request: a GET on the same connection long after it, once
// the body arrived whole, is served.
func TestBodyDeadline(t *testing.T) {
	const d = 200 * time.Millisecond
	type result struct {
		err     error
		elapsed time.Duration
	}
	got := make(chan result, 2)
	srv := httptest.NewUnstartedServer(bodyDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		_, err := io.ReadAll(r.Body)
		if r.Method == http.MethodPost {
			got <- result{err, time.Since(start)}
		}
		io.WriteString(w, "ok")
	}), d))
	srv.Config.ReadHeaderTimeout = time.Minute
	srv.Start()
	defer srv.Close()

	// A body that never arrives whole.
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nten bytes.")
	select {
	case r := <-got:
		if r.err == nil || r.elapsed > 10*d {
			t.Fatalf("stalled body read: %v after %v, want a timeout after about %v", r.err, r.elapsed, d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a stalled body held the handler past its limit")
	}

	// A whole body, then a GET after the body's limit has passed.
	c2, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	br := bufio.NewReader(c2)
	io.WriteString(c2, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
	if r := <-got; r.err != nil {
		t.Fatalf("whole body: %v", r.err)
	}
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("POST: %v %v", res, err)
	} else {
		io.Copy(io.Discard, res.Body)
	}
	time.Sleep(3 * d)
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET after the body's limit: %v %v", res, err)
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 10))
	if !strings.HasPrefix(string(b), "ok") {
		t.Fatalf("GET answered %q", b)
	}
}
