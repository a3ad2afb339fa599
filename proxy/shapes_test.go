package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestSetCookieShapesAreCheckedStrictly: the proxy reads the app's
// Set-Cookie lines as the session guard does (internal/setcookie): another
// device's session leaves in no shape a client might read, and only a
// deletion no browser clock can mistake passes unchecked.
func TestSetCookieShapesAreCheckedStrictly(t *testing.T) {
	app := newGoApp()
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/raw" {
			w.Header().Add("Set-Cookie", r.URL.Query().Get("line"))
			w.Write([]byte("ok"))
			return
		}
		app.ServeHTTP(w, r)
	})
	yesterday := time.Now().Add(-24 * time.Hour).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		line   string // TOK stands for bob's session
		status int
		detail string
	}{
		{"x=1, sid=TOK; Path=/", 500, "smuggled"},
		{"x=1; Path=/; sid=TOK", 500, "smuggled"},
		{"x=sid=TOK", 500, "smuggled"},
		{"sid=; sid=TOK", 500, "smuggled"},
		{"=sid=TOK; Path=/", 500, "foreign_device"},
		{"SID=TOK; Path=/", 500, "foreign_device"},
		{"sid=TOK; Expires=" + yesterday, 500, "foreign_device"},
		{"sid=TOK; Expires=Wednesday, 01-Jan-69 00:00:00 GMT", 500, "foreign_device"},
		{"sid=TOK; Expires=Mon, 01 Jan 1500 00:00:00 GMT", 500, "foreign_device"},
		{"sid=TOK; Max-Age=\u00a00", 500, "foreign_device"},
		{"sid=TOK; Max-Age=0", 200, ""},
		{"sid=TOK; Expires=Thu, 01 Jan 1970 00:00:00 GMT", 200, ""},
		{"x=1; Path=/", 200, ""},
	} {
		t.Run(tc.line, func(t *testing.T) {
			f := newFixture(t, up, Options{})
			bob := f.browser()
			f.get(bob, "/login?u=bob")
			tok := f.cookie(bob, "sid")
			alice := f.browser()
			resp, _ := f.get(alice, "/raw?line="+url.QueryEscape(strings.ReplaceAll(tc.line, "TOK", tok)))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			for _, l := range resp.Header.Values("Set-Cookie") {
				if strings.Contains(l, tok) && tc.status != 200 {
					t.Fatalf("bob's session left in %q", l)
				}
			}
			evs := f.events("guard_block")
			if tc.detail == "" {
				if len(evs) != 0 {
					t.Fatalf("guard_block lines %+v", evs)
				}
				return
			}
			if len(evs) != 1 || evs[0].Detail != tc.detail {
				t.Fatalf("guard_block lines %+v, want one %q", evs, tc.detail)
			}
		})
	}
}

// TestSmuggledLineInReportMode: report mode lets the line pass and logs it.
func TestSmuggledLineInReportMode(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "x=1, sid=T")
	}), Options{Mode: Report})
	resp, _ := f.get(f.browser(), "/")
	if resp.StatusCode != 200 || !strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), "\n"), "x=1, sid=T") {
		t.Fatalf("status %d, lines %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if evs := f.events("guard_block"); len(evs) != 1 || evs[0].Detail != "report:smuggled" {
		t.Fatalf("guard_block lines %+v", evs)
	}
}
