package main

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// scrape returns the metrics text and the value of each sample line
// "name{labels} value" in it.
func scrape(t *testing.T, u string) (string, map[string]float64) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	vals := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			vals[line[:i]] = v
		}
	}
	return string(b), vals
}

// metricsURL is the address of the metrics the demo printed it serves.
func (d *runningDemo) metricsURL(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`metrics on (http://\S+/metrics)\n`).FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatalf("no metrics URL printed: %q", d.stdout.String())
	}
	return m[1]
}

// metricsText returns the demo's metrics text.
func metricsText(t *testing.T, d *runningDemo) []byte {
	t.Helper()
	text, _ := scrape(t, d.metricsURL(t))
	return []byte(text)
}

// TestDemoMetrics drives `cordon demo -metrics-addr` over HTTP and checks
// that each series the demo can move moves by what happened: sign-up and
// log-in create sessions, log-out, the admin page's three revocations, bad
// cookies by reason, store latency by backend and operation. The events
// the demo has no path to (renew, anonymous sessions, guard blocks, stale
// uses, store errors) are driven over HTTP in package metrics. The names
// pass promlint.
func TestDemoMetrics(t *testing.T) {
	dir := t.TempDir()
	d := startDemo(t, "-db", filepath.Join(dir, "demo.db"), "-log", "-", "-admin", "root", "-metrics-addr", "127.0.0.1:0")
	murl := d.metricsURL(t)
	text, before := scrape(t, murl)
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "cordon_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}

	alice := newJarClient(t)
	if code, body := postJSON(t, alice, d.url+"api/signup", `{"user":"alice","password":"`+demoPassword+`"}`); code != 201 {
		t.Fatalf("signup: %d %s", code, body)
	}
	bob := newJarClient(t)
	if code, body := postJSON(t, bob, d.url+"api/signup", `{"user":"bob","password":"`+demoPassword+`"}`); code != 201 {
		t.Fatalf("signup: %d %s", code, body)
	}
	if code, body := postJSON(t, bob, d.url+"api/logout", `{}`); code != 200 {
		t.Fatalf("logout: %d %s", code, body)
	}
	if code, body := postJSON(t, bob, d.url+"api/login", `{"user":"bob","password":"`+demoPassword+`"}`); code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	if whoami(t, alice, d.url) != "alice" || whoami(t, bob, d.url) != "bob" {
		t.Fatal("whoami after sign-in")
	}
	u, _ := url.Parse(d.url)
	aliceToken := ""
	for _, c := range alice.Jar.Cookies(u) {
		aliceToken = c.Value
	}
	cookieGet := func(v string) {
		req, _ := http.NewRequest("GET", d.url+"api/whoami", nil)
		req.Header.Set("Cookie", "session="+v)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	cookieGet("not-a-token")
	admin := demoAdmin(t, d.url)
	adminPost := func(path string, form url.Values) {
		req, _ := http.NewRequest("POST", d.url+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := admin.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d", path, res.StatusCode)
		}
	}
	adminPost("admin/revoke-session", url.Values{"fp": {store.Fingerprint(aliceToken)}})
	cookieGet(aliceToken) // revoked by fingerprint: the row is gone, unknown
	adminPost("admin/revoke-user", url.Values{"user": {"bob"}, "confirm": {"yes"}})
	adminPost("admin/revoke-user", url.Values{"user": {"carol"}, "confirm": {"yes"}})
	adminPost("admin/revoke-all", url.Values{"confirm": {"yes"}})

	_, after := scrape(t, murl)
	for series, want := range map[string]float64{
		`cordon_sessions_created_total{kind="login"}`:                                                     4, // three sign-ups (the admin's too), one log-in
		`cordon_sessions_created_total{kind="anonymous"}`:                                                 0,
		`cordon_sessions_renewed_total`:                                                                   0,
		`cordon_sessions_logged_out_total`:                                                                1,
		`cordon_revocations_total{kind="session"}`:                                                        1,
		`cordon_revocations_total{kind="principal"}`:                                                      2,
		`cordon_revocations_total{kind="all"}`:                                                            1,
		`cordon_bad_cookies_total{reason="malformed"}`:                                                    1,
		`cordon_bad_cookies_total{reason="unknown"}`:                                                      1,
		`cordon_guard_blocks_total{mode="block"}`:                                                         0,
		`cordon_stale_uses_total`:                                                                         0,
		`cordon_session_store_errors_total{operation="find"}`:                                             0,
		`cordon_store_operation_seconds_count{backend="sqlite",operation="create",result="ok"}`:           4,
		`cordon_store_operation_seconds_count{backend="sqlite",operation="delete",result="ok"}`:           1,
		`cordon_store_operation_seconds_count{backend="sqlite",operation="revoke_principal",result="ok"}`: 2,
		`cordon_store_operation_seconds_count{backend="sqlite",operation="revoke_all",result="ok"}`:       1,
	} {
		got, ok := after[series]
		if !ok {
			t.Errorf("metrics lack %s", series)
			continue
		}
		if d := got - before[series]; d != want {
			t.Errorf("%s moved by %v, want %v", series, d, want)
		}
	}
	// The SQLite store sits behind the cache, which keeps the sessions it
	// creates: the requests' finds are cache hits.
	if after[`cordon_cache_hits_total`] < 2 {
		t.Errorf("%v cache hits counted, want at least 2", after[`cordon_cache_hits_total`])
	}
	if _, ok := after["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	d.stop(t)
	if _, err := http.Get(murl); err == nil {
		t.Fatal("the metrics server still answers after the demo stopped")
	}
}

// TestDemoMetricsSharedStore runs two `cordon demo` nodes over one
// PostgreSQL, then one Redis, each with its cache and metrics, and checks
// over HTTP that node 2's cache series move: a first look-up is a miss, a
// second a hit; a revocation by user and one by fingerprint on node 1
// reach node 2 as notifications with a propagation lag; store latency is
// labelled with the backend.
func TestDemoMetricsSharedStore(t *testing.T) {
	var b [6]byte
	rand.Read(b[:])
	name := "demometrics_" + hex.EncodeToString(b[:])
	metricsRE := regexp.MustCompile(`metrics on (http://\S+/metrics)\n`)
	for _, tc := range []struct{ backend, env, param, value string }{
		{"postgres", "CORDON_TEST_POSTGRES", "schema", name},
		{"redis", "CORDON_TEST_REDIS", "prefix", name + ":"},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			storeURL := withQuery(t, testServiceURL(t, tc.env), tc.param, tc.value)
			dir := t.TempDir()
			args := []string{"-db", filepath.Join(dir, "users.db"), "-store", storeURL, "-log", "-",
				"-admin", "root", "-cache-bound", "1s", "-metrics-addr", "127.0.0.1:0"}
			n1 := startDemo(t, args...)
			n2 := startDemo(t, args...)
			m2 := metricsRE.FindStringSubmatch(n2.stdout.String())
			if m2 == nil {
				t.Fatalf("no metrics URL printed: %q", n2.stdout.String())
			}
			c := newJarClient(t)
			if code, body := postJSON(t, c, n1.url+"api/signup", `{"user":"alice","password":"`+demoPassword+`"}`); code != 201 {
				t.Fatalf("signup: %d %s", code, body)
			}
			_, v0 := scrape(t, m2[1])
			if whoami(t, c, n2.url) != "alice" {
				t.Fatal("node 2 does not know the session")
			}
			_, v1 := scrape(t, m2[1])
			if d := v1["cordon_cache_misses_total"] - v0["cordon_cache_misses_total"]; d != 1 {
				t.Errorf("node 2's first look-up: cache misses moved by %v, want 1", d)
			}
			// The next look-up is a hit, unless the entry's bound (1 s) ran
			// out between the two on a loaded machine: then it is a miss,
			// and one of the following look-ups is the hit.
			hit := false
			for range 5 {
				if whoami(t, c, n2.url) != "alice" {
					t.Fatal("node 2 forgot the session")
				}
				_, v2 := scrape(t, m2[1])
				if v2["cordon_cache_hits_total"]-v1["cordon_cache_hits_total"] >= 1 {
					hit = true
					break
				}
			}
			if !hit {
				t.Error("node 2 answered five look-ups of a cached session without a cache hit")
			}
			if v1[`cordon_store_operation_seconds_count{backend="`+tc.backend+`",operation="find",result="ok"}`] < 1 {
				t.Errorf("node 2 timed no %s find", tc.backend)
			}

			admin := demoAdmin(t, n1.url)
			revoke := func(path string, form url.Values) {
				req, _ := http.NewRequest("POST", n1.url+path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				res, err := admin.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != http.StatusSeeOther {
					t.Fatalf("%s: %d", path, res.StatusCode)
				}
			}
			// waitFor polls node 2's metrics until series reaches want.
			waitFor := func(series string, want float64) {
				t.Helper()
				deadline := time.Now().Add(5 * time.Second)
				for {
					_, v := scrape(t, m2[1])
					if v[series] >= want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("node 2: %s = %v after 5 s, want %v", series, v[series], want)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			revoke("admin/revoke-user", url.Values{"user": {"bob"}, "confirm": {"yes"}})
			waitFor(`cordon_revocation_notifications_total{kind="principal"}`, 1)
			waitFor(`cordon_revocation_propagation_seconds_count{kind="principal"}`, 1)

			u, _ := url.Parse(n1.url)
			var tok string
			for _, ck := range c.Jar.Cookies(u) {
				tok = ck.Value
			}
			revoke("admin/revoke-session", url.Values{"fp": {store.Fingerprint(tok)}})
			waitFor(`cordon_revocation_notifications_total{kind="sessions"}`, 1)
			waitFor(`cordon_revocation_propagation_seconds_count{kind="sessions"}`, 1)
			if who := whoami(t, c, n2.url); who != "" {
				t.Fatalf("node 2 still serves the revoked session as %q", who)
			}
			_, v2 := scrape(t, m2[1])
			if s := v2[`cordon_revocation_propagation_seconds_sum{kind="sessions"}`]; s <= 0 {
				t.Errorf("propagation lag %v s, want a positive time", s)
			}
		})
	}
}
