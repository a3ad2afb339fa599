package proxy

import (
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/dbsc/dbsctest"
	"github.com/cordon-sec/cordon/internal/setcookie"
	"github.com/cordon-sec/cordon/store"
)

// dbscApp is goApp with a log-out (/logout deletes the session cookie) and
// /cookies, which answers the Cookie header the app received.
type dbscApp struct{ *goApp }

func (a dbscApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/logout":
		w.Header().Add("Set-Cookie", "sid=; Path=/; Max-Age=0")
		return
	case "/cookies":
		io.WriteString(w, r.Header.Get("Cookie"))
		return
	case "/rotate": // a new value for the same session, as a renewal
		a.mu.Lock()
		c, _ := r.Cookie("sid")
		if c != nil && a.sessions[c.Value] != "" {
			a.n++
			tok := fmt.Sprintf("tok-%d-rotated", a.n)
			a.sessions[tok] = a.sessions[c.Value]
			w.Header().Add("Set-Cookie", "sid="+tok+"; Path=/")
		}
		a.mu.Unlock()
		return
	}
	a.goApp.ServeHTTP(w, r)
}

type dbscFixture struct {
	*fixture
	clock *fakeClock
}

const testTTL = time.Minute

func newDBSCFixture(t *testing.T, on bool) *dbscFixture {
	clock := &fakeClock{t: time.Now()}
	opt := Options{Now: clock.now}
	if on {
		opt.DBSC = &DBSC{TTL: testTTL}
	}
	return &dbscFixture{fixture: newFixture(t, dbscApp{newGoApp()}, opt), clock: clock}
}

func (f *dbscFixture) dbscBrowser(key *dbsctest.Client) *dbsctest.Browser {
	return &dbsctest.Browser{HTTP: f.browser(), Key: key}
}

// login logs b in as u and registers its key; it returns the app session.
func (f *dbscFixture) login(b *dbsctest.Browser, u string) string {
	f.t.Helper()
	resp, body := f.get(b.HTTP, "/login?u="+u)
	if body != u {
		f.t.Fatalf("login body %q", body)
	}
	if got := resp.Header.Get(dbsc.HeaderRegistration); !strings.HasPrefix(got, `(ES256 RS256);path="/.cordon/dbsc/register";challenge="`) {
		f.t.Fatalf("registration offer %q", got)
	}
	if st, err := b.Register(resp); err != nil || st != http.StatusOK {
		f.t.Fatalf("register: %d %v", st, err)
	}
	if f.cookie(b.HTTP, DevBoundCookie) == "" {
		f.t.Fatal("no bound cookie after registration")
	}
	return f.cookie(b.HTTP, "sid")
}

// thief returns a client holding copies of all of b's cookies and its own
// key, claiming b's DBSC session.
func (f *dbscFixture) thief(b *dbsctest.Browser) *dbsctest.Browser {
	jar, _ := cookiejar.New(nil)
	u := mustURL(f.srv.URL)
	jar.SetCookies(u, b.HTTP.Jar.Cookies(u))
	return &dbsctest.Browser{HTTP: &http.Client{Jar: jar}, Key: dbsctest.NewES256(), ID: b.ID, RefreshURL: b.RefreshURL}
}

func (f *dbscFixture) post(c *http.Client, path string, hdr map[string]string) (int, []string) {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Values("Set-Cookie")
}

func hasBound(lines []string) bool {
	for _, l := range lines {
		if v, ok := setcookie.Value(l, DevBoundCookie); ok && v != "" {
			return true
		}
	}
	return false
}

