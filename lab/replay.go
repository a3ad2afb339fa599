package lab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/dbsc/dbsctest"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/memstore"
)

// ReplayOptions configures Replay.
type ReplayOptions struct {
	// Mitigations selects the composition (zero: the vulnerable one).
	Mitigations Mitigations
	// Out, if set, receives each step and event as it is executed.
	Out io.Writer
	// Store holds the sessions (default: a fresh in-memory store).
	Store store.Store
	// Now is the clock (default time.Now); Rand the token source (default
	// crypto/rand).
	Now  func() time.Time
	Rand io.Reader
	// Aftermath also replays what comes after the leak (steps 9 to 11):
	// the lab's clock moves on by the bound cookie's TTL (DBSCTTL), bob's
	// browser uses what it received, and alice's browser goes on. With
	// DBSC, bob's browser also tries to refresh the bound cookie and
	// alice's browser refreshes it. Always on with DBSC.
	Aftermath bool
}

// Aftermath is what the steps after the leak observed, read from real
// HTTP responses.
type Aftermath struct {
	// After is how far the lab's clock moved after step 8: the bound
	// cookie's TTL.
	After time.Duration `json:"after_ns"`
	// Recipient is bob's browser's request once that time has passed,
	// with the cookies it holds after response #3.
	Recipient Observed `json:"recipient"`
	// StolenUsable reports whether that request was served as the user
	// whose session response #3 delivered: the stolen session still works.
	StolenUsable bool `json:"stolen_usable"`
	// RecipientRefresh is bob's browser's attempt to refresh the bound
	// cookie with everything of alice's but her key (DBSC only).
	RecipientRefresh *RefreshOutcome `json:"recipient_refresh,omitempty"`
	// OwnerRefresh is alice's browser's refresh with her key (DBSC only).
	OwnerRefresh *RefreshOutcome `json:"owner_refresh,omitempty"`
	// Owner is alice's browser's request after that.
	Owner Observed `json:"owner"`
}

// RefreshOutcome is how a DBSC refresh ended, as the browser saw it.
type RefreshOutcome struct {
	// Status is the final response's status (200: refreshed).
	Status int `json:"status"`
	// NewCookie reports whether that response set a bound cookie.
	NewCookie bool `json:"new_cookie"`
}

// Refused reports whether the refresh brought no bound cookie.
func (r *RefreshOutcome) Refused() bool { return r != nil && (r.Status != 200 || !r.NewCookie) }

// labClock is the replay's clock: the given one, moved on by the
// aftermath.
type labClock struct {
	base func() time.Time
	mu   sync.Mutex
	off  time.Duration
}

func (c *labClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base().Add(c.off)
}

