package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/store"
)

// app is the handler most tests serve.
func app() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := From(r).Login(r.FormValue("u")); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		p, err := From(r).Principal()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, p)
	})
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		if err := From(r).Put(r.FormValue("k"), r.FormValue("v")); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		v, err := From(r).GetString(r.FormValue("k"))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, v)
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := From(r).Logout(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		if err := From(r).Renew(); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, "ok")
	})
	return mux
}

func TestLoginWhoamiLogout(t *testing.T) {
	f := newFixture(t, app(), Options{})
	if body, _ := f.get(f.c, "/whoami"); body != "" {
		t.Fatalf("anonymous whoami = %q", body)
	}
	body, resp := f.get(f.c, "/login?u=alice")
	if body != "ok" {
		t.Fatalf("login: %q", body)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("login response Cache-Control = %q, want no-store", got)
	}
	if got := resp.Header.Values("Vary"); !reflect.DeepEqual(got, []string{"Cookie"}) {
		t.Errorf("login response Vary = %q, want Cookie", got)
	}
	// Plain HTTP on loopback: the development name, no Secure.
	sc := resp.Header.Get("Set-Cookie")
	if !strings.HasPrefix(sc, "session=") || strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") ||
		!strings.Contains(sc, "SameSite=Lax") || !strings.Contains(sc, "Path=/") || strings.Contains(sc, "Domain") {
		t.Errorf("login Set-Cookie = %q", sc)
	}
	tok := f.cookie(f.c)
	if checkToken(tok) != "" {
		t.Fatalf("issued token %q is not of the token form", tok)
	}
	if body, _ := f.get(f.c, "/whoami"); body != "alice" {
		t.Fatalf("whoami after login = %q", body)
	}
	// The store holds the hash, never the token.
	if _, err := f.st.Find(context.Background(), store.HashToken(tok)); err != nil {
		t.Fatalf("store has no session for the cookie: %v", err)
	}
	if body, resp := f.get(f.c, "/logout"); body != "ok" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("logout: %q %v", body, resp.Header)
	}
	if _, err := f.st.Find(context.Background(), store.HashToken(tok)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session still stored after logout: %v", err)
	}
	if f.cookie(f.c) != "" {
		t.Fatal("cookie not deleted by logout")
	}
	if body, _ := f.get(f.c, "/whoami"); body != "" {
		t.Fatalf("whoami after logout = %q", body)
	}
	// A replay of the old cookie is refused.
	req, _ := http.NewRequest("GET", f.srv.URL+"/whoami", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: tok})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "" {
		t.Fatalf("old cookie after logout authenticates as %q", b)
	}
}

// TestDevModeIsExplicit: the cookie's form is the manager's option, never
// inferred from a request. Without Dev a plain-HTTP request on loopback
// (what a TLS-terminating proxy on the same machine sends) gets the secure
// cookie, and the manager warns once that the browser will not send it
// back; with Dev the cookie loses Secure and the __Host- prefix.
func TestDevModeIsExplicit(t *testing.T) {
	var logBuf safeBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))
	clk := newClock()
	m := New(newMemStore(t, clk.Now), Options{Now: clk.Now, Logger: logger})
	defer m.Close()
	srv := httptest.NewServer(m.Middleware(app()))
	defer srv.Close()
	for range 3 {
		resp, err := http.Get(srv.URL + "/login?u=bob")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		sc := resp.Header.Get("Set-Cookie")
		if !strings.HasPrefix(sc, "__Host-session=") || !strings.Contains(sc, "Secure") {
			t.Fatalf("plain HTTP on loopback without Dev: Set-Cookie = %q, want __Host-session with Secure", sc)
		}
	}
	if n := strings.Count(logBuf.String(), "will not send it back"); n != 1 {
		t.Fatalf("%d plain-HTTP warnings, want exactly 1:\n%s", n, logBuf.String())
	}

	// A proxy that says the client used HTTPS: no warning.
	var quietBuf safeBuffer
	m2 := New(newMemStore(t, clk.Now), Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&quietBuf, nil))})
	defer m2.Close()
	req := httptest.NewRequest("GET", "http://127.0.0.1/login?u=bob", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	m2.Middleware(app()).ServeHTTP(httptest.NewRecorder(), req)
	if strings.Contains(quietBuf.String(), "will not send it back") {
		t.Fatalf("warned behind a proxy that reports HTTPS:\n%s", quietBuf.String())
	}

	dev := New(newMemStore(t, clk.Now), Options{Now: clk.Now, Logger: quiet, Dev: true})
	defer dev.Close()
	for _, target := range []string{"http://127.0.0.1/login?u=bob", "https://example.com/login?u=bob"} {
		rec := httptest.NewRecorder()
		dev.Middleware(app()).ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if sc := rec.Header().Get("Set-Cookie"); !strings.HasPrefix(sc, "session=") || strings.Contains(sc, "Secure") {
			t.Fatalf("Dev, %s: Set-Cookie = %q, want session= without Secure", target, sc)
		}
	}
}