// The theft the feature exists for: a thief with every cookie of alice's
// but not her key is served as alice until the bound cookie's TTL, then
// anonymously, and cannot refresh; alice refreshes and goes on, and the
// thief's copy does not come back to life.
func TestDBSCThiefDiesAtTTL(t *testing.T) {
	f := newDBSCFixture(t, true)
	alice := f.dbscBrowser(dbsctest.NewES256())
	sid := f.login(alice, "alice")
	fp := store.Fingerprint(sid)
	if _, body := f.get(alice.HTTP, "/me"); body != "alice" {
		t.Fatalf("alice with her bound cookie: %q", body)
	}
	if _, body := f.get(alice.HTTP, "/cookies"); strings.Contains(body, DevBoundCookie) {
		t.Fatalf("the bound cookie reached the app: %q", body)
	}
	thief := f.thief(alice)
	if _, body := f.get(thief.HTTP, "/me"); body != "alice" {
		t.Fatalf("within the TTL the copy works (documented): %q", body)
	}
	f.clock.add(testTTL + time.Second)
	if _, body := f.get(thief.HTTP, "/me"); body != "" {
		t.Fatalf("thief past the TTL served as %q", body)
	}
	ls := f.events("dbsc_unbound")
	if len(ls) != 1 || ls[0].SidIn != fp {
		t.Fatalf("dbsc_unbound lines %+v, want one with sid_in %s", ls, fp)
	}
	// The thief's refresh: a challenge, then a proof by the wrong key.
	st, cookies, err := thief.Refresh()
	if err != nil || st != http.StatusBadRequest || hasBound(cookies) {
		t.Fatalf("thief refresh: %d %v %v", st, cookies, err)
	}
	if _, body := f.get(thief.HTTP, "/me"); body != "" {
		t.Fatalf("thief after its refresh served as %q", body)
	}
	// Alice, past the TTL too, is anonymous until her browser refreshes.
	if _, body := f.get(alice.HTTP, "/me"); body != "" {
		t.Fatalf("alice with an expired bound cookie served as %q", body)
	}
	old := f.cookie(alice.HTTP, DevBoundCookie)
	st, cookies, err = alice.Refresh()
	if err != nil || st != http.StatusOK || !hasBound(cookies) {
		t.Fatalf("alice refresh: %d %v %v", st, cookies, err)
	}
	first := f.cookie(alice.HTTP, DevBoundCookie)
	if first == old {
		t.Fatal("refresh kept the bound cookie value")
	}
	if _, body := f.get(alice.HTTP, "/me"); body != "alice" {
		t.Fatalf("alice after refresh: %q", body)
	}
	if _, body := f.get(thief.HTTP, "/me"); body != "" {
		t.Fatalf("the old bound value came back to life: served as %q", body)
	}
	if st, _, _ := alice.Refresh(); st != http.StatusOK || f.cookie(alice.HTTP, DevBoundCookie) == first {
		t.Fatalf("second refresh: %d, value changed: %v", st, f.cookie(alice.HTTP, DevBoundCookie) != first)
	}
	if n := len(f.events("dbsc_register")); n != 1 {
		t.Errorf("%d dbsc_register lines", n)
	}
	if n := len(f.events("dbsc_refresh")); n != 2 {
		t.Errorf("%d dbsc_refresh lines", n)
	}
	if n := len(f.events("dbsc_proof_failed")); n != 1 {
		t.Errorf("%d dbsc_proof_failed lines", n)
	}
}

// The oracle: without -dbsc the same copy is served past the TTL.
func TestDBSCOffThiefIsServed(t *testing.T) {
	f := newDBSCFixture(t, false)
	alice := f.dbscBrowser(dbsctest.NewES256())
	resp, _ := f.get(alice.HTTP, "/login?u=alice")
	if resp.Header.Get(dbsc.HeaderRegistration) != "" {
		t.Fatal("registration offered without DBSC")
	}
	thief := f.thief(alice)
	f.clock.add(testTTL + time.Second)
	if _, body := f.get(thief.HTTP, "/me"); body != "alice" {
		t.Fatalf("without DBSC the copy is served: got %q", body)
	}
}

