package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
)

// apiApp serves the flows of flash, remember me, JSON values and "log out
// my other sessions".
func apiApp() http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) { http.Error(w, err.Error(), http.StatusInternalServerError) }
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		opt := LoginOptions{Remember: r.FormValue("remember") == "on"}
		if err := From(r).LoginWith(r.FormValue("u"), opt); err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		p, err := From(r).Principal()
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, p)
	})
	mux.HandleFunc("POST /renew", func(w http.ResponseWriter, r *http.Request) {
		if err := From(r).Renew(); err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, "ok")
	})
	// POST /save puts a flash and redirects to the page that shows it.
	mux.HandleFunc("POST /save", func(w http.ResponseWriter, r *http.Request) {
		if err := From(r).Put("flash", "saved "+r.FormValue("what")); err != nil {
			fail(w, err)
			return
		}
		http.Redirect(w, r, "/show", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /show", func(w http.ResponseWriter, r *http.Request) {
		msg, err := From(r).PopString("flash")
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, msg)
	})
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		c := cart{Items: []item{{SKU: r.FormValue("sku"), Qty: 1}}, Tags: map[string]string{"via": "form"}}
		if err := PutJSON(From(r), "cart", c); err != nil {
			fail(w, err)
			return
		}
		c.Items[0].SKU = "changed after PutJSON" // must not reach the session
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /cart", func(w http.ResponseWriter, r *http.Request) {
		c, ok, err := GetJSON[cart](From(r), "cart")
		if err != nil {
			fail(w, err)
			return
		}
		if !ok {
			fmt.Fprint(w, "none")
			return
		}
		// A caller that changes what it got never changes what is stored.
		c.Items[0].SKU, c.Tags["via"] = "mutated", "mutated"
		again, _, err := GetJSON[cart](From(r), "cart")
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprintf(w, "%s x%d via %s", again.Items[0].SKU, again.Items[0].Qty, again.Tags["via"])
	})
	mux.HandleFunc("POST /logout-others", func(w http.ResponseWriter, r *http.Request) {
		if err := From(r).LogoutOthers(); err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("POST /put", func(w http.ResponseWriter, r *http.Request) {
		if err := From(r).Put(r.FormValue("k"), r.FormValue("v")); err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		v, err := From(r).GetString(r.FormValue("k"))
		if err != nil {
			fail(w, err)
			return
		}
		fmt.Fprint(w, v)
	})
	return mux
}

type item struct {
	SKU string
	Qty int
}

type cart struct {
	Items []item
	Tags  map[string]string
}

// post sends a form with client c and returns the body and response.
func (f *fixture) post(c *http.Client, path string, form url.Values) (string, *http.Response) {
	f.t.Helper()
	resp, err := c.PostForm(f.srv.URL+path, form)
	if err != nil {
		f.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("POST %s: read: %v", path, err)
	}
	return string(b), resp
}

// sessionSetCookie returns the Set-Cookie of the session cookie in resp.
func sessionSetCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "session" || c.Name == DefaultCookieName {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
	return nil
}

func TestFlashPopAfterRedirect(t *testing.T) {
	f := newFixture(t, apiApp(), Options{})
	// The client follows the 303 to /show with the new session cookie.
	body, resp := f.post(f.c, "/save", url.Values{"what": {"draft"}})
	if resp.Request.URL.Path != "/show" || body != "saved draft" {
		t.Fatalf("after redirect: %s %q, want /show %q", resp.Request.URL.Path, body, "saved draft")
	}
	if body, _ := f.get(f.c, "/show"); body != "" {
		t.Fatalf("flash shown twice: %q", body)
	}
	// The pop was committed: the stored session no longer holds it.
	s, err := f.st.Find(context.Background(), store.HashToken(f.cookie(f.c)))
	if err != nil {
		t.Fatal(err)
	}
	if vals, err := decodeValues(s.Data); err != nil || vals["flash"] != nil {
		t.Fatalf("stored values after pop: %v, %v", vals, err)
	}
}

func TestPopOnHandle(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		if err := s.Put("n", 7); err != nil {
			t.Error(err)
		}
		if err := s.Put("list", []string{"a"}); err != nil {
			t.Error(err)
		}
		if _, err := s.PopString("n"); !errors.Is(err, ErrWrongType) {
			t.Errorf("PopString of an int: %v, want ErrWrongType", err)
		}
		if v, ok, err := s.Get("n"); err != nil || !ok || v != int64(7) {
			t.Errorf("a failed PopString removed the value: %v %v %v", v, ok, err)
		}
		v, ok, err := s.Pop("list")
		if err != nil || !ok || !reflect.DeepEqual(v, []string{"a"}) {
			t.Errorf("Pop = %v %v %v", v, ok, err)
		}
		v.([]string)[0] = "changed"
		if _, ok, _ := s.Pop("list"); ok {
			t.Error("second Pop found the value")
		}
		if v, ok, err := s.Pop("absent"); v != nil || ok || err != nil {
			t.Errorf("Pop of an absent key = %v %v %v", v, ok, err)
		}
	}), Options{})
	f.get(f.c, "/")
}

