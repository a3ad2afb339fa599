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
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/store"
)

// fakeClock is a settable clock for the bindings' idle expiry.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func fpOf(i int) string { return store.Fingerprint(fmt.Sprintf("session-%d", i)) }

// Random session values presented by clients fill only the presented
// class, which stays at its cap; a session the app issued survives any
// number of them.
func TestRandomCookiesCostBoundedMemory(t *testing.T) {
	b := NewBindingsLimited(Limits{MaxIssued: 100, MaxPresented: 50})
	ctx := context.Background()
	issued := fpOf(-1)
	if _, st, _ := b.Bind(ctx, issued, Binding{Device: "alice"}); st != Bound {
		t.Fatal(st)
	}
	for i := range 10_000 {
		if _, st, _ := b.Bind(ctx, fpOf(i), Binding{Device: "attacker", Presented: true}); st != Bound {
			t.Fatal(st)
		}
		if i, p := b.Sizes(); i > 100 || p > 50 {
			t.Fatalf("sizes %d issued, %d presented: over the caps", i, p)
		}
	}
	if i, p := b.Sizes(); i != 1 || p != 50 {
		t.Fatalf("after the flood: %d issued, %d presented; want 1, 50", i, p)
	}
	if bd, st := b.Get(issued); st != Bound || bd.Device != "alice" {
		t.Fatalf("the issued session after a flood of presented ones: %v %+v", st, bd)
	}
	// The most recently used presented bindings are the ones kept.
	if _, st := b.Get(fpOf(9_999)); st != Bound {
		t.Fatalf("the last presented session was evicted: %v", st)
	}
}

// A full class evicts the least recently used entries (of a sample): a
// session in use survives a stream of new ones.
func TestEvictionKeepsSessionsInUse(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	b := NewBindingsLimited(Limits{MaxIssued: 64})
	b.tab.now = clk.now
	ctx := context.Background()
	hot := fpOf(-1)
	b.Bind(ctx, hot, Binding{Device: "alice"})
	for i := range 5_000 {
		clk.add(2 * time.Second)
		b.Bind(ctx, fpOf(i), Binding{Device: "d"})
		if i%4 == 0 {
			if _, st := b.Get(hot); st != Bound {
				t.Fatalf("a session used every 4th request was evicted after %d new ones", i)
			}
		}
	}
}

// A binding unused for Limits.Idle is forgotten; one in use is not.
func TestIdleExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	b := NewBindingsLimited(Limits{Idle: time.Hour})
	b.tab.now = clk.now
	ctx := context.Background()
	used, idle := fpOf(1), fpOf(2)
	b.Bind(ctx, used, Binding{Device: "a"})
	b.Bind(ctx, idle, Binding{Device: "a"})
	for range 6 {
		clk.add(20 * time.Minute)
		if _, st := b.Get(used); st != Bound {
			t.Fatalf("a session used every 20 minutes expired: %v", st)
		}
	}
	if _, st := b.Get(idle); st != Unbound {
		t.Fatalf("a session idle for 2 h with Idle 1 h is %v, want Unbound", st)
	}
	// Forgotten means a new first binding.
	if bd, _, _ := b.Bind(ctx, idle, Binding{Device: "b"}); bd.Device != "b" {
		t.Fatalf("rebinding an expired session kept device %q", bd.Device)
	}
}