// RS256 keys, proofs in the structured-field string form, and a log-in by
// POST (the reverse-proxy path rather than the direct one).
func TestDBSCRS256QuotedPost(t *testing.T) {
	f := newDBSCFixture(t, true)
	b := f.dbscBrowser(dbsctest.NewRS256(2048))
	b.Quote = true
	resp, err := b.HTTP.PostForm(f.srv.URL+"/login", url.Values{"u": {"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st, err := b.Register(resp); err != nil || st != http.StatusOK {
		t.Fatalf("register: %d %v", st, err)
	}
	f.clock.add(testTTL)
	if _, body := f.get(b.HTTP, "/me"); body != "" {
		t.Fatalf("at the TTL served as %q", body)
	}
	if st, _, err := b.Refresh(); err != nil || st != http.StatusOK {
		t.Fatalf("refresh: %d %v", st, err)
	}
	if _, body := f.get(b.HTTP, "/me"); body != "bob" {
		t.Fatalf("after refresh: %q", body)
	}
}

// Log-out ends the binding: the bound cookie is deleted and a refresh,
// even with the old session cookie and the right key, gets 401 and no
// cookie; the old session cookie stays stripped, even with the bound
// cookie it had (the app deleted it: it is not a bearer session again).
func TestDBSCLogout(t *testing.T) {
	f := newDBSCFixture(t, true)
	alice := f.dbscBrowser(dbsctest.NewES256())
	sid := f.login(alice, "alice")
	keep := f.thief(alice) // alice's cookies, as they were before log-out
	keep.Key = alice.Key
	resp, _ := f.get(alice.HTTP, "/logout")
	if !deletes(resp.Header.Values("Set-Cookie"), DevBoundCookie) {
		t.Fatalf("log-out did not delete the bound cookie: %v", resp.Header.Values("Set-Cookie"))
	}
	if st, cookies, _ := alice.Refresh(); st != http.StatusUnauthorized || hasBound(cookies) {
		t.Fatalf("refresh after log-out: %d %v", st, cookies)
	}
	if st, cookies, _ := keep.Refresh(); st != http.StatusUnauthorized || hasBound(cookies) {
		t.Fatalf("refresh with the old session cookie after log-out: %d %v", st, cookies)
	}
	if _, body := f.get(keep.HTTP, "/me"); body != "" {
		t.Fatalf("the logged-out session with its old bound cookie served as %q", body)
	}
	if ls := f.events("dbsc_unbound"); len(ls) != 1 || ls[0].SidIn != store.Fingerprint(sid) {
		t.Fatalf("dbsc_unbound lines %+v", ls)
	}
	if st, _ := f.post(keep.HTTP, "/.cordon/dbsc/register", map[string]string{dbsc.HeaderResponse: keep.Key.RegistrationProof("x", "")}); st != http.StatusUnauthorized {
		t.Fatalf("registration of a logged-out session: %d", st)
	}
}

func deletes(lines []string, name string) bool {
	for _, l := range lines {
		if _, ok := setcookie.Value(l, name); ok && setcookie.Deletes(l) {
			return true
		}
	}
	return false
}

// Hostile inputs at both endpoints: each gets a 4xx, never a 5xx, never a
// bound cookie, and changes nothing.
func TestDBSCHostile(t *testing.T) {
	f := newDBSCFixture(t, true)
	alice := f.dbscBrowser(dbsctest.NewES256())
	resp, _ := f.get(alice.HTTP, "/login?u=alice")
	reg, err := dbsctest.ParseRegistration(resp.Header.Get(dbsc.HeaderRegistration))
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	none := func(h, p string) string {
		return enc.EncodeToString([]byte(h)) + "." + enc.EncodeToString([]byte(p)) + "."
	}
	other := dbsctest.NewES256()
	check := func(name string, c *http.Client, path string, hdr map[string]string, want int) {
		t.Helper()
		st, cookies := f.post(c, path, hdr)
		if st != want || hasBound(cookies) {
			t.Errorf("%s: %d %v, want %d and no bound cookie", name, st, cookies, want)
		}
	}
	regPath := "/.cordon/dbsc/register"
	// Registration.
	check("alg none", alice.HTTP, regPath, map[string]string{dbsc.HeaderResponse: none(`{"alg":"none","typ":"dbsc+jwt","jwk":`+string(alice.Key.JWK())+`}`, `{"jti":"`+reg.Challenge+`"}`)}, 400)
	check("alg none signed", alice.HTTP, regPath, map[string]string{dbsc.HeaderResponse: alice.Key.Sign(map[string]any{"alg": "none", "typ": "dbsc+jwt", "jwk": alice.Key.JWK()}, map[string]any{"jti": reg.Challenge})}, 400)
	check("key not the signer", alice.HTTP, regPath, map[string]string{dbsc.HeaderResponse: other.Sign(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": alice.Key.JWK()}, map[string]any{"jti": reg.Challenge})}, 400)
	check("malformed header", alice.HTTP, regPath, map[string]string{dbsc.HeaderResponse: "not a jws!"}, 400)
	check("no header", alice.HTTP, regPath, nil, 400)
	check("unknown challenge", alice.HTTP, regPath, map[string]string{dbsc.HeaderResponse: alice.Key.RegistrationProof("made-up", "")}, 400)
	anon := f.dbscBrowser(dbsctest.NewES256())
	check("no session", anon.HTTP, regPath, map[string]string{dbsc.HeaderResponse: anon.Key.RegistrationProof(reg.Challenge, "")}, 401)
	// A copy of the session cookie (and the challenge) on another device.
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(mustURL(f.srv.URL), []*http.Cookie{{Name: "sid", Value: f.cookie(alice.HTTP, "sid")}})
	check("other device", &http.Client{Jar: jar}, regPath, map[string]string{dbsc.HeaderResponse: other.RegistrationProof(reg.Challenge, "")}, 401)
	for _, m := range []string{http.MethodGet, http.MethodPut} {
		req, _ := http.NewRequest(m, f.srv.URL+regPath, nil)
		r, err := alice.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s register: %d", m, r.StatusCode)
		}
	}
	// Refused proofs do not use the offered challenge up (so nobody can
	// burn it): the browser still registers with it, once.
	if st, err := alice.Register(resp); err != nil || st != http.StatusOK {
		t.Fatalf("register after the refused attempts: %d %v", st, err)
	}
	if st, _ := alice.Register(resp); st != http.StatusUnauthorized {
		t.Errorf("second registration of a bound session: %d", st)
	}

	// Refresh.
	refPath := "/.cordon/dbsc/refresh"
	id := map[string]string{dbsc.HeaderSessionID: alice.ID}
	with := func(proof string) map[string]string {
		return map[string]string{dbsc.HeaderSessionID: alice.ID, dbsc.HeaderResponse: proof}
	}
	st, ch, _, err := alice.RefreshWith("")
	if err != nil || st != http.StatusForbidden || ch == "" {
		t.Fatalf("refresh without proof: %d %q %v", st, ch, err)
	}
	check("refresh alg none", alice.HTTP, refPath, with(none(`{"alg":"none","typ":"dbsc+jwt"}`, `{"jti":"`+ch+`"}`)), 400)
	st, ch, _, _ = alice.RefreshWith("")
	check("refresh wrong key", alice.HTTP, refPath, with(other.RefreshProof(ch)), 400)
	check("refresh malformed proof", alice.HTTP, refPath, with(`"unterminated`), 400)
	check("refresh malformed id", alice.HTTP, refPath, map[string]string{dbsc.HeaderSessionID: "a b"}, 400)
	check("refresh no id", alice.HTTP, refPath, nil, 400)
	check("refresh unknown id", alice.HTTP, refPath, map[string]string{dbsc.HeaderSessionID: "nope"}, 401)
	check("refresh no session", anon.HTTP, refPath, id, 401)
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+refPath, nil)
	req.Header.Set(dbsc.HeaderSessionID, alice.ID)
	if r, err := alice.HTTP.Do(req); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET refresh: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	// A stale but validly signed proof: 403 with a fresh challenge.
	_, ch, _, _ = alice.RefreshWith("")
	proof := alice.Key.RefreshProof(ch)
	if st, _, cookies, _ := alice.RefreshWith(proof); st != http.StatusOK || !hasBound(cookies) {
		t.Fatalf("fresh proof: %d", st)
	}
	st, ch2, cookies, err := alice.RefreshWith(proof)
	if err != nil || st != http.StatusForbidden || ch2 == "" || hasBound(cookies) {
		t.Fatalf("replayed proof: %d %q %v", st, ch2, err)
	}
	// An expired challenge, validly signed: the same.
	f.clock.add(6 * time.Minute)
	if st, ch3, _, _ := alice.RefreshWith(alice.Key.RefreshProof(ch2)); st != http.StatusForbidden || ch3 == "" {
		t.Fatalf("expired challenge: %d", st)
	}
	found := false
	for _, l := range f.events("dbsc_proof_failed") {
		if l.Status >= 500 {
			t.Errorf("5xx: %+v", l)
		}
		found = found || l.Detail == "stale_challenge"
	}
	if !found {
		t.Error("no stale_challenge line")
	}
	// The browser's session goes on.
	if st, _, _ := alice.Refresh(); st != http.StatusOK {
		t.Fatalf("refresh after the hostile inputs: %d", st)
	}
}

// The memory of device-bound sessions is bounded: the least recently used
// goes first.
func TestDBSCMemoryBounded(t *testing.T) {
	s := newDBSCState(DBSC{MaxSessions: 3}, &Options{Now: time.Now})
	for i := range 10 {
		s.put(boundSession{fp: fpOf(i), id: fpOf(i)})
		s.get(fpOf(0)) // kept in use
	}
	if n := s.Len(); n != 3 {
		t.Fatalf("%d sessions held, want 3", n)
	}
	for _, i := range []int{0, 8, 9} {
		if _, ok := s.get(fpOf(i)); !ok {
			t.Errorf("session %d evicted", i)
		}
	}
}

// After a restart the proxy has forgotten the bindings: the owner's
// browser, which presents a bound cookie, is served anonymously until it
// logs in again and registers anew; a copied session cookie presented
// without any bound cookie is a bearer session again (documented).
func TestDBSCRestart(t *testing.T) {
	app := dbscApp{newGoApp()}
	clock := &fakeClock{t: time.Now()}
	opt := Options{Now: clock.now, DBSC: &DBSC{TTL: testTTL}}
	f1 := &dbscFixture{fixture: newFixture(t, app, opt), clock: clock}
	alice := f1.dbscBrowser(dbsctest.NewES256())
	f1.login(alice, "alice")
	sid := f1.cookie(alice.HTTP, "sid")

	clock.add(time.Second)
	f2 := &dbscFixture{fixture: newFixture(t, app, opt), clock: clock}
	jar, _ := cookiejar.New(nil)
	var moved []*http.Cookie
	for _, c := range alice.HTTP.Jar.Cookies(mustURL(f1.srv.URL)) {
		moved = append(moved, &http.Cookie{Name: c.Name, Value: c.Value, Path: "/"})
	}
	jar.SetCookies(mustURL(f2.srv.URL), moved)
	alice2 := &dbsctest.Browser{HTTP: &http.Client{Jar: jar}, Key: alice.Key, ID: alice.ID}
	alice2.RefreshURL = mustURL(f2.srv.URL + "/.cordon/dbsc/refresh")
	if _, body := f2.get(alice2.HTTP, "/me"); body != "" {
		t.Fatalf("a forgotten binding's session served as %q", body)
	}
	if ls := f2.events("dbsc_unbound"); len(ls) != 1 || ls[0].Detail != "forgotten" || ls[0].SidIn != store.Fingerprint(sid) {
		t.Fatalf("dbsc_unbound lines %+v", ls)
	}
	if st, cookies, _ := alice2.Refresh(); st != http.StatusUnauthorized || hasBound(cookies) {
		t.Fatalf("refresh of a forgotten binding: %d %v", st, cookies)
	}
	bearer := f2.browser()
	bearer.Jar.SetCookies(mustURL(f2.srv.URL), []*http.Cookie{{Name: "sid", Value: sid, Path: "/"}})
	if _, body := f2.get(bearer, "/me"); body != "alice" {
		t.Fatalf("the session cookie alone after a restart: %q (documented as served)", body)
	}
	// Alice logs in again: the new session is served even before her
	// browser registers (it still holds the old bound cookie), then bound.
	resp, _ := f2.get(alice2.HTTP, "/login?u=alice")
	if _, body := f2.get(alice2.HTTP, "/me"); body != "alice" {
		t.Fatalf("a new session with an old bound cookie: %q", body)
	}
	if st, err := alice2.Register(resp); err != nil || st != http.StatusOK {
		t.Fatalf("registration after the restart: %d %v", st, err)
	}
	if _, body := f2.get(alice2.HTTP, "/me"); body != "alice" {
		t.Fatalf("after the new registration: %q", body)
	}
	clock.add(testTTL)
	if _, body := f2.get(alice2.HTTP, "/me"); body != "" {
		t.Fatalf("the new binding is enforced: %q", body)
	}
}

// FuzzDBSCEndpoints: whatever a client sends to the two endpoints, the
// proxy answers it itself with a 4xx and no bound cookie, and the app never
// sees it.
func FuzzDBSCEndpoints(f *testing.F) {
	reached := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case reached <- struct{}{}:
		default:
		}
	}))
	f.Cleanup(up.Close)
	p, err := New(Options{Upstream: mustURL(up.URL), SessionCookie: "sid", Dev: true, DBSC: &DBSC{},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	key := dbsctest.NewES256()
	f.Add(uint8(0), true, "sid=a; cordon-dev=b", "", key.RegistrationProof("c", ""))
	f.Add(uint8(1), false, "sid=a", "id", key.RefreshProof("c"))
	f.Add(uint8(2), false, "", `"id";x`, `"a.b.c"`)
	f.Add(uint8(3), true, "sid=\"\"", "a b", "none..")
	f.Fuzz(func(t *testing.T, method uint8, register bool, cookie, id, proof string) {
		path := "/.cordon/dbsc/refresh"
		if register {
			path = "/.cordon/dbsc/register"
		}
		req := httptest.NewRequest([]string{"POST", "GET", "PUT", "HEAD"}[method%4], path, nil)
		req.Header.Set("Cookie", cookie)
		req.Header.Set(dbsc.HeaderSessionID, id)
		req.Header.Set(dbsc.HeaderResponse, proof)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		if w.Code < 400 || w.Code >= 500 || hasBound(w.Header().Values("Set-Cookie")) {
			t.Fatalf("%s %s: %d %v", req.Method, path, w.Code, w.Header())
		}
		select {
		case <-reached:
			t.Fatal("a DBSC endpoint request reached the app")
		default:
		}
	})
}

// Refreshes and requests of many sessions at once (run with -race).
func TestDBSCConcurrent(t *testing.T) {
	f := newDBSCFixture(t, true)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 4 {
		b := f.dbscBrowser(dbsctest.NewES256())
		u := fmt.Sprintf("user%d", i)
		f.login(b, u)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 5 {
				if st, _, err := b.Refresh(); err != nil || st != http.StatusOK {
					errs <- fmt.Errorf("%s refresh: %d %v", u, st, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 20 {
				resp, err := b.HTTP.Get(f.srv.URL + "/me")
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
		defer func() {
			if _, body := f.get(b.HTTP, "/me"); body != u {
				t.Errorf("%s after concurrent refreshes: %q", u, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// An app that gives the session a new value (a renewal, a cookie store)
// in a response to the device-bound browser keeps it device-bound: the
// binding moves to the new value, and the old value stays stripped.
func TestDBSCRenewedValue(t *testing.T) {
	f := newDBSCFixture(t, true)
	alice := f.dbscBrowser(dbsctest.NewES256())
	old := f.login(alice, "alice")
	before := f.thief(alice) // the old value and the bound cookie
	resp, _ := f.get(alice.HTTP, "/rotate")
	sid := f.cookie(alice.HTTP, "sid")
	if sid == old || resp.Header.Get(dbsc.HeaderRegistration) != "" {
		t.Fatalf("rotation: new value %v, offer %q", sid != old, resp.Header.Get(dbsc.HeaderRegistration))
	}
	if _, body := f.get(alice.HTTP, "/me"); body != "alice" {
		t.Fatalf("the renewed session with the bound cookie: %q", body)
	}
	if _, body := f.get(before.HTTP, "/me"); body != "" {
		t.Fatalf("the old value served as %q", body)
	}
	// The renewed value is bound: copied without the key it dies at the
	// TTL, and the owner refreshes it.
	thief := f.thief(alice)
	f.clock.add(testTTL)
	if _, body := f.get(thief.HTTP, "/me"); body != "" {
		t.Fatalf("the renewed value copied, past the TTL: %q", body)
	}
	if st, _, _ := alice.Refresh(); st != http.StatusOK {
		t.Fatalf("refresh of the renewed session: %d", st)
	}
	if _, body := f.get(alice.HTTP, "/me"); body != "alice" {
		t.Fatalf("after refresh: %q", body)
	}
	// Renewed from a request without the bound cookie (the app sees no
	// session then, so this is a new log-in): a fresh offer, nothing moves.
	anon := f.dbscBrowser(dbsctest.NewES256())
	resp, _ = f.get(anon.HTTP, "/login?u=bob")
	if resp.Header.Get(dbsc.HeaderRegistration) == "" {
		t.Fatal("no offer for a new log-in")
	}
}
