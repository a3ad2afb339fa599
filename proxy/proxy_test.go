package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/internal/h1"
	"github.com/cordon-sec/cordon/internal/setcookie"
	"github.com/cordon-sec/cordon/internal/token"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/store"
)

// goApp is a tiny upstream app in Go: /login?u= issues a session, /me
// answers the user, /give?tok= writes the given session cookie into the
// response (the bug), /seen answers the session cookie the app saw.
type goApp struct {
	mu       sync.Mutex
	sessions map[string]string
	n        int
}

func (a *goApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, _ := r.Cookie("sid")
	user := ""
	if c != nil {
		user = a.sessions[c.Value]
	}
	switch r.URL.Path {
	case "/login":
		a.n++
		tok := fmt.Sprintf("tok-%d-%s", a.n, r.FormValue("u"))
		a.sessions[tok] = r.FormValue("u")
		user = r.FormValue("u")
		w.Header().Add("Set-Cookie", "sid="+tok+"; Path=/; HttpOnly; SameSite=Lax")
		w.Header().Add("Set-Cookie", "theme=dark; Path=/; Max-Age=3600")
	case "/give":
		w.Header().Add("Set-Cookie", "sid="+r.FormValue("tok")+"; Path=/")
	case "/seen":
		if c != nil {
			io.WriteString(w, c.Value)
		}
		return
	case "/whoclaims":
		io.WriteString(w, r.Header.Get("X-App-User")+"|"+r.Header.Get("Forwarded")+"|"+r.Header.Get("X-Forwarded-For"))
		return
	}
	if user != "" {
		w.Header().Set("X-App-User", user)
	}
	io.WriteString(w, user)
}

type fixture struct {
	t    *testing.T
	up   *httptest.Server
	srv  *leanServer
	logw *reqlog.Writer
	path string
	b    BindingStore
}