func TestJSONValuesAreCopies(t *testing.T) {
	f := newFixture(t, apiApp(), Options{})
	if body, _ := f.get(f.c, "/cart"); body != "none" {
		t.Fatalf("empty cart: %q", body)
	}
	f.post(f.c, "/cart", url.Values{"sku": {"A-1"}})
	if body, _ := f.get(f.c, "/cart"); body != "A-1 x1 via form" {
		t.Fatalf("cart = %q", body)
	}
}

func TestJSONErrors(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		if err := PutJSON(s, "ch", make(chan int)); err == nil {
			t.Error("PutJSON of a channel succeeded")
		}
		if err := s.Put("s", "text"); err != nil {
			t.Error(err)
		}
		if _, _, err := GetJSON[cart](s, "s"); !errors.Is(err, ErrWrongType) {
			t.Errorf("GetJSON of a string: %v, want ErrWrongType", err)
		}
		if err := s.Put("b", []byte("{not json")); err != nil {
			t.Error(err)
		}
		if _, ok, err := GetJSON[cart](s, "b"); err == nil || ok {
			t.Errorf("GetJSON of bad JSON: %v %v", ok, err)
		}
		if err := PutJSON(s, "\x00remember", true); !errors.Is(err, ErrReservedKey) {
			t.Errorf("PutJSON on a reserved key: %v", err)
		}
	}), Options{})
	f.get(f.c, "/")
}

func TestReservedKeysAreHidden(t *testing.T) {
	f := newFixture(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := From(r)
		switch r.URL.Path {
		case "/login":
			if err := s.Put("theme", "dark"); err != nil {
				t.Error(err)
			}
			if err := s.LoginWith("alice", LoginOptions{Remember: true}); err != nil {
				t.Error(err)
			}
		case "/check":
			for name, err := range map[string]error{
				"Put":    s.Put(rememberKey, false),
				"Delete": s.Delete(rememberKey),
			} {
				if !errors.Is(err, ErrReservedKey) {
					t.Errorf("%s on the reserved key: %v", name, err)
				}
			}
			if _, _, err := s.Get(rememberKey); !errors.Is(err, ErrReservedKey) {
				t.Errorf("Get on the reserved key: %v", err)
			}
			if _, _, err := s.Pop(rememberKey); !errors.Is(err, ErrReservedKey) {
				t.Errorf("Pop on the reserved key: %v", err)
			}
			if keys, err := s.Keys(); err != nil || !reflect.DeepEqual(keys, []string{"theme"}) {
				t.Errorf("Keys = %q, %v; want only theme", keys, err)
			}
		}
	}), Options{})
	f.get(f.c, "/login")
	f.get(f.c, "/check")
}

