package main

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDemoMetrics(t *testing.T) {
	dir := t.TempDir()
	d := startDemo(t, "-db", filepath.Join(dir, "demo.db"), "-log", "-", "-admin-password", "pw", "-metrics-addr", "127.0.0.1:0")
	m := regexp.MustCompile(`metrics on (http://\S+/metrics)\n`).FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatalf("no metrics URL printed: %q", d.stdout.String())
	}
	c := newJarClient(t)
	if code, body := postJSON(t, c, d.url+"api/signup", `{"user":"alice","password":"`+demoPassword+`"}`); code != 201 {
		t.Fatalf("signup: %d %s", code, body)
	}
	whoami(t, c, d.url)
	req, _ := http.NewRequest("GET", d.url+"api/whoami", nil)
	req.Header.Set("Cookie", "session=not-a-token")
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}

	res, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	body := string(b)
	for _, want := range []string{
		`cordon_bad_cookies_total{reason="malformed"} 1`,
		`cordon_store_operation_seconds_count{backend="sqlite",operation="create",result="ok"} 1`,
		`cordon_store_operation_seconds_count{backend="sqlite",operation="find",result="ok"}`,
		`cordon_guard_blocks_total 0`,
		`cordon_stale_uses_total 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
	d.stop(t)
	if _, err := http.Get(m[1]); err == nil {
		t.Fatal("the metrics server still answers after the demo stopped")
	}
}
