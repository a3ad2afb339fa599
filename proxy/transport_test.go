package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestFastTransportReusesConnections(t *testing.T) {
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Method+" "+r.URL.Path)
	}))
	up.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	base := proxyTo(t, up.URL)
	for i := range 20 {
		method := "GET"
		if i%5 == 4 {
			method = "HEAD"
		}
		req, _ := http.NewRequest(method, base+"/x", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "GET /x"; method == "GET" && string(b) != want || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %q", method, resp.StatusCode, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential requests used %d upstream connections, want 1", n)
	}
}

// rawUpstream serves each connection with handle and counts connections.
func rawUpstream(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &n
}

func readReq(br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, req.Body)
	return true
}

func proxyTo(t *testing.T, upstream string) string {
	t.Helper()
	p, err := New(Options{Upstream: mustURL(upstream), SessionCookie: "sid", Dev: true, MaxResponseHeader: 4 << 10, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return serveLean(t, p).URL
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// An upstream that closes every kept-alive connection after one response
// (without saying so): the next request finds a dead pooled connection and
// is sent again on a fresh one.
func TestFastTransportRetriesAClosedIdleConnection(t *testing.T) {
	up, conns := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if readReq(br) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	base := proxyTo(t, up)
	for i := range 3 {
		if code, body := get(t, base+"/"); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
		time.Sleep(20 * time.Millisecond) // let the upstream's close arrive
	}
	if conns.Load() != 3 {
		t.Fatalf("%d upstream connections, want 3", conns.Load())
	}
}

func TestFastTransportEarlyHintsAndConnectionClose(t *testing.T) {
	up, conns := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for readReq(br) {
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
			io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nfinal")
			return
		}
	})
	base := proxyTo(t, up)
	for range 2 {
		if code, body := get(t, base+"/"); code != 200 || body != "final" {
			t.Fatalf("%d %q", code, body)
		}
	}
	if conns.Load() != 2 {
		t.Fatalf("a connection the upstream closed was reused: %d connections", conns.Load())
	}
}

func TestFastTransportHeaderLimit(t *testing.T) {
	up, _ := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if readReq(br) {
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Big: %s\r\nContent-Length: 2\r\n\r\nok", strings.Repeat("a", 64<<10))
		}
	})
	if code, _ := get(t, proxyTo(t, up)+"/"); code != http.StatusBadGateway {
		t.Fatalf("a 64 KiB header answered %d, want 502", code)
	}
}

// A client that goes away mid-body ends the upstream exchange at once, and
// the connection is not reused.
func TestFastTransportClientGoesAway(t *testing.T) {
	gone := make(chan bool, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			gone <- true
		case <-time.After(5 * time.Second):
			gone <- false
		}
	}))
	defer up.Close()
	base := proxyTo(t, up.URL)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "first\n" {
		t.Fatalf("first line %q", line)
	}
	cancel()
	resp.Body.Close()
	if !<-gone {
		t.Fatal("the upstream request went on after the client left")
	}
}