func TestRememberMe(t *testing.T) {
	f := newFixture(t, apiApp(), Options{})
	ctx := context.Background()
	login := f.clk.Now()
	_, resp := f.post(f.c, "/login", url.Values{"u": {"alice"}, "remember": {"on"}})
	ck := sessionSetCookie(t, resp)
	if want := int(DefaultRememberLifetime / time.Second); ck.MaxAge != want {
		t.Fatalf("remembered cookie Max-Age = %d, want %d", ck.MaxAge, want)
	}
	s, err := f.st.Find(ctx, store.HashToken(ck.Value))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Expires.Equal(login.Add(DefaultRememberLifetime)) || !s.IdleDeadline.Equal(login.Add(DefaultRememberIdleTimeout)) {
		t.Fatalf("remembered session: expires %v idle %v", s.Expires, s.IdleDeadline)
	}

	// A browser-session login beside it.
	other := f.client()
	_, resp = f.post(other, "/login", url.Values{"u": {"bob"}})
	if ck := sessionSetCookie(t, resp); ck.MaxAge != 0 || strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age") {
		t.Fatalf("non-remembered login set a persistent cookie: %q", resp.Header.Get("Set-Cookie"))
	}

	// Two hours unused: past the ordinary idle timeout, not the remembered
	// one.
	f.clk.Add(2 * time.Hour)
	if body, _ := f.get(f.c, "/whoami"); body != "alice" {
		t.Fatalf("remembered session ended after 2 h idle: %q", body)
	}
	if body, _ := f.get(other, "/whoami"); body != "" {
		t.Fatalf("browser-session login outlived its idle timeout: %q", body)
	}
	// The touch moved the idle deadline by the remembered idle timeout.
	s, _ = f.st.Find(ctx, store.HashToken(f.cookie(f.c)))
	if want := f.clk.Now().Add(DefaultRememberIdleTimeout); !s.IdleDeadline.Equal(want) {
		t.Fatalf("idle deadline after a touch = %v, want %v", s.IdleDeadline, want)
	}
	// So does a commit.
	f.post(f.c, "/put", url.Values{"k": {"theme"}, "v": {"dark"}})
	s, _ = f.st.Find(ctx, store.HashToken(f.cookie(f.c)))
	if want := f.clk.Now().Add(DefaultRememberIdleTimeout); !s.IdleDeadline.Equal(want) {
		t.Fatalf("idle deadline after a commit = %v, want %v", s.IdleDeadline, want)
	}

	// Renew keeps the choice and the absolute end: it never extends a
	// remembered session.
	_, resp = f.post(f.c, "/renew", nil)
	ck = sessionSetCookie(t, resp)
	s, _ = f.st.Find(ctx, store.HashToken(ck.Value))
	if !s.Expires.Equal(login.Add(DefaultRememberLifetime)) {
		t.Fatalf("renew moved the absolute end to %v", s.Expires)
	}
	if want := int(login.Add(DefaultRememberLifetime).Sub(f.clk.Now()) / time.Second); ck.MaxAge != want {
		t.Fatalf("renewed cookie Max-Age = %d, want the %d s left", ck.MaxAge, want)
	}

	// Used every 6 days it lives until its absolute end, and not past it.
	for f.clk.Now().Add(6 * 24 * time.Hour).Before(login.Add(DefaultRememberLifetime)) {
		f.clk.Add(6 * 24 * time.Hour)
		if body, _ := f.get(f.c, "/whoami"); body != "alice" {
			t.Fatalf("remembered session ended early at %v", f.clk.Now().Sub(login))
		}
	}
	f.clk.Add(login.Add(DefaultRememberLifetime).Sub(f.clk.Now()))
	if body, _ := f.get(f.c, "/whoami"); body != "" {
		t.Fatal("remembered session outlived its absolute lifetime")
	}
}

func TestRememberIdleTimeout(t *testing.T) {
	f := newFixture(t, apiApp(), Options{RememberIdleTimeout: 3 * time.Hour})
	f.post(f.c, "/login", url.Values{"u": {"alice"}, "remember": {"on"}})
	f.clk.Add(3*time.Hour - time.Second)
	if body, _ := f.get(f.c, "/whoami"); body != "alice" {
		t.Fatal("remembered session ended before its idle timeout")
	}
	f.clk.Add(3 * time.Hour)
	if body, _ := f.get(f.c, "/whoami"); body != "" {
		t.Fatal("remembered session outlived its idle timeout")
	}
}

func TestRememberLoginAgainChoosesAnew(t *testing.T) {
	f := newFixture(t, apiApp(), Options{})
	f.post(f.c, "/login", url.Values{"u": {"alice"}, "remember": {"on"}})
	_, resp := f.post(f.c, "/login", url.Values{"u": {"alice"}})
	if ck := sessionSetCookie(t, resp); ck.MaxAge != 0 {
		t.Fatalf("second login without remember me kept Max-Age %d", ck.MaxAge)
	}
	f.clk.Add(time.Hour)
	if body, _ := f.get(f.c, "/whoami"); body != "" {
		t.Fatal("second login without remember me kept the remembered idle timeout")
	}
}

func TestRememberLifetimeBound(t *testing.T) {
	f := newFixture(t, apiApp(), Options{RememberLifetime: 365 * 24 * time.Hour})
	_, resp := f.post(f.c, "/login", url.Values{"u": {"alice"}, "remember": {"on"}})
	if ck := sessionSetCookie(t, resp); ck.MaxAge != int(MaxRememberLifetime/time.Second) {
		t.Fatalf("Max-Age = %d, want the 30-day bound %d", ck.MaxAge, int(MaxRememberLifetime/time.Second))
	}
	s, err := f.st.Find(context.Background(), store.HashToken(f.cookie(f.c)))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Expires.Sub(s.Created); got != MaxRememberLifetime {
		t.Fatalf("remembered lifetime %v, want the bound %v", got, MaxRememberLifetime)
	}
}