func TestLoginIssuesNewTokenAndDestroysOld(t *testing.T) {
	f := newFixture(t, app(), Options{})
	f.get(f.c, "/put?k=cart&v=3+apples")
	anon := f.cookie(f.c)
	if anon == "" {
		t.Fatal("Put on an anonymous request set no cookie")
	}
	f.get(f.c, "/login?u=alice")
	authed := f.cookie(f.c)
	if authed == anon || authed == "" {
		t.Fatalf("login kept the token")
	}
	if _, err := f.st.Find(context.Background(), store.HashToken(anon)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pre-login session still live: %v", err)
	}
	if body, _ := f.get(f.c, "/get?k=cart"); body != "3 apples" {
		t.Fatalf("anonymous values did not carry over: %q", body)
	}
	if len(f.ev.named(EventCreate)) != 1 || len(f.ev.named(reqlog.EventLogin)) != 1 {
		t.Errorf("events: create %d, login %d; want 1 each", len(f.ev.named(EventCreate)), len(f.ev.named(reqlog.EventLogin)))
	}
	// Logging in as someone else starts clean.
	f.get(f.c, "/login?u=mallory")
	if body, _ := f.get(f.c, "/get?k=cart"); body != "" {
		t.Fatalf("alice's values carried over to mallory: %q", body)
	}
}

func TestRenewRotatesKeepingData(t *testing.T) {
	f := newFixture(t, app(), Options{})
	f.get(f.c, "/login?u=alice")
	f.get(f.c, "/put?k=theme&v=dark")
	before := f.cookie(f.c)
	f.get(f.c, "/renew")
	after := f.cookie(f.c)
	if after == before {
		t.Fatal("renew kept the token")
	}
	if body, _ := f.get(f.c, "/get?k=theme"); body != "dark" {
		t.Fatalf("renew lost data: %q", body)
	}
	if body, _ := f.get(f.c, "/whoami"); body != "alice" {
		t.Fatalf("renew lost principal: %q", body)
	}
	if _, err := f.st.Find(context.Background(), store.HashToken(before)); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("old token still live after renew")
	}
	if evs := f.ev.named(reqlog.EventRenew); len(evs) != 1 || evs[0].Principal != "alice" || evs[0].Fingerprint != store.Fingerprint(after) {
		t.Fatalf("renew events %+v", evs)
	}
}