// A session the app renews for the device that presented it moves to the
// issued class, and from then on a flood of presented values cannot evict
// it; a renewal in another device's response does not promote it.
func TestPresentedSessionPromotedWhenTheAppRenewsIt(t *testing.T) {
	b := NewBindingsLimited(Limits{MaxPresented: 8})
	f := newFixture(t, newGoApp(), Options{Bindings: b})
	alice := f.browser()
	f.get(alice, "/me") // mints the device cookie
	// The app issued tok through another path (say, before the proxy ran):
	// alice presents it first, then the app renews it (/give).
	u := mustURL(f.srv.URL)
	alice.Jar.SetCookies(u, []*http.Cookie{{Name: "sid", Value: "tok-old", Path: "/"}})
	f.get(alice, "/me")
	if i, p := b.Sizes(); i != 0 || p != 1 {
		t.Fatalf("after presenting: %d issued, %d presented", i, p)
	}
	f.get(alice, "/give?tok=tok-old")
	if i, p := b.Sizes(); i != 1 || p != 0 {
		t.Fatalf("after the app renewed it: %d issued, %d presented", i, p)
	}
	for i := range 100 {
		b.Bind(context.Background(), fpOf(i), Binding{Device: "x", Presented: true})
	}
	if bd, st := b.Get(store.Fingerprint("tok-old")); st != Bound || bd.Presented {
		t.Fatalf("promoted session after a flood: %v %+v", st, bd)
	}
}

// Through the proxy, requests with random session cookies leave at most
// MaxPresented bindings, and none in the bindings file.
func TestRandomCookiesThroughTheProxy(t *testing.T) {
	b := NewBindingsLimited(Limits{MaxPresented: 100})
	f := newFixture(t, newGoApp(), Options{Bindings: b})
	c := &http.Client{}
	for i := range 1_000 {
		req, _ := http.NewRequest("GET", f.srv.URL+"/me", nil)
		req.Header.Set("Cookie", fmt.Sprintf("sid=random-%d", i))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if i, p := b.Sizes(); i != 0 || p != 100 {
		t.Fatalf("1000 random cookies left %d issued, %d presented bindings; want 0, 100", i, p)
	}
}

// Presented-only bindings are not written to the bindings file: random
// cookies do not grow it.
func TestPresentedBindingsStayOutOfTheFile(t *testing.T) {
	path := t.TempDir() + "/b.db"
	b, err := OpenBindings(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b.Bind(ctx, fpOf(1), Binding{Device: "a"})
	b.Bind(ctx, fpOf(2), Binding{Device: "a", Presented: true})
	b.Close()
	b, err = OpenBindings(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, st := b.Get(fpOf(1)); st != Bound {
		t.Fatalf("issued binding after reopening: %v", st)
	}
	if _, st := b.Get(fpOf(2)); st != Unbound {
		t.Fatalf("presented binding after reopening: %v, want Unbound (not in the file)", st)
	}
}

// earlyHintsUpstream answers every request with a 103 Early Hints that sets
// the session cookie leak (another device's session) and the user header,
// then a 200.
func earlyHintsUpstream(t *testing.T, leak string) string {
	up, _ := rawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for readReq(br) {
			fmt.Fprintf(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nSet-Cookie: sid=%s; Path=/\r\nX-App-User: bob\r\n\r\n", leak)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
		}
	})
	return up
}

// send makes a request through base and returns the informational headers
// seen and the final response's Set-Cookie lines.
func send(t *testing.T, method, base string) (info []textproto.MIMEHeader, final []string) {
	return sendPath(t, method, base, "/")
}

func sendPath(t *testing.T, method, base, path string) (info []textproto.MIMEHeader, final []string) {
	t.Helper()
	var mu sync.Mutex
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		mu.Lock()
		info = append(info, h)
		mu.Unlock()
		return nil
	}}
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("a=1")
	}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, base+path, body)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "final" {
		t.Fatalf("%s: %d %q", method, resp.StatusCode, b)
	}
	return info, resp.Header.Values("Set-Cookie")
}

// leaked is the oracle: an informational response carried a cookie or the
// user header.
func leaked(info []textproto.MIMEHeader) string {
	for _, h := range info {
		for k, v := range h {
			if strings.EqualFold(k, "Set-Cookie") || strings.EqualFold(k, "X-App-User") {
				return k + ": " + strings.Join(v, ", ")
			}
		}
	}
	return ""
}

