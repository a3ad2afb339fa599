package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/dbsc/dbsctest"
)

// cordon demo -dbsc offers registration on /api/signup and /api/login; a
// browser that registers is served with its bound cookie and refreshes it;
// its session cookie alone, copied elsewhere, is served as nobody; log-out
// ends the binding.
func TestDemoDBSC(t *testing.T) {
	dir := t.TempDir()
	d := startDemo(t, "-dbsc", "-db", filepath.Join(dir, "demo.db"), "-log", filepath.Join(dir, "requests.log"))
	b := &dbsctest.Browser{HTTP: newJarClient(t), Key: dbsctest.NewES256()}
	body := `{"user":"dora","password":"` + demoPassword + `"}`
	for _, path := range []string{"api/signup", "api/login"} {
		res, err := b.HTTP.Post(d.url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode/100 != 2 || res.Header.Get(dbsc.HeaderRegistration) == "" {
			t.Fatalf("%s: %d, registration offered: %q", path, res.StatusCode, res.Header.Get(dbsc.HeaderRegistration))
		}
		if st, err := b.Register(res); st != 200 || err != nil {
			t.Fatalf("register after %s: %d %v", path, st, err)
		}
		if got := whoami(t, b.HTTP, d.url); got != "dora" {
			t.Fatalf("whoami after registering: %q", got)
		}
	}
	if st, cookies, err := b.Refresh(); st != 200 || len(cookies) != 1 || err != nil {
		t.Fatalf("refresh: %d %q %v", st, cookies, err)
	}
	if got := whoami(t, b.HTTP, d.url); got != "dora" {
		t.Fatalf("whoami after refreshing: %q", got)
	}

	// The session cookie without the bound cookie: nobody.
	u, _ := url.Parse(d.url)
	jar, _ := cookiejar.New(nil)
	for _, c := range b.HTTP.Jar.Cookies(u) {
		if !strings.Contains(c.Name, "bound") {
			jar.SetCookies(u, []*http.Cookie{c})
		}
	}
	if got := whoami(t, &http.Client{Jar: jar}, d.url); got != "" {
		t.Errorf("the session cookie alone is served as %q", got)
	}

	if st, _ := postJSON(t, b.HTTP, d.url+"api/logout", "{}"); st/100 != 2 {
		t.Fatalf("logout: %d", st)
	}
	if st, cookies, _ := b.Refresh(); st != http.StatusUnauthorized || len(cookies) != 0 {
		t.Errorf("refresh after log-out: %d %q, want 401 and no cookie", st, cookies)
	}
	d.stop(t)
	log := readLog(t, filepath.Join(dir, "requests.log"))
	seen := map[string]int{}
	for _, l := range log {
		seen[l.Event]++
		if l.Event == "dbsc_unbound" && (l.SidIn == "" || l.UidIn != "") {
			t.Errorf("an unbound use names the session and no principal: sid_in %q uid_in %q", l.SidIn, l.UidIn)
		}
	}
	if seen["dbsc_register"] != 2 || seen["dbsc_refresh"] != 1 || seen["dbsc_unbound"] != 1 {
		t.Errorf("request-log events: %v", seen)
	}
}