func TestValuesRoundTripThroughStore(t *testing.T) {
	when := time.Date(2021, 3, 2, 17, 4, 5, 123456789, time.FixedZone("X", 3600))
	in := map[string]any{
		"s": "text", "b": true, "i": 42, "i8": int8(-8), "u": uint32(7), "f": 1.5, "f32": float32(0.25),
		"t": when, "bytes": []byte{0, 1, 2}, "strs": []string{"a", "b"},
		"list":   []any{"x", 1, false, []any{2.5}},
		"map":    map[string]any{"k": "v", "n": map[string]any{"deep": int64(1)}},
		"smap":   map[string]string{"a": "b"},
		"nothin": nil,
	}
	want := map[string]any{
		"s": "text", "b": true, "i": int64(42), "i8": int64(-8), "u": uint64(7), "f": 1.5, "f32": 0.25,
		"t": when, "bytes": []byte{0, 1, 2}, "strs": []string{"a", "b"},
		"list":   []any{"x", int64(1), false, []any{2.5}},
		"map":    map[string]any{"k": "v", "n": map[string]any{"deep": int64(1)}},
		"smap":   map[string]any{"a": "b"},
		"nothin": nil,
	}
	var got map[string]any
	var putErr error
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		for k, v := range in {
			if err := s.Put(k, v); err != nil {
				t.Errorf("Put %s: %v", k, err)
			}
		}
		putErr = s.Put("bad", struct{ X int }{1})
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		got = map[string]any{}
		keys, _ := s.Keys()
		for _, k := range keys {
			v, _, err := s.Get(k)
			if err != nil {
				t.Errorf("Get %s: %v", k, err)
			}
			got[k] = v
		}
	})
	f := newFixture(t, mux, Options{})
	f.get(f.c, "/put")
	f.get(f.c, "/get")
	if !errors.Is(putErr, ErrUnsupportedType) {
		t.Errorf("Put of a struct = %v, want ErrUnsupportedType", putErr)
	}
	for k, w := range want {
		g := got[k]
		if wt, ok := w.(time.Time); ok {
			gt, ok := g.(time.Time)
			_, wo := wt.Zone()
			_, gofs := gt.Zone()
			if !ok || !gt.Equal(wt) || wo != gofs {
				t.Errorf("%s = %v, want %v", k, g, w)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d keys, want %d: %v", len(got), len(want), got)
	}
}

func TestGetReturnsCopies(t *testing.T) {
	var second []string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		orig := []string{"a"}
		_ = s.Put("l", orig)
		orig[0] = "changed after put"
		v, _, _ := s.Get("l")
		v.([]string)[0] = "changed after get"
		v, _, _ = s.Get("l")
		second = v.([]string)
	})
	f := newFixture(t, mux, Options{})
	f.get(f.c, "/")
	if second[0] != "a" {
		t.Fatalf("stored value aliased the caller's: %q", second[0])
	}
}

func TestConcurrentRequestsKeepEachOthersWrites(t *testing.T) {
	// Each request reads the session, waits so that all are in flight
	// together, and puts its own key: with last-writer-wins on the whole
	// session (as scs does) all but one key would be lost.
	const n = 16
	gate := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(n)
	mux := http.NewServeMux()
	mux.Handle("/", app())
	mux.HandleFunc("/slowput", func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		if _, err := s.Keys(); err != nil { // load the data first
			t.Error(err)
		}
		arrived.Done()
		<-gate
		if err := s.Put(r.FormValue("k"), "v"); err != nil {
			t.Error(err)
		}
	})
	f := newFixture(t, mux, Options{})
	f.get(f.c, "/login?u=alice")
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := f.c.Get(fmt.Sprintf("%s/slowput?k=k%d", f.srv.URL, i))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	arrived.Wait()
	close(gate)
	wg.Wait()
	for i := range n {
		if body, _ := f.get(f.c, fmt.Sprintf("/get?k=k%d", i)); body != "v" {
			t.Errorf("key k%d lost (got %q)", i, body)
		}
	}
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	f := newFixture(t, app(), Options{IdleTimeout: 30 * time.Minute, Lifetime: 2 * time.Hour})
	f.get(f.c, "/login?u=alice")
	// Active use every 20 minutes keeps it alive past the idle timeout...
	for range 5 {
		f.clk.Add(20 * time.Minute)
		if body, _ := f.get(f.c, "/whoami"); body != "alice" {
			t.Fatalf("active session expired at %v", f.clk.Now())
		}
	}
	// ...but not past the absolute lifetime.
	f.clk.Add(20 * time.Minute) // 2h since login
	if body, _ := f.get(f.c, "/whoami"); body != "" {
		t.Fatal("session outlived its absolute lifetime")
	}
	if ev := f.ev.named(reqlog.EventBadCookie); len(ev) == 0 {
		t.Fatal("no bad_cookie event for the expired cookie")
	}

	c := f.client()
	f.get(c, "/login?u=bob")
	f.clk.Add(31 * time.Minute)
	if body, _ := f.get(c, "/whoami"); body != "" {
		t.Fatal("session outlived its idle timeout")
	}
}