func (c *labClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// ReplayResult is what a replay executed and observed.
type ReplayResult struct {
	Mitigations Mitigations
	// Events is the executed trace.
	Events []Event
	// Responses are requests #1..#3 as their clients received them.
	Responses []Observed
	// Leaked reports whether request #3's client received a session cookie
	// that is not its own: read from #3's actual HTTP response.
	Leaked bool
	// Blocked counts attempts refused by a sealed handle or the guard.
	Blocked int64
	// Reports are the error reports the background delivered.
	Reports []Report
	// Headings are the steps' headings by number.
	Headings map[int]string
	// Aftermath is what steps 9 to 11 observed (nil unless they ran).
	Aftermath *Aftermath
}

// Replay drives a composition through the eight steps of the post-mortem
// with the deterministic scheduler, serving the worker over HTTP on a
// loopback listener, and reads the outcome from request #3's response.
//
// The driver only decides which goroutine runs next and what the clients
// send; everything printed is recorded by the composition's code as it runs,
// and the outcome comes from the response's Set-Cookie and body.
func Replay(ctx context.Context, opt ReplayOptions) (*ReplayResult, error) {
	base := opt.Now
	if base == nil {
		base = time.Now
	}
	clk := &labClock{base: base}
	now := clk.Now
	src := opt.Rand
	if src == nil {
		src = cryptoRand{}
	}
	st := opt.Store
	if st == nil {
		st = memstore.New(memstore.Options{Now: now})
	}
	sched := NewSched(0)
	trace := NewTrace(sched, opt.Out)
	if opt.Out != nil {
		fmt.Fprintf(opt.Out, "replay of the 2021 session mix-up; mitigations: %s\n", opt.Mitigations)
		fmt.Fprintf(opt.Out, "  %3s  %-38s %-18s %-6s %s\n", "#", "goroutine", "object", "op", "what")
	}
	trace.Step(0, "setup: alice and bob have signed in earlier; one worker and its background refresher start")
	h, err := newHarness(opt.Mitigations, st, trace, sched, now, src)
	if err != nil {
		return nil, err
	}
	defer h.close()
	alice, err := createSession(ctx, st, src, now(), "alice")
	if err != nil {
		return nil, err
	}
	h.srv.rt.remember(alice, "alice")
	bob, err := createSession(ctx, st, src, now(), "bob")
	if err != nil {
		return nil, err
	}
	h.srv.rt.remember(bob, "bob")
	trace.Note("store", "write", "sessions: "+h.srv.rt.describe(alice)+", "+h.srv.rt.describe(bob))
	anon, err := h.newBrowser("", "")
	if err != nil {
		return nil, err
	}
	aliceB, err := h.newBrowser("alice", alice)
	if err != nil {
		return nil, err
	}
	bobB, err := h.newBrowser("bob", bob)
	if err != nil {
		return nil, err
	}
	var aliceDev *dbsctest.Browser
	if opt.Mitigations.DBSC {
		if aliceDev, err = registerDevice(h, aliceB, alice); err != nil {
			return nil, err
		}
	}

	res := &ReplayResult{Mitigations: opt.Mitigations}
	run := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	obs := func() error {
		o, e := h.finish()
		if e != nil {
			return e
		}
		res.Responses = append(res.Responses, o)
		trace.Note(fmt.Sprintf("response #%d", o.Request), "read", describeObserved(o))
		return nil
	}

	trace.Step(1, "anonymous request #1 runs; the framework registers its error-context callbacks")
	run(func() error { return h.sendFrom(anon, "GET", "/page") })
	run(obs)

	trace.Step(2, "the background refresher fails; the reporter copies the current context (runs until the background yields)")
	run(func() error { return h.tick(true) })

	trace.Step(3, "signed-in request #2 (alice) starts (runs until it yields)")
	run(func() error { return h.sendFrom(aliceB, "GET", "/account") })
	run(func() error { return h.sched.runUntil(h.req, "request.begin") })

	trace.Step(4, "the background processes the copied context's callbacks (runs until it yields)")
	run(func() error { return h.sched.runUntil(h.bg, "auth.verified", "sleep") })

	trace.Step(5, "request #2 finishes")
	run(obs)

	trace.Step(6, "signed-in request #3 (bob) starts and authenticates (runs until it yields before rendering)")
	run(func() error { return h.sendFrom(bobB, "GET", "/account") })
	run(func() error { return h.sched.runUntil(h.req, "request.render") })

	trace.Step(7, "the background resumes and finishes its work (runs until it sleeps)")
	run(func() error { return h.sched.runUntil(h.bg, "sleep") })

	trace.Step(8, "request #3 finishes; its client reads the response")
	run(obs)
	if err != nil {
		return nil, err
	}
	if opt.Aftermath || opt.Mitigations.DBSC {
		af, err := aftermath(h, clk, trace, opt.Mitigations.DBSC, res.Responses[2], alice, aliceB, bobB, aliceDev)
		if err != nil {
			return nil, err
		}
		res.Aftermath = af
	}
	res.Events = trace.Events()
	res.Headings = trace.Headings()
	res.Leaked = len(res.Responses) == 3 && res.Responses[2].Leaked
	res.Blocked = h.srv.Blocked()
	res.Reports = h.srv.Reports()
	if opt.Out != nil {
		o := res.Responses[2]
		fmt.Fprintf(opt.Out, "\noutcome, read from response #%d: %s\n", o.Request, describeObserved(o))
		if res.Leaked {
			fmt.Fprintf(opt.Out, "LEAK: bob's client now holds %s's session.\n", o.CookieUser)
		} else {
			fmt.Fprintf(opt.Out, "no leak: bob's client did not receive anyone else's session (blocked attempts: %d).\n", res.Blocked)
		}
	}
	return res, nil
}

// registerDevice gives alice's browser a device key and registers it: the
// registration offer her log-in response carried (she signed in before the
// replay), answered over HTTP with a proof signed by the new key.
func registerDevice(h *harness, b *browser, token string) (*dbsctest.Browser, error) {
	offer, err := h.srv.dbsc.offer(store.Fingerprint(token))
	if err != nil {
		return nil, err
	}
	login, err := url.Parse(h.ts.URL + "/login")
	if err != nil {
		return nil, err
	}
	resp := &http.Response{Header: http.Header{dbsc.HeaderRegistration: {offer}}, Request: &http.Request{URL: login}}
	dev := &dbsctest.Browser{HTTP: b.client, Key: dbsctest.NewES256()}
	h.trace.Note("client", "send", "POST "+dbscRegisterPath+" from alice's browser, with a proof signed by the device key (ES256) it has just made")
	var status int
	if err := h.drive(func() error {
		var e error
		status, e = dev.Register(resp)
		return e
	}); err != nil {
		return nil, fmt.Errorf("lab: dbsc registration: %w", err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("lab: dbsc registration: status %d", status)
	}
	return dev, nil
}

// aftermath runs steps 9 to 11: the clock moves on by the bound cookie's
// TTL, bob's browser uses what it holds and (with DBSC) tries to refresh
// it, and alice's browser goes on (with DBSC, refreshing with her key).
func aftermath(h *harness, clk *labClock, trace *Trace, withDBSC bool, third Observed, alice string, aliceB, bobB *browser, aliceDev *dbsctest.Browser) (*Aftermath, error) {
	af := &Aftermath{After: DBSCTTL}
	get := func(b *browser) (Observed, error) {
		if err := h.sendFrom(b, "GET", "/account"); err != nil {
			return Observed{}, err
		}
		o, err := h.finish()
		if err != nil {
			return o, err
		}
		trace.Note(fmt.Sprintf("response #%d", o.Request), "read", describeServed(o))
		return o, nil
	}
	refresh := func(dev *dbsctest.Browser) (*RefreshOutcome, error) {
		out := &RefreshOutcome{}
		err := h.drive(func() error {
			st, cookies, err := dev.Refresh()
			out.Status = st
			for _, c := range cookies {
				if strings.HasPrefix(c, BoundCookieName+"=") {
					out.NewCookie = true
				}
			}
			return err
		})
		return out, err
	}

	trace.Step(9, fmt.Sprintf("the lab's clock moves %s on (the bound cookie's TTL); bob's browser asks for /account with the cookies it holds", DBSCTTL))
	clk.advance(DBSCTTL)
	trace.Note("clock", "write", fmt.Sprintf("the lab's clock moves %s on: nothing else happens meanwhile", DBSCTTL))
	o, err := get(bobB)
	if err != nil {
		return nil, err
	}
	af.Recipient = o
	af.StolenUsable = third.Leaked && o.Status == http.StatusOK && o.BodyUser != "" && o.BodyUser == third.CookieUser

	if withDBSC {
		trace.Step(10, "bob's browser tries to refresh the bound cookie: it holds alice's cookies and is given her DBSC session id, but signs with its own device key")
		thief := &dbsctest.Browser{HTTP: bobB.client, Key: dbsctest.NewES256(), ID: h.srv.dbsc.bindingID(store.Fingerprint(alice)), RefreshURL: aliceDev.RefreshURL}
		trace.Note("client", "send", "POST "+dbscRefreshPath+" from bob's browser for alice's DBSC session, then a proof signed with bob's own device key")
		if af.RecipientRefresh, err = refresh(thief); err != nil {
			return nil, err
		}
		trace.Note("refresh", "read", describeRefresh("bob's browser", af.RecipientRefresh))
	} else {
		trace.Step(10, "bob's browser has nothing to refresh")
		trace.Note("clock", "read", "no DBSC: the session cookie alone is the credential, and it lives until the session's own timeout")
	}

	if withDBSC {
		trace.Step(11, "alice's browser, which holds the key, refreshes its bound cookie and asks for /account")
		trace.Note("client", "send", "POST "+dbscRefreshPath+" from alice's browser, then a proof signed with alice's device key")
		if af.OwnerRefresh, err = refresh(aliceDev); err != nil {
			return nil, err
		}
		trace.Note("refresh", "read", describeRefresh("alice's browser", af.OwnerRefresh))
	} else {
		trace.Step(11, "alice's browser asks for /account")
	}
	if af.Owner, err = get(aliceB); err != nil {
		return nil, err
	}
	return af, nil
}

func describeRefresh(who string, r *RefreshOutcome) string {
	if r.Refused() {
		return fmt.Sprintf("%s's refresh: status %d, no bound cookie → REFUSED", who, r.Status)
	}
	return fmt.Sprintf("%s's refresh: status %d, a new bound cookie → refreshed", who, r.Status)
}

// describeServed says whom a response served.
func describeServed(o Observed) string {
	s := fmt.Sprintf("status %d", o.Status)
	if o.BodyUser != "" {
		s += fmt.Sprintf(", served as %s", o.BodyUser)
	} else {
		s += ", not served as anyone"
	}
	if o.Error != "" {
		s += " (" + o.Error + ")"
	}
	return s
}

func describeObserved(o Observed) string {
	s := fmt.Sprintf("status %d, body user %q", o.Status, o.BodyUser)
	if o.CookieFP == "" {
		s += ", no session cookie"
	} else {
		s += fmt.Sprintf(", Set-Cookie session %s of %s", o.CookieFP[:8], orAnon(o.CookieUser))
		if o.Bound {
			s += " with its bound cookie"
		}
	}
	if o.Leaked {
		s += " → WRONG SESSION"
	}
	return s
}
