package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
)

// syncBuffer is a bytes.Buffer safe for the demo's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type runningDemo struct {
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startDemo runs `cordon demo args...` on port 0 and waits until it is
// ready. stop() cancels its context (what SIGINT/SIGTERM do in main) and
// returns Run's error.
func startDemo(t *testing.T, args ...string) *runningDemo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &runningDemo{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	env := &Env{Stdin: strings.NewReader(""), Stdout: d.stdout, Stderr: d.stderr, Ready: func(u string) { ready <- u }}
	go func() { d.done <- Run(ctx, env, append([]string{"demo", "-addr", "127.0.0.1:0"}, args...)) }()
	select {
	case d.url = <-ready:
	case err := <-d.done:
		cancel()
		t.Fatalf("demo exited before it was ready: %v\n%s", err, d.stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		<-d.done
	})
	return d
}

func (d *runningDemo) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	if err := <-d.done; err != nil {
		t.Fatalf("demo stopped with %v\n%s", err, d.stderr.String())
	}
	d.done <- nil // for the cleanup
}

func newJarClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func postJSON(t *testing.T, c *http.Client, url, body string) (int, string) {
	t.Helper()
	res, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func whoami(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	res, err := c.Get(base + "api/whoami")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b struct {
		User *string `json:"user"`
	}
	if err := json.NewDecoder(res.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	if b.User == nil {
		return ""
	}
	return *b.User
}

const demoPassword = "a long enough password 123"

func TestDemoSessionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	db, logf := filepath.Join(dir, "demo.db"), filepath.Join(dir, "requests.log")
	args := []string{"-db", db, "-log", logf, "-admin", "root"}

	d := startDemo(t, args...)
	if !strings.Contains(d.stdout.String(), "serving on "+d.url) {
		t.Fatalf("the URL is not printed: %q", d.stdout.String())
	}
	c := newJarClient(t)
	if code, body := postJSON(t, c, d.url+"api/signup", `{"user":"alice","password":"`+demoPassword+`"}`); code != 201 {
		t.Fatalf("signup: %d %s", code, body)
	}
	if got := whoami(t, c, d.url); got != "alice" {
		t.Fatalf("whoami = %q", got)
	}
	d.stop(t)

	// Stopped: the request log is complete and flushed.
	lines := readLog(t, logf)
	if len(lines) != 2 || lines[0].Path != "/api/signup" || lines[0].UidOut != "alice" || lines[0].SidOut == "" ||
		lines[1].SidIn != lines[0].SidOut || lines[1].UidView != "alice" {
		t.Fatalf("request log after stop: %+v", lines)
	}

	// Same database, new process: the session and the account are there.
	d = startDemo(t, args...)
	if got := whoami(t, c, d.url); got != "alice" {
		t.Fatalf("whoami after restart = %q, want alice", got)
	}
	other := newJarClient(t)
	if code, body := postJSON(t, other, d.url+"api/login", `{"user":"alice","password":"`+demoPassword+`"}`); code != 200 {
		t.Fatalf("login after restart: %d %s", code, body)
	}
	d.stop(t)
	if lines := readLog(t, logf); len(lines) != 4 || lines[2].SidIn != lines[0].SidOut || lines[2].Seq != 1 {
		t.Fatalf("request log after the second run: %+v", lines)
	}
}

// A request in flight when the demo is told to stop is served to the end,
// and the session it created is committed.
func TestDemoShutdownFinishesInFlightRequests(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")
	args := []string{"-db", db, "-log", filepath.Join(dir, "requests.log"), "-admin", "root"}
	d := startDemo(t, args...)
	host := strings.TrimSuffix(strings.TrimPrefix(d.url, "http://"), "/")

	// A sign-up whose body arrives in two halves, on a raw connection.
	body := `{"user":"bob","password":"` + demoPassword + `"}`
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "POST /api/signup HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head+body[:10]); err != nil {
		t.Fatal(err)
	}
	// The server accepts connections one after another: once a later one
	// is answered, the sign-up's connection has been accepted and is the
	// server's to finish.
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if res, err := probe.Get(d.url + "api/whoami"); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	d.cancel()
	// Wait until the listener is closed: shutdown has begun.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if i > 500 {
			t.Fatal("the demo still accepts connections after its context was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatalf("the in-flight request's connection was cut: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight signup: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 201 || len(res.Cookies()) == 0 {
		t.Fatalf("in-flight signup: %d, cookies %d", res.StatusCode, len(res.Cookies()))
	}
	if err := <-d.done; err != nil {
		t.Fatalf("demo stopped with %v", err)
	}
	d.done <- nil

	d = startDemo(t, args...)
	c := newJarClient(t)
	u, _ := url.Parse(d.url)
	c.Jar.SetCookies(u, res.Cookies())
	if got := whoami(t, c, d.url); got != "bob" {
		t.Fatalf("the session of the in-flight signup is lost: whoami = %q", got)
	}
}