func TestBadCookies(t *testing.T) {
	f := newFixture(t, app(), Options{})
	c := f.client()
	f.get(c, "/login?u=alice")
	valid := f.cookie(c)
	f.get(c, "/login?u=alice") // valid is now destroyed: unknown
	revokedC := f.client()
	f.get(revokedC, "/login?u=rita")
	revoked := f.cookie(revokedC)
	if err := f.m.RevokePrincipal(context.Background(), "rita"); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ value, detail string }{
		"malformed":      {"not-a-token", BadMalformed},
		"wrong alphabet": {strings.Repeat("A", 42) + "!", BadMalformed},
		"non-canonical":  {strings.Repeat("A", 42) + "B", BadMalformed},
		"oversized":      {strings.Repeat("A", MaxCookieBytes+1), BadOversized},
		"unknown":        {valid, BadUnknown},
		"revoked":        {revoked, BadUnknown + "|" + BadRevoked},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := len(f.ev.named(reqlog.EventBadCookie))
			b, resp := f.getCookie(t, "/whoami", tc.value)
			if resp.StatusCode != 200 || b != "" {
				t.Fatalf("status %d body %q, want anonymous 200", resp.StatusCode, b)
			}
			sc := resp.Header.Get("Set-Cookie")
			if !strings.HasPrefix(sc, "session=;") || !strings.Contains(sc, "Max-Age=0") {
				t.Fatalf("bad cookie not cleared: Set-Cookie %q", sc)
			}
			evs := f.ev.named(reqlog.EventBadCookie)
			if len(evs) != before+1 {
				t.Fatalf("%d bad_cookie events, want 1 more than %d", len(evs), before)
			}
			if d := evs[len(evs)-1].Detail; !strings.Contains("|"+tc.detail+"|", "|"+d+"|") {
				t.Fatalf("detail %q, want %q", d, tc.detail)
			}
		})
	}
}

func TestStoreDownFailsClosed(t *testing.T) {
	for _, mode := range []StoreFailure{FailAnonymous, FailUnavailable} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			clk := newClock()
			fs := &failingStore{Full: newMemStore(t, clk.Now)}
			ev := &events{}
			m := New(fs, Options{Now: clk.Now, OnStoreError: mode, OnEvent: ev.on, Logger: quiet, Dev: true})
			defer m.Close()
			srv := httptest.NewServer(m.Middleware(app()))
			defer srv.Close()
			f := &fixture{t: t, srv: srv}
			c := f.client()
			f.get(c, "/login?u=alice")
			tok := f.cookie(c)
			fs.setDown(true)
			body, resp := f.get(c, "/whoami")
			if mode == FailAnonymous && (resp.StatusCode != 200 || body != "") {
				t.Fatalf("store down: %d %q, want anonymous 200", resp.StatusCode, body)
			}
			if mode == FailUnavailable && resp.StatusCode != 503 {
				t.Fatalf("store down: status %d, want 503", resp.StatusCode)
			}
			if resp.Header.Get("Set-Cookie") != "" {
				t.Fatal("the cookie was touched while the store was down")
			}
			if len(ev.named("store_error")) == 0 {
				t.Fatal("no store_error event")
			}
			// Writes while down fail; they never hand out a session.
			if body, resp := f.get(c, "/put?k=a&v=b"); mode == FailAnonymous && (resp.StatusCode != 500 || resp.Header.Get("Set-Cookie") != "") {
				t.Fatalf("put while down: %d %q %q", resp.StatusCode, body, resp.Header.Get("Set-Cookie"))
			}
			fs.setDown(false)
			if f.cookie(c) != tok {
				t.Fatal("cookie changed across the outage")
			}
			if body, _ := f.get(c, "/whoami"); body != "alice" {
				t.Fatalf("after recovery whoami = %q, want alice", body)
			}
		})
	}
}