func newFixture(t *testing.T, upstream http.Handler, opt Options) *fixture {
	t.Helper()
	f := &fixture{t: t}
	f.up = httptest.NewServer(upstream)
	t.Cleanup(f.up.Close)
	u, _ := url.Parse(f.up.URL)
	opt.Upstream = u
	if opt.SessionCookie == "" {
		opt.SessionCookie = "sid"
	}
	if opt.UserHeader == "" {
		opt.UserHeader = "X-App-User"
	}
	if opt.Bindings == nil {
		opt.Bindings = NewBindings()
	}
	f.b = opt.Bindings
	opt.Dev = true // the test browsers speak plain HTTP
	opt.Logger = slog.New(slog.DiscardHandler)
	p, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	f.path = filepath.Join(t.TempDir(), "requests.log")
	f.logw, err = reqlog.Open(f.path, reqlog.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = serveLean(t, reqlog.Middleware(f.logw, reqlog.Options{})(p))
	return f
}

// leanServer is the proxy served as `cordon proxy` serves it: the lean
// HTTP/1.1 loop, handing what it does not serve to net/http.
type leanServer struct{ URL string }

func serveLean(t *testing.T, h http.Handler) *leanServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &h1.Server{Fallback: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return &leanServer{URL: "http://" + ln.Addr().String()}
}

func (f *fixture) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

func (f *fixture) get(c *http.Client, path string) (*http.Response, string) {
	f.t.Helper()
	resp, err := c.Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (f *fixture) cookie(c *http.Client, name string) string {
	u, _ := url.Parse(f.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// lines flushes the request log and reads it.
func (f *fixture) lines() []reqlog.Line {
	f.t.Helper()
	if err := f.logw.Flush(); err != nil {
		f.t.Fatal(err)
	}
	fh, err := os.Open(f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer fh.Close()
	ls, err := reqlog.ReadLines(fh)
	if err != nil {
		f.t.Fatal(err)
	}
	return ls
}

func (f *fixture) events(ev string) []reqlog.Line {
	var out []reqlog.Line
	for _, l := range f.lines() {
		if l.Event == ev || strings.HasPrefix(l.Event, ev) {
			out = append(out, l)
		}
	}
	return out
}

func newGoApp() *goApp { return &goApp{sessions: map[string]string{}} }

func TestBindsAndLogs(t *testing.T) {
	f := newFixture(t, newGoApp(), Options{})
	alice := f.browser()
	resp, body := f.get(alice, "/login?u=alice")
	if body != "alice" {
		t.Fatalf("login body %q", body)
	}
	if resp.Header.Get("X-App-User") != "" {
		t.Fatal("the user header reached the client")
	}
	if f.cookie(alice, "cordon-dev") == "" || f.cookie(alice, "theme") != "dark" || f.cookie(alice, "sid") == "" {
		t.Fatalf("cookies after login: %v", alice.Jar.Cookies(mustURL(f.srv.URL)))
	}
	if _, body := f.get(alice, "/me"); body != "alice" {
		t.Fatalf("me = %q", body)
	}
	ls := f.lines()
	if len(ls) != 2 {
		t.Fatalf("%d log lines, want 2", len(ls))
	}
	fp := store.Fingerprint(f.cookie(alice, "sid"))
	if ls[0].SidOut != fp || ls[0].UidOut != "alice" || ls[0].UidView != "alice" || ls[0].Dev == "" {
		t.Errorf("login line %+v", ls[0])
	}
	if ls[1].SidIn != fp || ls[1].UidIn != "alice" || ls[1].Dev != ls[0].Dev || ls[1].Event != "" {
		t.Errorf("me line %+v", ls[1])
	}
}

func TestForeignSessionInResponseIsBlocked(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     Options
		status  int
		leaks   bool
		eventIs string
	}{
		{"block", Options{}, 500, false, "guard_block"},
		{"strip", Options{OnBlock: Strip}, 200, false, "guard_block"},
		{"report", Options{Mode: Report}, 200, true, "guard_block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, newGoApp(), tc.opt)
			bob := f.browser()
			f.get(bob, "/login?u=bob")
			bobTok := f.cookie(bob, "sid")
			alice := f.browser()
			f.get(alice, "/login?u=alice")
			resp, _ := f.get(alice, "/give?tok="+url.QueryEscape(bobTok))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			got := f.cookie(alice, "sid") == bobTok
			if got != tc.leaks {
				t.Fatalf("alice holds bob's session: %v, want %v", got, tc.leaks)
			}
			evs := f.events(tc.eventIs)
			if len(evs) != 1 || evs[0].SidOut != store.Fingerprint(bobTok) || evs[0].UidOut != "bob" {
				t.Fatalf("guard_block lines %+v", evs)
			}
			if tc.name == "report" && evs[0].Event != "guard_block" || !strings.Contains(evs[0].Detail, "foreign_device") {
				t.Fatalf("detail %q", evs[0].Detail)
			}
		})
	}
}

func TestForeignSessionPresentedIsLoggedAndStripped(t *testing.T) {
	f := newFixture(t, newGoApp(), Options{StripForeign: true})
	bob := f.browser()
	f.get(bob, "/login?u=bob")
	stolen := f.cookie(bob, "sid")
	thief := f.browser()
	f.get(thief, "/me") // gets a device of its own
	u := mustURL(f.srv.URL)
	thief.Jar.SetCookies(u, []*http.Cookie{{Name: "sid", Value: stolen, Path: "/"}})
	if _, body := f.get(thief, "/seen"); body != "" {
		t.Fatalf("the app saw the foreign session %q", body)
	}
	if evs := f.events("device_mismatch"); len(evs) != 1 || evs[0].SidIn != store.Fingerprint(stolen) {
		t.Fatalf("device_mismatch lines %+v", evs)
	}
	if _, body := f.get(bob, "/seen"); body != stolen {
		t.Fatalf("bob's own session was stripped: %q", body)
	}
}

func TestEdgeRevocationFromAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bindings.db")
	b, err := OpenBindings(path, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := newFixture(t, newGoApp(), Options{Bindings: b})
	alice, bob := f.browser(), f.browser()
	f.get(alice, "/login?u=alice")
	f.get(bob, "/login?u=bob")
	fp := store.Fingerprint(f.cookie(alice, "sid"))
	n, known, err := CountInFile(path, []string{fp})
	if err != nil || n != 2 || len(known) != 1 {
		t.Fatalf("CountInFile = %d %v %v", n, known, err)
	}
	// `cordon revoke -store sqlite:PATH -session FP` from another process.
	if err := RevokeInFile(context.Background(), path, []string{fp}, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, body := f.get(alice, "/me")
		if body == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("revoked session still reaches the app after 2s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, body := f.get(bob, "/me"); body != "bob" {
		t.Fatalf("bob lost his session: %q", body)
	}
	if err := RevokeInFile(context.Background(), path, nil, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, body := f.get(bob, "/me"); body != "" {
		t.Fatalf("revoke-all left bob signed in")
	}
	// A restarted proxy remembers bindings and revocations.
	b2, err := OpenBindings(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if _, st := b2.Get(fp); st != Revoked {
		t.Fatalf("after reopening, the revoked session is %v", st)
	}
}

func TestUpstreamDownIs502WithoutCookies(t *testing.T) {
	f := newFixture(t, newGoApp(), Options{})
	f.up.Close()
	resp, _ := f.get(f.browser(), "/me")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	cs := resp.Header.Values("Set-Cookie")
	if len(cs) != 1 || !strings.HasPrefix(cs[0], "cordon-dev=") {
		t.Fatalf("a 502 carried %q, want the device cookie only", cs)
	}
}

func TestForwardingHeadersAndUserHeaderSpoofing(t *testing.T) {
	f := newFixture(t, newGoApp(), Options{})
	req, _ := http.NewRequest("GET", f.srv.URL+"/whoclaims", nil)
	req.Header.Set("X-App-User", "admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	parts := strings.Split(string(b), "|")
	if parts[0] != "" {
		t.Fatalf("a client-sent user header reached the app: %q", parts[0])
	}
	if !strings.Contains(parts[1], "for=127.0.0.1") || !strings.Contains(parts[1], "proto=http") || parts[2] != "127.0.0.1" {
		t.Fatalf("forwarding headers %q", b)
	}
}

func TestRequestBodyLimit(t *testing.T) {
	f := newFixture(t, newGoApp(), Options{MaxRequestBody: 1024})
	resp, err := http.Post(f.srv.URL+"/me", "text/plain", strings.NewReader(strings.Repeat("x", 4096)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

func TestStreamingAndWebSocketPassThrough(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo:" + line)
		brw.Flush()
	})
	f := newFixture(t, mux, Options{})
	resp, err := http.Get(f.srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	if err != nil || first != "first\n" {
		t.Fatalf("first chunk %q %v (not streamed?)", first, err)
	}
	close(release)
	second, _ := r.ReadString('\n')
	resp.Body.Close()
	if second != "second\n" {
		t.Fatalf("second chunk %q", second)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.Contains(status, "101") {
		t.Fatalf("upgrade answered %q", status)
	}
	for {
		l, _ := br.ReadString('\n')
		if l == "\r\n" || l == "" {
			break
		}
	}
	fmt.Fprintf(conn, "hello\n")
	echo, _ := br.ReadString('\n')
	if echo != "echo:hello\n" {
		t.Fatalf("websocket echo %q", echo)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestValidTokenAndIsDeletion(t *testing.T) {
	for range 100 {
		tok, err := token.New(rand.Reader)
		if err != nil || !token.Valid(tok) {
			t.Fatalf("a fresh token %v is not valid", err)
		}
	}
	tok, _ := token.New(rand.Reader)
	for _, bad := range []string{"", tok[:42], tok + "A", tok[:42] + "B", tok[:10] + "+" + tok[11:], tok[:10] + "=" + tok[11:]} {
		if token.Valid(bad) {
			t.Errorf("token.Valid accepted a malformed token of length %d", len(bad))
		}
	}
	for line, want := range map[string]bool{
		"sid=x; Path=/; Max-Age=0":                             true,
		"sid=x; max-age=-1":                                    true,
		"sid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/": true,
		"sid=x; EXPIRES=thu, 01 jan 1970 00:00:01 GMT":         true,
		"sid=x; Max-Age=3600":                                  false,
		"sid=max-age=0; Path=/":                                false,
		"sid=x; Expires=Fri, 01 Jan 2038 00:00:00 GMT":         false,
		"sid=x": false,
	} {
		if got := setcookie.Deletes(line); got != want {
			t.Errorf("setcookie.Deletes(%q) = %v, want %v", line, got, want)
		}
	}
}
