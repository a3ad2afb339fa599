package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faultServer is a database server of the fault test's own, which it may
// kill; the shared servers that ./test.sh starts are never touched.
type faultServer struct {
	url   string
	kill  func()
	start func()
}

func faultFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// faultPostgres initialises and starts a PostgreSQL of the test's own from
// CORDON_TEST_PG_BIN (as the postgres user when the test runs as root,
// which PostgreSQL requires). kill is an immediate shutdown: no
// checkpoint, recovery from the WAL on the next start, as after a crash.
func faultPostgres(t *testing.T) *faultServer {
	t.Helper()
	bin := os.Getenv("CORDON_TEST_PG_BIN")
	if bin == "" {
		t.Fatal("CORDON_TEST_PG_BIN is not set: run the tests with ./test.sh, which installs PostgreSQL and exports its bin directory")
	}
	dir, err := os.MkdirTemp("", "cordon-demo-fault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var prefix []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user to run PostgreSQL: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		prefix = []string{"runuser", "-u", "postgres", "--"}
	}
	command := func(args ...string) *exec.Cmd {
		args = append(append([]string(nil), prefix...), args...)
		return exec.Command(args[0], args[1:]...)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := command(args...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	port := faultFreePort(t)
	run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync")
	s := &faultServer{url: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", port)}
	s.start = func() {
		run(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w",
			"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", port, dir), "start")
	}
	s.kill = func() { run(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop") }
	s.start()
	t.Cleanup(func() { command(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "stop").Run() })
	return s
}

// faultRedis starts a redis-server of the test's own with an append-only
// file synced on every write; kill is SIGKILL.
func faultRedis(t *testing.T) *faultServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found: run the tests with ./test.sh, which installs it")
	}
	dir := t.TempDir()
	port := faultFreePort(t)
	var (
		mu  sync.Mutex
		cmd *exec.Cmd
	)
	s := &faultServer{url: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	s.start = func() {
		t.Helper()
		c := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--appendonly", "yes", "--appendfsync", "always", "--save", "")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		cmd = c
		mu.Unlock()
		for i := 0; ; i++ {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				conn.Close()
				break
			}
			if i == 250 {
				t.Fatal("private redis-server did not start")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	s.kill = func() {
		mu.Lock()
		c := cmd
		mu.Unlock()
		if c != nil && c.ProcessState == nil {
			c.Process.Signal(syscall.SIGKILL)
			c.Wait()
		}
	}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// faultResult is one /api/whoami answer seen by a load worker.
type faultResult struct {
	started time.Time
	took    time.Duration
	status  int    // 0: the request failed (transport error or client timeout)
	user    string // "" for {"user":null}
	cleared bool   // the response told the browser to drop the session cookie
	err     string
}

// faultClient is one signed-in user's browser: a fixed session cookie.
type faultClient struct {
	user, cookie string
}

func (c faultClient) whoami(hc *http.Client, base string) faultResult {
	r := faultResult{started: time.Now()}
	req, _ := http.NewRequest("GET", base+"api/whoami", nil)
	req.Header.Set("Cookie", "session="+c.cookie)
	res, err := hc.Do(req)
	r.took = time.Since(r.started)
	if err != nil {
		r.err = err.Error()
		return r
	}
	defer res.Body.Close()
	r.status = res.StatusCode
	for _, ck := range res.Cookies() {
		if ck.Name == "session" && (ck.MaxAge < 0 || ck.Value == "") {
			r.cleared = true
		}
	}
	var b struct {
		User *string `json:"user"`
	}
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(&b); err != nil {
			r.err = "bad body: " + err.Error()
		} else if b.User != nil {
			r.user = *b.User
		}
	}
	return r
}

// TestDemoFaultDatabaseKilled is the fault test of issue 5 through the
// real program: a `cordon demo` (Run, in process, port 0) over a private
// PostgreSQL, then a private Redis, with its session cache at the default
// bound. Clients signed in as distinct users request /api/whoami under
// load; the database server is killed (pg_ctl -m immediate, SIGKILL) for a
// few seconds and restarted. Checked: no response ever names another
// user; no response drops a client's session cookie; every request is
// answered; requests that start more than the cache bound after the kill
// fail closed (the demo's configuration is the session manager's default:
// anonymous, {"user":null}; a 503 would also be closed); after the restart every client is served as itself
// again by the same demo process, and every session committed before the
// outage works.
func TestDemoFaultDatabaseKilled(t *testing.T) {
	const (
		bound     = time.Second
		users     = 4
		outage    = 3 * time.Second
		recoverIn = 20 * time.Second
	)
	for _, tc := range []struct {
		backend string
		server  func(*testing.T) *faultServer
		mode    string // -on-store-error
	}{
		{"postgres", faultPostgres, "anonymous"},
		{"redis", faultRedis, "anonymous"},
		{"postgres", faultPostgres, "unavailable"},
	} {
		t.Run(tc.backend+"/"+tc.mode, func(t *testing.T) {
			srv := tc.server(t)
			dir := t.TempDir()
			d := startDemo(t, "-db", filepath.Join(dir, "users.db"), "-store", srv.url, "-log", filepath.Join(dir, "requests.log"),
				"-admin", "root", "-cache-bound", bound.String(), "-metrics-addr", "127.0.0.1:0", "-on-store-error", tc.mode)
			mu := regexp.MustCompile(`metrics on (http://\S+/metrics)\n`).FindStringSubmatch(d.stdout.String())
			if mu == nil {
				t.Fatalf("no metrics URL printed: %q", d.stdout.String())
			}
			u0, _ := http.NewRequest("GET", d.url, nil)

			// Two sessions per user: the sign-up's and a second log-in's.
			var clients []faultClient
			for i := range users {
				name := fmt.Sprintf("user%d", i)
				for j, path := range []string{"api/signup", "api/login"} {
					c := newJarClient(t)
					code, body := postJSON(t, c, d.url+path, `{"user":"`+name+`","password":"`+demoPassword+`"}`)
					if code != 201 && code != 200 {
						t.Fatalf("%s %s: %d %s", path, name, code, body)
					}
					var tok string
					for _, ck := range c.Jar.Cookies(u0.URL) {
						if ck.Name == "session" {
							tok = ck.Value
						}
					}
					if tok == "" {
						t.Fatalf("%s %s (%d) set no session cookie", path, name, j)
					}
					clients = append(clients, faultClient{user: name, cookie: tok})
				}
			}

			// A request the demo does not answer within 10 s is a failure:
			// failing closed means answering, anonymous or 503.
			hc := &http.Client{Timeout: 10 * time.Second}
			var (
				rmu     sync.Mutex
				results = make([][]faultResult, len(clients))
			)
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Go(func() {
					for ctx.Err() == nil {
						r := c.whoami(hc, d.url)
						rmu.Lock()
						results[i] = append(results[i], r)
						rmu.Unlock()
						time.Sleep(2 * time.Millisecond)
					}
				})
			}
			stopLoad := func() { stop(); wg.Wait() }
			defer stopLoad()

			time.Sleep(time.Second) // load with the server up
			killedAt := time.Now()
			srv.kill()
			time.Sleep(outage)
			// The server may answer before start returns: what starts from
			// here on counts as after the restart.
			restartedAt := time.Now()
			srv.start()
			// Keep the load on until every client has been served as itself
			// again after the restart.
			deadline := restartedAt.Add(recoverIn)
			for {
				back := 0
				rmu.Lock()
				for i := range clients {
					rs := results[i]
					if n := len(rs); n > 0 && rs[n-1].started.After(restartedAt) && rs[n-1].user == clients[i].user {
						back++
					}
				}
				rmu.Unlock()
				if back == len(clients) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%d of %d clients not served as themselves %v after the restart", len(clients)-back, len(clients), recoverIn)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			recovered := time.Since(restartedAt)
			stopLoad()

			var before, during, closedDuring, after, total int
			var anonymous, unavailable int
			var slowest time.Duration
			for i, c := range clients {
				for _, r := range results[i] {
					total++
					if r.user != "" && r.user != c.user {
						t.Errorf("a request with %s's session was served as %q", c.user, r.user)
					}
					if r.status == 0 {
						t.Errorf("a request of %s at %v from the kill got no answer: %s", c.user, r.started.Sub(killedAt), r.err)
					}
					if r.took > slowest {
						slowest = r.took
					}
					if r.cleared {
						t.Errorf("a response at %v dropped %s's session cookie", r.started.Sub(killedAt), c.user)
					}
					switch {
					case r.started.Before(killedAt):
						before++
						if r.status != 200 || r.user != c.user {
							t.Errorf("before the kill %s got status %d user %q %s", c.user, r.status, r.user, r.err)
						}
					case r.started.Before(restartedAt):
						during++
						if r.started.After(killedAt.Add(bound + 200*time.Millisecond)) {
							// Past the cache bound nothing may be answered
							// from memory: anonymous (the default) or 503,
							// as configured.
							switch {
							case r.status == 200 && r.user == "" && tc.mode == "anonymous":
								closedDuring++
								anonymous++
							case r.status == http.StatusServiceUnavailable && tc.mode == "unavailable":
								closedDuring++
								unavailable++
							default:
								t.Errorf("%v after the kill %s got status %d user %q: not failed closed", r.started.Sub(killedAt), c.user, r.status, r.user)
							}
						}
					default:
						after++
						if r.status != 200 && r.status != http.StatusServiceUnavailable {
							t.Errorf("after the restart %s got status %d %s", c.user, r.status, r.err)
						}
					}
				}
			}
			if closedDuring == 0 {
				t.Error("no request failed closed during the outage")
			}
			t.Logf("%s: %d requests (%d before the kill, %d during the %v outage of which %d past the bound failed closed: %d anonymous, %d 503; %d after); every client served as itself %v after the restart; slowest answer %v",
				tc.backend, total, before, during, outage, closedDuring, anonymous, unavailable, after, recovered.Round(time.Millisecond), slowest.Round(time.Millisecond))

			// Every session committed before the outage works, on the same
			// demo process.
			for _, c := range clients {
				if r := c.whoami(hc, d.url); r.status != 200 || r.user != c.user {
					t.Errorf("after recovery %s's session: status %d user %q %s", c.user, r.status, r.user, r.err)
				}
			}
			_, vals := scrape(t, mu[1])
			if vals[`cordon_session_store_errors_total{operation="find"}`] == 0 {
				t.Error("the outage left no store error in the metrics")
			}
			if strings.Contains(d.stderr.String(), "panic") {
				t.Errorf("the demo panicked:\n%s", d.stderr.String())
			}
		})
	}
}