func TestRevocationAndListing(t *testing.T) {
	f := newFixture(t, app(), Options{})
	users := []string{"alice", "alice", "bob", "carol"}
	clients := make([]*http.Client, len(users))
	for i, u := range users {
		clients[i] = f.client()
		f.get(clients[i], "/login?u="+u)
	}
	ctx := context.Background()
	list, err := f.m.Sessions(ctx, "alice", 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("alice's sessions = %v, %v; want 2", list, err)
	}
	for _, s := range list {
		if !store.ValidFingerprint(s.Fingerprint) || s.Principal != "alice" || s.LastIP != "127.0.0.1" || !strings.Contains(s.UserAgent, "Go-http-client") {
			t.Errorf("listing entry %+v", s)
		}
	}
	// Revoke one of alice's sessions by fingerprint.
	fp := store.Fingerprint(f.cookie(clients[0]))
	if n, err := f.m.RevokeFingerprints(ctx, fp); err != nil || n != 1 {
		t.Fatalf("RevokeFingerprints = %d, %v", n, err)
	}
	if _, err := f.m.RevokeFingerprints(ctx, "not-a-fingerprint"); err == nil {
		t.Fatal("a malformed fingerprint was accepted")
	}
	want := []string{"", "alice", "bob", "carol"}
	for i, c := range clients {
		if body, _ := f.get(c, "/whoami"); body != want[i] {
			t.Fatalf("after revoking one: client %d is %q, want %q", i, body, want[i])
		}
	}
	if err := f.m.RevokePrincipal(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if body, _ := f.get(clients[2], "/whoami"); body != "" {
		t.Fatal("bob survived RevokePrincipal")
	}
	if body, _ := f.get(clients[3], "/whoami"); body != "carol" {
		t.Fatal("carol lost her session to bob's revocation")
	}
	f.get(clients[2], "/login?u=bob")
	if body, _ := f.get(clients[2], "/whoami"); body != "bob" {
		t.Fatal("a login after RevokePrincipal does not work")
	}
	if err := f.m.RevokeAll(ctx); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range f.ev.named(reqlog.EventRevoke) {
		kinds = append(kinds, ev.Detail)
	}
	if !reflect.DeepEqual(kinds, []string{"session", "principal", "all"}) {
		t.Fatalf("revoke events %q", kinds)
	}
	for i, c := range clients {
		if body, _ := f.get(c, "/whoami"); body != "" {
			t.Fatalf("client %d survived RevokeAll as %q", i, body)
		}
	}
	if list, _ := f.m.Sessions(ctx, "", 0); len(list) != 0 {
		t.Fatalf("%d sessions listed after RevokeAll", len(list))
	}
}

func TestNoMiddleware(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := From(r).Principal(); !errors.Is(err, ErrNoSession) {
		t.Fatalf("without middleware: %v, want ErrNoSession", err)
	}
	if err := From(r).Put("a", 1); !errors.Is(err, ErrNoSession) {
		t.Fatalf("without middleware: %v, want ErrNoSession", err)
	}
}

// TestBadCookieAccessor: the handler learns from the handle why the cookie
// its request arrived with was not honoured, with the same reason and
// fingerprint as the request's bad_cookie event; nothing for no cookie or
// a good one.
func TestBadCookieAccessor(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/", app())
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) {
		reason, fp, err := From(r).BadCookie()
		if err != nil {
			t.Error(err)
		}
		fmt.Fprintf(w, "%s|%s", reason, fp)
	})
	f := newFixture(t, mux, Options{})
	c := f.client()
	if body, _ := f.get(c, "/bad"); body != "|" {
		t.Fatalf("no cookie: %q", body)
	}
	f.get(c, "/login?u=alice")
	stale := f.cookie(c)
	if body, _ := f.get(c, "/bad"); body != "|" {
		t.Fatalf("a good cookie: %q", body)
	}
	f.get(c, "/login?u=alice") // stale's session is destroyed: unknown
	for _, tc := range []struct{ value, reason, fp string }{
		{"not-a-token", BadMalformed, ""},
		{stale, BadUnknown, store.Fingerprint(stale)},
	} {
		b, _ := f.getCookie(t, "/bad", tc.value)
		if want := tc.reason + "|" + tc.fp; b != want {
			t.Errorf("cookie %.12q: %q, want %q", tc.value, b, want)
		}
		evs := f.ev.named(reqlog.EventBadCookie)
		if ev := evs[len(evs)-1]; ev.Detail != tc.reason || ev.Fingerprint != tc.fp {
			t.Errorf("event %+v, handle said %q", ev, b)
		}
	}
	var kept *Session
	h := f.m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { kept = From(r) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://127.0.0.1/", nil))
	if _, _, err := kept.BadCookie(); !errors.Is(err, ErrRequestEnded) {
		t.Errorf("BadCookie after the request: %v", err)
	}
}