// demoAdmin returns a client signed in to the demo at base as the account
// "root" (signing it up if needed), which the tests name with -admin. It
// does not follow redirects.
func demoAdmin(t *testing.T, base string) *http.Client {
	t.Helper()
	c := newJarClient(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	body := `{"user":"root","password":"` + demoPassword + `"}`
	if code, _ := postJSON(t, c, base+"api/login", body); code != http.StatusOK {
		if code, b := postJSON(t, c, base+"api/signup", body); code != http.StatusCreated {
			t.Fatalf("admin sign-up: %d %s", code, b)
		}
	}
	return c
}

// The admin page belongs to one account: the one -admin names, or without
// it the account signed up first. The program says which as it starts,
// and prints "listening on" before anything else.
func TestDemoAdminAccount(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		first string // signs up first
		admin string // may open /admin
		said  string
	}{
		{"named", []string{"-admin", "root"}, "alice", "root", `for the account "root"`},
		{"first", nil, "alice", "alice", "for the account signed up first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := startDemo(t, append([]string{"-db", filepath.Join(dir, "demo.db"), "-log", "-"}, tc.args...)...)
			out := d.stdout.String()
			if !strings.HasPrefix(out, "cordon demo: listening on "+d.url+"\n") || !strings.Contains(out, tc.said) {
				t.Fatalf("start-up output:\n%s", out)
			}
			status := func(user string) int {
				c := newJarClient(t)
				c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
				body := `{"user":"` + user + `","password":"` + demoPassword + `"}`
				if code, _ := postJSON(t, c, d.url+"api/login", body); code != http.StatusOK {
					if code, b := postJSON(t, c, d.url+"api/signup", body); code != http.StatusCreated {
						t.Fatalf("sign-up %s: %d %s", user, code, b)
					}
				}
				res, err := c.Get(d.url + "admin")
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode
			}
			status(tc.first)
			for _, u := range []string{tc.first, "root", "zoe"} {
				want := http.StatusForbidden
				if u == tc.admin {
					want = http.StatusOK
				}
				if got := status(u); got != want {
					t.Errorf("/admin as %s: %d, want %d", u, got, want)
				}
			}
			res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(d.url + "admin")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusSeeOther {
				t.Errorf("/admin signed in as nobody: %d", res.StatusCode)
			}
			d.stop(t)
			// -log - writes the request log to standard output, not to a file.
			if _, err := os.Stat("-"); err == nil {
				t.Fatal("-log - created a file named -")
			}
			if !strings.Contains(d.stdout.String(), `"path":"/admin","status":403`) {
				t.Fatalf("no request-log line on standard output:\n%s", d.stdout.String())
			}
		})
	}
}

func TestDemoFlags(t *testing.T) {
	env := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
	for _, args := range [][]string{
		{"demo", "-nope"},
		{"demo", "-addr", "no-port"},
		{"demo", "-db", ""},
		{"demo", "-log", ""},
		{"demo", "extra"},
		{"demo", "-metrics-addr", "nope"},
		{"demo", "-admin", "Not A Name"},
	} {
		if err := Run(context.Background(), env, args); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	var help bytes.Buffer
	if err := Run(context.Background(), &Env{Stdout: io.Discard, Stderr: &help}, []string{"demo", "-h"}); err != nil {
		t.Fatalf("-h: %v", err)
	}
	for _, f := range []string{"-addr", "-db", "-log", "-admin", "-store", "-metrics-addr", "-cache-bound"} {
		if !strings.Contains(help.String(), f) {
			t.Errorf("help lacks %s", f)
		}
	}
	// A database in a directory that does not exist is an error, not a panic.
	err := Run(context.Background(), env, []string{"demo", "-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "no", "demo.db"), "-log", "-"})
	if err == nil || errors.Is(err, errUsage) {
		t.Fatalf("missing directory: %v", err)
	}
}

func readLog(t *testing.T, path string) []reqlog.Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := reqlog.ReadLines(f)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestServeURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080/",
		"0.0.0.0:8080":   "http://127.0.0.1:8080/",
		"[::]:8080":      "http://127.0.0.1:8080/",
		"[::1]:9":        "http://[::1]:9/",
		"10.1.2.3:80":    "http://10.1.2.3:80/",
	} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := serveURL(a); got != want {
			t.Errorf("serveURL(%s) = %s, want %s", in, got, want)
		}
	}
}
