package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/forensics"
	"github.com/cordon-sec/cordon/reqlog"
)

// startRack starts the Rack app in testdata/rackapp on Debian's unicorn
// (one worker, a new connection per request, as in 2021) or puma (threads
// and keep-alive, for long runs) and returns its base URL.
func startRack(t *testing.T, server string, buggy bool) string {
	t.Helper()
	bin, err := exec.LookPath(server)
	if err != nil {
		t.Fatalf("%s is not installed: run ./test.sh, which installs Debian's unicorn, puma and ruby-rack", server)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, _ := filepath.Abs("testdata/rackapp")
	args := []string{"-E", "production", "-p", fmt.Sprint(port), "-o", "127.0.0.1", "-c", "unicorn.conf.rb", "config.ru"}
	if server == "puma" {
		args = []string{"-q", "-e", "production", "-b", fmt.Sprintf("tcp://127.0.0.1:%d", port), "-t", "4:4", "config.ru"}
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BUG_RATE=0.05")
	if buggy {
		cmd.Env = append(cmd.Env, "BUGGY=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, _ := os.Create(filepath.Join(t.TempDir(), "unicorn.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/bugs")
		if err == nil {
			resp.Body.Close()
			return base
		}
		if i > 200 {
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("unicorn did not start: %v\n%s", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rackResult is what clients saw.
type rackResult struct {
	requests  atomic.Int64
	crossings atomic.Int64
	blocked   atomic.Int64
}

// drive runs clients against base: each signs in as its own user, then
// mostly asks who it is, sometimes renews, sometimes logs out and in again.
// The app sets a session cookie only on /login and /renew, so one that
// arrives on any other request is another user's session: a crossing.
func drive(t *testing.T, base string, clients, requests int) *rackResult {
	t.Helper()
	res := &rackResult{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			rnd := rand.New(rand.NewPCG(uint64(i), 9))
			user := fmt.Sprintf("u%02d", i)
			do := func(method, path string) string {
				req, _ := http.NewRequest(method, base+path, nil)
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return ""
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				res.requests.Add(1)
				own := strings.HasPrefix(path, "/login") || path == "/renew"
				for _, ck := range resp.Cookies() {
					if ck.Name == "app_session" && ck.Value != "" && ck.MaxAge >= 0 && !own {
						res.crossings.Add(1)
					}
				}
				if resp.StatusCode != http.StatusOK {
					if resp.StatusCode == http.StatusInternalServerError {
						res.blocked.Add(1)
					}
					return ""
				}
				return string(b)
			}
			do("POST", "/login?u="+user)
			for next.Add(1) <= int64(requests) {
				switch n := rnd.IntN(100); {
				case n < 2:
					do("POST", "/logout")
					do("POST", "/login?u="+user)
				case n < 5:
					do("POST", "/renew")
				default:
					if got := do("GET", "/me"); got != user && got != "" {
						// The body is rendered for the session the client
						// holds; a different name means it holds another
						// user's session.
						res.crossings.Add(1)
						jar.SetCookies(mustURL(base), []*http.Cookie{{Name: "app_session", Value: "", MaxAge: -1}})
						do("POST", "/login?u="+user)
					}
				}
			}
		}()
	}
	wg.Wait()
	return res
}

func proxyFor(t *testing.T, upstream string) (string, func() []reqlog.Line) {
	t.Helper()
	u, _ := url.Parse(upstream)
	p, err := New(Options{Upstream: u, SessionCookie: "app_session", Dev: true, UserHeader: "X-App-User", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "requests.log")
	lw, err := reqlog.Open(path, reqlog.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveLean(t, reqlog.Middleware(lw, reqlog.Options{})(p))
	return srv.URL, func() []reqlog.Line {
		if err := lw.Flush(); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ls, err := reqlog.ReadLines(f)
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
}

func bugCount(t *testing.T, base string) int {
	resp, err := http.Get(base + "/bugs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n int
	fmt.Fscan(resp.Body, &n)
	return n
}

// TestRackAppWith2021Bug runs a Rack app on Unicorn that sometimes writes
// the last session cookie it issued into another user's response. Without
// the proxy clients receive other users' sessions; with it none do, and
// every attempt is a guard_block in the request log.
func TestRackAppWith2021Bug(t *testing.T) {
	direct := startRack(t, "unicorn", true)
	before := bugCount(t, direct)
	res := drive(t, direct, 8, 3000)
	if res.crossings.Load() == 0 || bugCount(t, direct) == before {
		t.Fatalf("without the proxy the bug never reached a client (%d crossings, %d bugs): the test proves nothing",
			res.crossings.Load(), bugCount(t, direct)-before)
	}
	t.Logf("direct: %d requests, %d crossings", res.requests.Load(), res.crossings.Load())

	app := startRack(t, "unicorn", true)
	via, lines := proxyFor(t, app)
	res = drive(t, via, 8, 3000)
	bugs := bugCount(t, app)
	if res.crossings.Load() != 0 {
		t.Fatalf("through the proxy %d crossings", res.crossings.Load())
	}
	blocks := 0
	for _, l := range lines() {
		if l.Event == reqlog.EventGuardBlock {
			blocks++
			if l.SidOut == "" || l.UidOut == l.UidView {
				t.Errorf("guard_block line without the evidence: %+v", l)
			}
		}
	}
	if bugs == 0 || blocks != bugs {
		t.Fatalf("the app fired its bug %d times, the log has %d guard_blocks", bugs, blocks)
	}
	// cordon scan finds every attempt from the log alone.
	var raw strings.Builder
	for _, l := range lines() {
		raw.Write(reqlog.AppendJSON(nil, &l))
	}
	rep, err := forensics.Scan(context.Background(), forensics.DefaultConfig(), []forensics.Source{{Name: "requests.log", R: strings.NewReader(raw.String())}})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range rep.Findings {
		if f.Rule == forensics.RuleGuardEvent {
			for _, id := range f.Requests {
				found[id] = true
			}
		}
	}
	for _, l := range lines() {
		if l.Event == reqlog.EventGuardBlock && !found[l.Req] {
			t.Fatalf("cordon scan did not surface guard_block request %s", l.Req)
		}
	}
	t.Logf("via proxy: %d requests, %d bug firings, %d blocked, 0 crossings", res.requests.Load(), bugs, blocks)
}

// TestRackAppWithoutBugHasNoFalsePositives sends at least 100,000 requests
// with logins, logouts and renewals through the proxy to the same app
// without its bug (on Puma, whose keep-alive makes the long run quick): not
// one block or device mismatch.
func TestRackAppWithoutBugHasNoFalsePositives(t *testing.T) {
	app := startRack(t, "puma", false)
	via, lines := proxyFor(t, app)
	res := drive(t, via, 16, 100_000)
	if res.crossings.Load() != 0 || res.blocked.Load() != 0 {
		t.Fatalf("crossings %d, blocked %d on a correct app", res.crossings.Load(), res.blocked.Load())
	}
	ls := lines()
	if len(ls) < 100_000 {
		t.Fatalf("%d log lines, want ≥ 100000", len(ls))
	}
	for _, l := range ls {
		if l.Event == reqlog.EventGuardBlock || l.Event == reqlog.EventDeviceMismatch {
			t.Fatalf("false positive: %+v", l)
		}
	}
	t.Logf("%d requests, no false positive", len(ls))
}
