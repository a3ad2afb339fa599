// Package http measures validated requests per second through the real
// `cordon demo` program: the cordon binary is built from this checkout,
// one `cordon demo` process is started per configuration on a loopback
// port, a user signs up, and the benchmark sends GET /api/whoami with that
// user's session cookie over keep-alive connections, checking every
// answer. It compares the session stores (SQLite, PostgreSQL, Redis) and,
// for the shared stores, the in-process cache (-cache-bound 1s: after the
// first request every look-up is a hit) against no cache (-cache-bound 0:
// every look-up is a store round trip, what a miss costs).
//
// PostgreSQL and Redis come from CORDON_TEST_POSTGRES and CORDON_TEST_REDIS,
// which ./test.sh exports; see RESULTS.md for the command and numbers.
package http

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildCordon builds the cordon binary from this checkout once per test
// binary.
var buildCordon = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "cordon-bench-http-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cordon")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cordon")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/cordon: %v\n%s", err, out)
	}
	return bin, nil
})

// buildBare builds the plain net/http baseline (./bare) once per test
// binary.
var buildBare = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "cordon-bench-bare-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bare")
	if out, err := exec.Command("go", "build", "-o", bin, "./bare").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./bare: %v\n%s", err, out)
	}
	return bin, nil
})

// node is one running `cordon demo` process with a signed-in user.
type node struct {
	url, cookie string
}

// serve runs cmd until owner ends and returns the URL it prints that it
// serves on.
func serve(owner *testing.B, cmd *exec.Cmd) (string, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	owner.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "cordon demo: serving on "); ok {
				urls <- u
			}
		}
		close(urls)
	}()
	select {
	case u, ok := <-urls:
		if !ok {
			cmd.Wait()
			return "", fmt.Errorf("%s exited before serving:\n%s", cmd.Path, stderr.String())
		}
		return u, nil
	case <-time.After(time.Minute):
		return "", fmt.Errorf("%s did not start within a minute", cmd.Path)
	}
}

// startBare starts the plain net/http baseline, which takes any cookie.
func startBare(owner *testing.B) (*node, error) {
	bin, err := buildBare()
	if err != nil {
		return nil, err
	}
	u, err := serve(owner, exec.Command(bin))
	return &node{url: u, cookie: "anything"}, err
}

// startNode starts `cordon demo` with args on a free loopback port, signs
// up a user and returns its session cookie. The process is stopped, and
// its files removed, when owner ends.
func startNode(owner *testing.B, args ...string) (*node, error) {
	bin, err := buildCordon()
	if err != nil {
		return nil, err
	}
	dir := owner.TempDir()
	u, err := serve(owner, exec.Command(bin, append([]string{"demo", "-addr", "127.0.0.1:0",
		"-db", filepath.Join(dir, "users.db"), "-log", filepath.Join(dir, "requests.log"), "-admin", "root"}, args...)...))
	if err != nil {
		return nil, err
	}
	n := &node{url: u}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	res, err := c.Post(n.url+"api/signup", "application/json", strings.NewReader(`{"user":"bench","password":"a long enough password 123"}`))
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("signup: %d %s", res.StatusCode, body)
	}
	nu, _ := url.Parse(n.url)
	for _, ck := range jar.Cookies(nu) {
		if ck.Name == "session" {
			n.cookie = ck.Value
		}
	}
	if n.cookie == "" {
		return nil, fmt.Errorf("signup set no session cookie")
	}
	return n, nil
}

func serviceURL(b *testing.B, env string) string {
	b.Helper()
	v := os.Getenv(env)
	if v == "" {
		b.Fatalf("%s is not set: run with ./test.sh's servers (see RESULTS.md), or export it", env)
	}
	return v
}

func withParam(b *testing.B, raw, k, v string) string {
	b.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		b.Fatalf("bad service URL: %v", err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// BenchmarkWhoami is validated requests per second on one node, per store
// and cache mode, side by side in one run.
func BenchmarkWhoami(b *testing.B) {
	var r [6]byte
	rand.Read(r[:])
	ns := "benchhttp_" + hex.EncodeToString(r[:])
	cases := []struct {
		name string
		args func(b *testing.B) []string
	}{
		{"bare net/http", nil}, // no args: the plain net/http baseline (startBare)
		{"demo defaults", func(*testing.B) []string { return nil }},
		{"store=sqlite/cache=hit", func(*testing.B) []string { return []string{"-cache-bound", "1s"} }},
		{"store=sqlite/cache=miss", func(*testing.B) []string { return []string{"-cache-bound", "0"} }},
		{"store=postgres/cache=hit", func(b *testing.B) []string {
			return []string{"-store", withParam(b, serviceURL(b, "CORDON_TEST_POSTGRES"), "schema", ns+"_hit"), "-cache-bound", "1s"}
		}},
		{"store=postgres/cache=miss", func(b *testing.B) []string {
			return []string{"-store", withParam(b, serviceURL(b, "CORDON_TEST_POSTGRES"), "schema", ns+"_miss"), "-cache-bound", "0"}
		}},
		{"store=redis/cache=hit", func(b *testing.B) []string {
			return []string{"-store", withParam(b, serviceURL(b, "CORDON_TEST_REDIS"), "prefix", ns+"_hit:"), "-cache-bound", "1s"}
		}},
		{"store=redis/cache=miss", func(b *testing.B) []string {
			return []string{"-store", withParam(b, serviceURL(b, "CORDON_TEST_REDIS"), "prefix", ns+"_miss:"), "-cache-bound", "0"}
		}},
	}
	for _, tc := range cases {
		var n *node // one process per case, kept across the b.N rounds
		parent := b
		b.Run(tc.name, func(b *testing.B) {
			if n == nil {
				// Owned by the parent: a sub-benchmark's cleanups run
				// after each of its rounds.
				var err error
				if tc.args == nil {
					n, err = startBare(parent)
				} else {
					n, err = startNode(parent, tc.args(b)...)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			want := []byte(`"user":"bench"`)
			b.SetParallelism(4) // 4×GOMAXPROCS clients keep the node busy
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 512)
				for pb.Next() {
					req, _ := http.NewRequest("GET", n.url+"api/whoami", nil)
					req.Header.Set("Cookie", "session="+n.cookie)
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					buf = buf[:0]
					w := bytes.NewBuffer(buf)
					_, err = io.Copy(w, res.Body)
					res.Body.Close()
					if err != nil || res.StatusCode != 200 || !bytes.Contains(w.Bytes(), want) {
						b.Errorf("whoami: %d %q %v", res.StatusCode, w.Bytes(), err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
