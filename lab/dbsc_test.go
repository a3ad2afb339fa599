package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
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
	"github.com/cordon-sec/cordon/store/memstore"
)

// TestDBSCReplay: with dbsc the 2021 leak still happens (response #3 still
// carries alice's session), but once the lab's clock has moved on by the
// bound cookie's TTL bob's browser is no longer served as alice, its
// refresh without her key is refused, and alice's browser, holding the
// key, refreshes and goes on.
func TestDBSCReplay(t *testing.T) {
	res, err := Replay(context.Background(), ReplayOptions{Mitigations: Mitigations{DBSC: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Leaked || res.Responses[2].CookieUser != "alice" || !res.Responses[2].Bound {
		t.Fatalf("dbsc must not stop the mis-delivery: %+v", res.Responses[2])
	}
	if br := ChainBreak(res); br.Link != nil {
		t.Fatalf("dbsc broke the chain at link %d", br.Link.N)
	}
	af := res.Aftermath
	if af == nil {
		t.Fatal("no aftermath with dbsc")
	}
	if af.After != DBSCTTL {
		t.Errorf("clock moved %s, want the TTL %s", af.After, DBSCTTL)
	}
	if af.StolenUsable || af.Recipient.Status != http.StatusUnauthorized || af.Recipient.BodyUser != "" || af.Recipient.As != "bob" {
		t.Errorf("recipient past the TTL: %+v (usable %v)", af.Recipient, af.StolenUsable)
	}
	if r := af.RecipientRefresh; r == nil || !r.Refused() || r.NewCookie || r.Status < 400 || r.Status >= 500 {
		t.Errorf("recipient's refresh: %+v, want a 4xx with no cookie", r)
	}
	if r := af.OwnerRefresh; r == nil || r.Refused() || r.Status != http.StatusOK {
		t.Errorf("owner's refresh: %+v", r)
	}
	if af.Owner.Status != http.StatusOK || af.Owner.BodyUser != "alice" {
		t.Errorf("owner after refresh: %+v", af.Owner)
	}

	// The story: the leak still marked at 7 and 8, dbsc marked at 9, 10 and
	// 11 in plain words.
	marks := map[int]string{}
	for _, st := range Story(res) {
		if st.Leak != "" {
			marks[st.N] += "L"
		}
		if st.DBSC != "" {
			marks[st.N] += "D"
		}
		if st.Stolen != "" {
			t.Errorf("step %d says the stolen session still works", st.N)
		}
	}
	want := map[int]string{7: "L", 8: "L", 9: "D", 10: "D", 11: "D"}
	for n, m := range want {
		if marks[n] != m {
			t.Errorf("step %d marks %q, want %q (all: %v)", n, marks[n], m, marks)
		}
	}
	if len(marks) != len(want) {
		t.Errorf("marks %v, want %v", marks, want)
	}
	var b bytes.Buffer
	if err := WriteStory(&b, res); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, s := range []string{">>> LEAK: here response #3 hands bob's browser alice's session",
		">>> DBSC: here the delivered session dies", "ended at its TTL", ">>> DBSC: here the recipient's refresh is refused",
		"not signed by the key alice's browser registered", "Step 11.", "Bob's browser's refresh without alice's key: status 400, refused."} {
		if !strings.Contains(text, s) {
			t.Errorf("story lacks %q:\n%s", s, text)
		}
	}
}

// TestDBSCOracle: the same aftermath without dbsc — bob's browser is still
// served as alice at the same time, so the check above can fail.
func TestDBSCOracle(t *testing.T) {
	res, err := Replay(context.Background(), ReplayOptions{Aftermath: true})
	if err != nil {
		t.Fatal(err)
	}
	af := res.Aftermath
	if !res.Leaked || af == nil || !af.StolenUsable || af.Recipient.Status != http.StatusOK || af.Recipient.BodyUser != "alice" {
		t.Fatalf("without dbsc the stolen session must still work past the TTL: %+v", af)
	}
	if af.RecipientRefresh != nil || af.OwnerRefresh != nil {
		t.Errorf("refreshes without dbsc: %+v", af)
	}
	stolen := false
	for _, st := range Story(res) {
		if st.N == 9 && strings.Contains(st.Stolen, "still served as alice") {
			stolen = true
		}
		if st.DBSC != "" {
			t.Errorf("step %d marked dbsc without dbsc", st.N)
		}
	}
	if !stolen {
		t.Error("step 9 does not say the stolen session still works")
	}
	// Without -aftermath the replay is the eight steps, as before.
	res, err = Replay(context.Background(), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Aftermath != nil || len(Story(res)) != 9 {
		t.Errorf("plain replay has an aftermath or %d steps", len(Story(res)))
	}
}

// TestDBSCWithOtherMitigations: with a mitigation that stops the leak,
// nothing is delivered, so nothing is usable; the recipient's refresh is
// refused all the same.
func TestDBSCWithOtherMitigations(t *testing.T) {
	for _, m := range []Mitigations{{DBSC: true, EgressGuard: true}, {DBSC: true, SealedHandles: true}, {DBSC: true, FreshEnv: true}} {
		res, err := Replay(context.Background(), ReplayOptions{Mitigations: m})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		af := res.Aftermath
		if res.Leaked || af == nil || af.StolenUsable || !af.RecipientRefresh.Refused() || af.Owner.BodyUser != "alice" {
			t.Errorf("%s: leaked %v, aftermath %+v", m, res.Leaked, af)
		}
	}
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// liveDBSC serves a composition live (no scheduler) on the test clock.
func liveDBSC(t *testing.T, m Mitigations, clk *testClock) string {
	t.Helper()
	st := memstore.New(memstore.Options{Now: clk.Now})
	srv, err := NewServer(Options{Mitigations: m, Store: st, Now: clk.Now, FailRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(context.Background())
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return ts.URL
}

func jarClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func account(t *testing.T, c *http.Client, base string) (int, string) {
	t.Helper()
	resp, err := c.Get(base + "/account")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b body
	_ = json.NewDecoder(resp.Body).Decode(&b)
	if !b.Authed {
		return resp.StatusCode, ""
	}
	return resp.StatusCode, b.User
}

// TestDBSCLive goes through the protocol against the lab app at full
// speed: log-in offers registration, the browser registers a device key;
// a copy of both cookies works until the bound cookie's TTL and not at
// it; the copy's refresh without the key is refused, the owner's succeeds,
// and the owner's refresh does not bring the copied value back. Without
// dbsc the copy works past the same time.
func TestDBSCLive(t *testing.T) {
	for _, on := range []bool{true, false} {
		clk := &testClock{t: time.Date(2021, 3, 2, 12, 0, 0, 0, time.UTC)}
		base := liveDBSC(t, Mitigations{DBSC: on}, clk)
		owner := jarClient(t)
		resp, err := owner.PostForm(base+"/login", url.Values{"user": {"alice"}, "password": {Password}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		offer := resp.Header.Get(dbsc.HeaderRegistration)
		if (offer != "") != on {
			t.Fatalf("dbsc %v: registration offer %q", on, offer)
		}
		dev := &dbsctest.Browser{HTTP: owner, Key: dbsctest.NewES256()}
		if on {
			if st, err := dev.Register(resp); err != nil || st != http.StatusOK {
				t.Fatalf("register: %d %v", st, err)
			}
			// A second registration with the same offer is refused.
			if st, _ := (&dbsctest.Browser{HTTP: owner, Key: dbsctest.NewES256()}).Register(resp); st != http.StatusBadRequest {
				t.Errorf("reused registration challenge: %d", st)
			}
		}
		// The thief copies every cookie of the owner's browser.
		u, _ := url.Parse(base)
		thief := jarClient(t)
		thief.Jar.SetCookies(u, owner.Jar.Cookies(u))

		clk.add(DBSCTTL - time.Second)
		if st, user := account(t, thief, base); st != http.StatusOK || user != "alice" {
			t.Fatalf("dbsc %v: copy before the TTL: %d %q", on, st, user)
		}
		clk.add(time.Second)
		st, user := account(t, thief, base)
		if !on {
			if st != http.StatusOK || user != "alice" {
				t.Fatalf("without dbsc the copy must work past the TTL: %d %q", st, user)
			}
			continue
		}
		if st != http.StatusUnauthorized || user != "" {
			t.Fatalf("copy at the TTL: %d %q", st, user)
		}
		// The copy's refresh: a 403 challenge, then a proof with another key.
		td := &dbsctest.Browser{HTTP: thief, Key: dbsctest.NewES256(), ID: dev.ID, RefreshURL: dev.RefreshURL}
		if st, cookies, err := td.Refresh(); err != nil || st != http.StatusBadRequest || len(cookies) != 0 {
			t.Errorf("thief refresh: %d %v %v", st, cookies, err)
		}
		// A fresh challenge, then a proof that is not a JWT.
		st1, ch, _, err := td.RefreshWith("")
		if err != nil || st1 != http.StatusForbidden || ch == "" {
			t.Fatalf("challenge: %d %q %v", st1, ch, err)
		}
		if st, _, cookies, _ := td.RefreshWith("garbage proof"); st != http.StatusBadRequest || len(cookies) != 0 {
			t.Errorf("garbage proof: %d %v", st, cookies)
		}
		// Hostile input: not a POST, a malformed id.
		if r, err := thief.Get(base + dbscRefreshPath); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET refresh: %v %v", r, err)
		} else {
			r.Body.Close()
		}
		req, _ := http.NewRequest(http.MethodPost, base+dbscRefreshPath, nil)
		req.Header.Set(dbsc.HeaderSessionID, `"unterminated`)
		if r, err := thief.Do(req); err != nil || r.StatusCode != http.StatusBadRequest {
			t.Errorf("malformed id: %v %v", r, err)
		} else {
			r.Body.Close()
		}
		if st, _ := account(t, thief, base); st != http.StatusUnauthorized {
			t.Errorf("copy after the refused refreshes: %d", st)
		}
		// The owner refreshes with the key and goes on.
		if st, cookies, err := dev.Refresh(); err != nil || st != http.StatusOK || len(cookies) != 1 {
			t.Fatalf("owner refresh: %d %v %v", st, cookies, err)
		}
		if st, user := account(t, owner, base); st != http.StatusOK || user != "alice" {
			t.Errorf("owner after refresh: %d %q", st, user)
		}
		// The copied (old) bound cookie does not come back with the
		// owner's refresh.
		if st, _ := account(t, thief, base); st != http.StatusUnauthorized {
			t.Errorf("copy after the owner's refresh: %d", st)
		}
		// A proof accepted once is stale the second time: a fresh
		// challenge, not a cookie.
		_, ch3, _, err := dev.RefreshWith("")
		if err != nil || ch3 == "" {
			t.Fatalf("owner challenge: %q %v", ch3, err)
		}
		proof := dev.Key.RefreshProof(ch3)
		if st, _, cookies, _ := dev.RefreshWith(proof); st != http.StatusOK || len(cookies) != 1 {
			t.Fatalf("owner proof: %d %v", st, cookies)
		}
		if st, ch4, cookies, _ := dev.RefreshWith(proof); st != http.StatusForbidden || ch4 == "" || ch4 == ch3 || len(cookies) != 0 {
			t.Errorf("stale proof: %d %q %v", st, ch4, cookies)
		}
	}
}

// TestDBSCDiagram: the dbsc replay's story diagram is well-formed and
// shows where dbsc acts (blue bands at steps 9 to 11) besides the leak.
func TestDBSCDiagram(t *testing.T) {
	res, err := Replay(context.Background(), ReplayOptions{Mitigations: Mitigations{DBSC: true}})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteStorySVG(&b, "dbsc", res, nil); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
	}
	for _, s := range []string{`class="leak-step" data-step="7"`, `class="leak-step" data-step="8"`,
		`class="dbsc-step" data-step="9"`, `class="dbsc-step" data-step="10"`, `class="dbsc-step" data-step="11"`, "dbsc acts here", "REFUSED"} {
		if !strings.Contains(svg, s) {
			t.Errorf("diagram lacks %s", s)
		}
	}
}

func TestParseDBSC(t *testing.T) {
	for in, want := range map[string]Mitigations{
		"dbsc":              {DBSC: true},
		"all,dbsc":          {FreshEnv: true, ValueContext: true, IsolatedBackground: true, SealedHandles: true, EgressGuard: true, DBSC: true},
		"dbsc,all":          {FreshEnv: true, ValueContext: true, IsolatedBackground: true, SealedHandles: true, EgressGuard: true, DBSC: true},
		"egress-guard,dbsc": {EgressGuard: true, DBSC: true},
	} {
		m, err := ParseMitigations(in)
		if err != nil || m != want {
			t.Errorf("%q: %+v %v", in, m, err)
		}
		if back, err := ParseMitigations(strings.Join(m.Names(), ",")); err != nil || back != m {
			t.Errorf("%q: round trip %+v %v", in, back, err)
		}
	}
	if AllMitigations().DBSC {
		t.Error(`"all" includes dbsc`)
	}
	if n := len(MatrixCombinations()); n != 33 || !MatrixCombinations()[32].DBSC {
		t.Errorf("matrix combinations: %d", n)
	}
}