// A 103 Early Hints carrying another device's session cookie does not reach
// the client on any path (GET: the direct path; GET with a query the direct
// path leaves to the reverse proxy: the fast transport; POST:
// http.Transport), its Link does, and the final response still carries the
// proxy's device cookie.
func TestInformationalResponsesAreGuarded(t *testing.T) {
	up := earlyHintsUpstream(t, "someone-elses-session")
	p, err := New(Options{Upstream: mustURL(up), SessionCookie: "sid", UserHeader: "X-App-User", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	logPath := t.TempDir() + "/requests.log"
	logw, err := reqlog.Open(logPath, reqlog.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reqlog.Middleware(logw, reqlog.Options{})(p))
	defer srv.Close()

	// The oracle catches the leak through an unguarded reverse proxy.
	plain := httptest.NewServer(httputil.NewSingleHostReverseProxy(mustURL(up)))
	defer plain.Close()
	for _, m := range []string{"GET", "POST"} {
		if info, _ := send(t, m, plain.URL); leaked(info) == "" {
			t.Fatalf("%s: the oracle did not see the leak through a plain reverse proxy", m)
		}
	}

	for _, m := range []string{"GET", "GET /?a;b", "POST"} {
		method, path, _ := strings.Cut(m, " ")
		if path == "" {
			path = "/"
		}
		info, final := sendPath(t, method, srv.URL, path)
		if l := leaked(info); l != "" {
			t.Errorf("%s: an informational response carried %s", m, l)
		}
		if len(info) != 1 || info[0].Get("Link") == "" {
			t.Errorf("%s: informational responses %v, want the 103 with its Link", m, info)
		}
		if len(final) != 1 || !strings.HasPrefix(final[0], DeviceCookie+"=") {
			t.Errorf("%s: final Set-Cookie %q, want the device cookie", m, final)
		}
	}
	srv.Close()
	logw.Close()
	fh, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	ls, err := reqlog.ReadLines(fh)
	if err != nil || len(ls) != 3 {
		t.Fatalf("request log: %d lines, %v", len(ls), err)
	}
	for _, l := range ls {
		if l.Event != reqlog.EventGuardBlock || l.Detail != "informational" {
			t.Errorf("logged %q %q, want guard_block informational", l.Event, l.Detail)
		}
	}
}

// The device cookie keeps Secure and its __Host- prefix unless Dev is set,
// whatever the request looks like (plain HTTP, a loopback connection and a
// loopback Host, as behind a TLS-terminating proxy on the same machine).
func TestDeviceCookieSecureUnlessDev(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	for _, dev := range []bool{false, true} {
		p, err := New(Options{Upstream: mustURL(up.URL), SessionCookie: "sid", Dev: dev, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(p)
		for _, host := range []string{"", "localhost", "127.0.0.1:8080", "example.com"} {
			req, _ := http.NewRequest("GET", srv.URL+"/", nil)
			if host != "" {
				req.Host = host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cs := resp.Cookies()
			if len(cs) != 1 {
				t.Fatalf("dev=%v host %q: cookies %v", dev, host, cs)
			}
			c := cs[0]
			wantName, wantSecure := DeviceCookie, true
			if dev {
				wantName, wantSecure = DevDeviceCookie, false
			}
			if c.Name != wantName || c.Secure != wantSecure || !c.HttpOnly || c.Path != "/" {
				t.Errorf("dev=%v host %q: device cookie %q (Secure %v), want %q (Secure %v)", dev, host, c.Name, c.Secure, wantName, wantSecure)
			}
		}
		srv.Close()
	}
}

// Lookups, promotions and evictions from many goroutines at once (run
// with -race).
func TestBindingsConcurrent(t *testing.T) {
	b := NewBindingsLimited(Limits{MaxIssued: 64, MaxPresented: 32})
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				fp := fpOf(i % 100)
				switch (i + g) % 3 {
				case 0:
					b.Bind(ctx, fp, Binding{Device: "d", Presented: true})
				case 1:
					b.Bind(ctx, fp, Binding{Device: "d"})
				default:
					if bd, st := b.Get(fp); st == Bound && bd.Device != "d" {
						t.Errorf("device %q", bd.Device)
					}
				}
			}
		})
	}
	wg.Wait()
	if i, p := b.Sizes(); i > 64 || p > 32 {
		t.Fatalf("sizes %d, %d over the caps", i, p)
	}
}