func TestPersistStillGivesEveryCookieMaxAge(t *testing.T) {
	f := newFixture(t, apiApp(), Options{Persist: true, Lifetime: 2 * time.Hour})
	_, resp := f.post(f.c, "/login", url.Values{"u": {"alice"}})
	if ck := sessionSetCookie(t, resp); ck.MaxAge != 7200 {
		t.Fatalf("Persist login Max-Age = %d, want 7200", ck.MaxAge)
	}
	c := f.client()
	_, resp = f.post(c, "/put", url.Values{"k": {"a"}, "v": {"b"}})
	if ck := sessionSetCookie(t, resp); ck.MaxAge != 7200 {
		t.Fatalf("Persist anonymous Max-Age = %d, want 7200", ck.MaxAge)
	}
}

func TestLogoutOthers(t *testing.T) {
	f := newFixture(t, apiApp(), Options{})
	laptop, phone, carol := f.c, f.client(), f.client()
	f.post(laptop, "/login", url.Values{"u": {"alice"}, "remember": {"on"}})
	f.post(laptop, "/put", url.Values{"k": {"theme"}, "v": {"dark"}})
	f.post(phone, "/login", url.Values{"u": {"alice"}})
	f.post(carol, "/login", url.Values{"u": {"carol"}})
	before := f.cookie(laptop)
	s, _ := f.st.Find(context.Background(), store.HashToken(before))
	expires := s.Expires

	if body, _ := f.post(laptop, "/logout-others", nil); body != "ok" {
		t.Fatalf("logout-others: %q", body)
	}
	if body, _ := f.get(phone, "/whoami"); body != "" {
		t.Fatalf("the other session of alice survived: %q", body)
	}
	if body, _ := f.get(laptop, "/whoami"); body != "alice" {
		t.Fatalf("the session that asked was logged out: %q", body)
	}
	if body, _ := f.get(laptop, "/get?k=theme"); body != "dark" {
		t.Fatalf("the session that asked lost its values: %q", body)
	}
	if body, _ := f.get(carol, "/whoami"); body != "carol" {
		t.Fatalf("another principal was logged out: %q", body)
	}
	after := f.cookie(laptop)
	if after == before {
		t.Fatal("the token was not rotated")
	}
	s, err := f.st.Find(context.Background(), store.HashToken(after))
	if err != nil || !rememberedData(s.Data) || !s.Expires.Equal(expires) {
		t.Fatalf("the new session lost remember me or its absolute end: %v", err)
	}
	// Anonymous: nothing to do.
	anon := f.client()
	if body, _ := f.post(anon, "/logout-others", nil); body != "ok" {
		t.Fatalf("anonymous logout-others: %q", body)
	}
}

// TestCrossOriginLoginRefused wires the manager as the package
// documentation says (http.CrossOriginProtection outside the session
// middleware) and checks that a browser's cross-origin login POST is
// refused before it reaches the handler; without the protection the same
// request logs in, which shows the test would catch a missing wiring.
func TestCrossOriginLoginRefused(t *testing.T) {
	clk := newClock()
	st := newMemStore(t, clk.Now)
	m := New(st, Options{Now: clk.Now, Logger: quiet})
	t.Cleanup(func() { m.Close() })
	mux := apiApp()
	cases := []struct {
		name    string
		handler http.Handler
		refused bool
	}{
		{"as documented", http.NewCrossOriginProtection().Handler(m.Middleware(mux)), true},
		{"protection off", m.Middleware(mux), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			send := func(hdr map[string]string) *http.Response {
				req, err := http.NewRequest("POST", srv.URL+"/login", strings.NewReader("u=alice"))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp
			}
			for _, hdr := range []map[string]string{
				{"Sec-Fetch-Site": "cross-site"},
				{"Origin": "https://evil.example"},
			} {
				resp := send(hdr)
				gotCookie := len(resp.Header.Values("Set-Cookie")) > 0
				if tc.refused && (resp.StatusCode != http.StatusForbidden || gotCookie) {
					t.Errorf("cross-origin login %v: %d, Set-Cookie %q; want 403 and no cookie", hdr, resp.StatusCode, resp.Header.Values("Set-Cookie"))
				}
				if !tc.refused && (resp.StatusCode != http.StatusOK || !gotCookie) {
					t.Errorf("without the protection the cross-origin login %v should pass: %d", hdr, resp.StatusCode)
				}
			}
			// A same-origin form from a browser, and a client that is not a
			// browser, log in.
			for _, hdr := range []map[string]string{{"Sec-Fetch-Site": "same-origin"}, {}} {
				if resp := send(hdr); resp.StatusCode != http.StatusOK || len(resp.Header.Values("Set-Cookie")) == 0 {
					t.Errorf("same-origin login %v: %d", hdr, resp.StatusCode)
				}
			}
		})
	}
}
