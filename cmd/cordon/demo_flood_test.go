package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDemoLoginFlood measures the real program under a log-in flood: 200
// wrong-password log-ins at 50 concurrent connections, while a signed-in
// client asks /api/whoami every 20 ms. It reports the process's peak RSS
// (VmHWM) and the slowest whoami, and fails past 300 MiB or 2 s. It builds
// the binary, so it runs only with CORDON_FLOOD=1:
//
//	CORDON_FLOOD=1 go test ./cmd/cordon -run TestDemoLoginFlood -v
//
// CORDON_FLOOD_BIN=path measures that binary instead (an older build, to
// compare), with CORDON_FLOOD_ARGS added to its flags. In the "spread" case every log-in names another account and
// comes from another loopback address (127.0.0.2, .3, ...), so that no
// throttle applies and only the bound on concurrent hashes holds memory.
func TestDemoLoginFlood(t *testing.T) {
	for _, spread := range []bool{false, true} {
		name := "one-account-one-address"
		if spread {
			name = "spread"
		}
		t.Run(name, func(t *testing.T) { loginFlood(t, spread) })
	}
}

func loginFlood(t *testing.T, spread bool) {
	if os.Getenv("CORDON_FLOOD") == "" {
		t.Skip("set CORDON_FLOOD=1 to run the log-in flood against the real binary")
	}
	dir := t.TempDir()
	bin := os.Getenv("CORDON_FLOOD_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "cordon")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
	}
	args := []string{"demo", "-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "demo.db"), "-log", filepath.Join(dir, "requests.log")}
	args = append(args, strings.Fields(os.Getenv("CORDON_FLOOD_ARGS"))...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	base := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "cordon demo: serving on "); ok {
			base = u
			break
		}
	}
	if base == "" {
		t.Fatal("the demo did not say where it serves")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	rss := func(field string) int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, field+":"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				return n << 10
			}
		}
		return 0
	}

	user := newJarClient(t)
	if code, body := postJSON(t, user, base+"api/signup", `{"user":"alice","password":"`+demoPassword+`"}`); code != http.StatusCreated {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	if whoami(t, user, base) != "alice" {
		t.Fatal("no session")
	}
	before := rss("VmRSS")

	ctx, stop := context.WithCancel(context.Background())
	var slowest atomic.Int64
	var asked atomic.Int64
	whoamiDone := make(chan struct{})
	go func() {
		defer close(whoamiDone)
		for ctx.Err() == nil {
			start := time.Now()
			if got := whoami(t, user, base); got != "alice" {
				t.Errorf("whoami during the flood = %q", got)
				return
			}
			d := time.Since(start)
			asked.Add(1)
			for {
				s := slowest.Load()
				if int64(d) <= s || slowest.CompareAndSwap(s, int64(d)) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	codes := map[int]int{}
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 50}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	start := time.Now()
	for range 50 {
		wg.Go(func() {
			for i := range jobs {
				c, account := hc, "alice"
				if spread {
					d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(2+i%250))}}
					c = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
					account = fmt.Sprintf("user%d", i)
				}
				res, err := c.Post(base+"api/login", "application/json", strings.NewReader(`{"user":"`+account+`","password":"a wrong password, long enough"}`))
				if err != nil {
					t.Error(err)
					continue
				}
				res.Body.Close()
				mu.Lock()
				codes[res.StatusCode]++
				mu.Unlock()
			}
		})
	}
	for i := range 200 {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	flood := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	stop()
	<-whoamiDone
	peak := rss("VmHWM")
	t.Logf("%s: 200 wrong log-ins at 50 connections in %v: answers %v; RSS %.1f MiB before, peak %.1f MiB; %d whoami, slowest %v",
		t.Name(), flood.Round(time.Millisecond), codes, float64(before)/(1<<20), float64(peak)/(1<<20), asked.Load(), time.Duration(slowest.Load()).Round(time.Millisecond))
	if peak > 300<<20 {
		t.Errorf("peak RSS %.1f MiB, bound 300 MiB", float64(peak)/(1<<20))
	}
	if d := time.Duration(slowest.Load()); d > 2*time.Second {
		t.Errorf("slowest whoami %v, bound 2 s", d)
	}
}
