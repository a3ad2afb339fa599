package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
)

func TestDemoStoreURLSQLite(t *testing.T) {
	dir := t.TempDir()
	sessions := filepath.Join(dir, "sessions.db")
	args := []string{"-db", filepath.Join(dir, "users.db"), "-store", "sqlite:" + sessions, "-log", "-", "-admin", "root"}
	d := startDemo(t, args...)
	c := newJarClient(t)
	if code, body := postJSON(t, c, d.url+"api/signup", `{"user":"alice","password":"`+demoPassword+`"}`); code != 201 {
		t.Fatalf("signup: %d %s", code, body)
	}
	d.stop(t)
	if fi, err := os.Stat(sessions); err != nil || fi.Size() == 0 {
		t.Fatalf("no sessions in the -store file: %v", err)
	}
	d = startDemo(t, args...)
	if got := whoami(t, c, d.url); got != "alice" {
		t.Fatalf("whoami after restart with -store sqlite: = %q", got)
	}
}

func TestDemoStoreURLErrors(t *testing.T) {
	env := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
	dir := t.TempDir()
	err := Run(context.Background(), env, []string{"demo", "-addr", "127.0.0.1:0", "-db", filepath.Join(dir, "u.db"), "-log", "-",
		"-store", "mysql://user:secret@localhost/x"})
	if err == nil || !strings.Contains(err.Error(), "unknown store URL scheme") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unknown scheme: %v", err)
	}
	err = Run(context.Background(), env, []string{"demo", "-cache-bound", "-1s"})
	if !errors.Is(err, errUsage) {
		t.Fatalf("negative -cache-bound: %v", err)
	}
}

func testServiceURL(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the tests with ./test.sh, which starts PostgreSQL and Redis", name)
	}
	return v
}

func withQuery(t *testing.T, raw, k, v string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// Two demo nodes share one PostgreSQL or Redis store (and, on one machine,
// one users file): a session made on one is valid on the other, and a
// session revoked on one is refused by the other once the cache bound has
// passed.
func TestDemoSharedStoreTwoNodes(t *testing.T) {
	var b [6]byte
	rand.Read(b[:])
	name := "demo_" + hex.EncodeToString(b[:])
	for _, tc := range []struct{ backend, env, param, value string }{
		{"postgres", "CORDON_TEST_POSTGRES", "schema", name},
		{"redis", "CORDON_TEST_REDIS", "prefix", name + ":"},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			storeURL := withQuery(t, testServiceURL(t, tc.env), tc.param, tc.value)
			dir := t.TempDir()
			args := []string{"-db", filepath.Join(dir, "users.db"), "-store", storeURL, "-log", "-",
				"-admin", "root", "-cache-bound", "200ms", "-metrics-addr", "127.0.0.1:0"}
			n1, n2 := startDemo(t, args...), startDemo(t, args...)
			if strings.Contains(n1.stdout.String(), "secret") {
				t.Fatal("a store password was printed")
			}

			c := newJarClient(t)
			if code, body := postJSON(t, c, n1.url+"api/signup", `{"user":"alice","password":"`+demoPassword+`"}`); code != 201 {
				t.Fatalf("signup on node 1: %d %s", code, body)
			}
			// The cookie jar ignores ports: the same cookie goes to node 2.
			// After the first, node 2 serves it from its cache, unless the
			// cache could not vouch for itself at that moment (a
			// notification in between, or its check of the listener late
			// on a busy machine): ask until a hit shows, for up to 2 s.
			hit := regexp.MustCompile(`cordon_cache_hits_total [1-9]`)
			for deadline := time.Now().Add(2 * time.Second); ; {
				if got := whoami(t, c, n2.url); got != "alice" {
					t.Fatalf("whoami on node 2 = %q", got)
				}
				if hit.Match(metricsText(t, n2)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("node 2 served alice's session only from the store, never from its cache")
				}
				time.Sleep(20 * time.Millisecond)
			}
			u, _ := url.Parse(n1.url)
			var fp string
			for _, ck := range c.Jar.Cookies(u) {
				fp = store.Fingerprint(ck.Value)
			}
			form := url.Values{"fp": {fp}}
			req, _ := http.NewRequest("POST", n1.url+"admin/revoke-session", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := demoAdmin(t, n1.url).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin?done=session&n=1" {
				t.Fatalf("revoke on node 1: %d %s", res.StatusCode, res.Header.Get("Location"))
			}
			if got := whoami(t, c, n1.url); got != "" {
				t.Fatalf("node 1 still serves the revoked session as %q", got)
			}
			// Node 2 refuses it within the bound; poll for ten times as long
			// to stay clear of a busy machine (the bound itself is measured
			// by the cache's own tests).
			deadline := time.Now().Add(2 * time.Second)
			for whoami(t, c, n2.url) != "" {
				if time.Now().After(deadline) {
					t.Fatal("node 2 still serves the session revoked on node 1")
				}
				time.Sleep(20 * time.Millisecond)
			}
			// Node 2's cache served the session from memory and applied the
			// revocation's notification.
			metrics := metricsText(t, n2)
			for _, re := range []string{
				`cordon_cache_hits_total [1-9]`,
				`cordon_revocation_notifications_total\{kind="sessions"\} [1-9]`,
				`cordon_store_operation_seconds_count\{backend="` + tc.backend + `",operation="find",result="ok"\} [1-9]`,
			} {
				if !regexp.MustCompile(re).Match(metrics) {
					t.Errorf("node 2's metrics lack %s", re)
				}
			}
			n1.stop(t)
			n2.stop(t)
		})
	}
}
