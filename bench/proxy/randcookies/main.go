// Command randcookies measures what requests with random session cookies
// cost `cordon proxy` in memory: it sends -n requests, each with a fresh
// random session value (and no device cookie), at -c connections, and
// prints the proxy's resident set size (VmRSS of -pid) after every -every
// requests.
//
//	randcookies -url http://127.0.0.1:8081/ -pid PID -n 600000 -every 100000
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}

func main() {
	u := flag.String("url", "http://127.0.0.1:8081/", "the proxy's URL")
	pid := flag.Int("pid", 0, "the proxy's process id")
	n := flag.Int("n", 600_000, "requests")
	every := flag.Int("every", 100_000, "print the RSS after this many requests")
	conns := flag.Int("c", 16, "connections")
	cookie := flag.String("session-cookie", "sid", "the app's session cookie")
	flag.Parse()
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, DisableCompression: true}
	client := &http.Client{Transport: tr}
	var sent, failed atomic.Int64
	fmt.Printf("requests 0: VmRSS %s\n", rss(*pid))
	start := time.Now()
	for done := 0; done < *n; done += *every {
		var wg sync.WaitGroup
		for range *conns {
			wg.Go(func() {
				var b [16]byte
				for sent.Add(1) <= int64(done+*every) {
					rand.Read(b[:])
					req, _ := http.NewRequest("GET", *u, nil)
					req.Header.Set("Cookie", *cookie+"="+hex.EncodeToString(b[:]))
					resp, err := client.Do(req)
					if err != nil {
						failed.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				sent.Add(-1)
			})
		}
		wg.Wait()
		fmt.Printf("requests %d: VmRSS %s (%.0f s, %d failed)\n", done+*every, rss(*pid), time.Since(start).Seconds(), failed.Load())
	}
}
