package lab

import (
	"context"
	"fmt"
	"io"
	"time"

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
}

// Replay drives a composition through the eight steps of the post-mortem
// with the deterministic scheduler, serving the worker over HTTP on a
// loopback listener, and reads the outcome from request #3's response.
//
// The driver only decides which goroutine runs next and what the clients
// send; everything printed is recorded by the composition's code as it runs,
// and the outcome comes from the response's Set-Cookie and body.
func Replay(ctx context.Context, opt ReplayOptions) (*ReplayResult, error) {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
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
	run(func() error { return h.send("GET", "/page", "", "", nil) })
	run(obs)

	trace.Step(2, "the background refresher fails; the reporter copies the current context (runs until the background yields)")
	run(func() error { return h.tick(true) })

	trace.Step(3, "signed-in request #2 (alice) starts (runs until it yields)")
	run(func() error { return h.send("GET", "/account", alice, "alice", nil) })
	run(func() error { return h.sched.runUntil(h.req, "request.begin") })

	trace.Step(4, "the background processes the copied context's callbacks (runs until it yields)")
	run(func() error { return h.sched.runUntil(h.bg, "auth.verified", "sleep") })

	trace.Step(5, "request #2 finishes")
	run(obs)

	trace.Step(6, "signed-in request #3 (bob) starts and authenticates (runs until it yields before rendering)")
	run(func() error { return h.send("GET", "/account", bob, "bob", nil) })
	run(func() error { return h.sched.runUntil(h.req, "request.render") })

	trace.Step(7, "the background resumes and finishes its work (runs until it sleeps)")
	run(func() error { return h.sched.runUntil(h.bg, "sleep") })

	trace.Step(8, "request #3 finishes; its client reads the response")
	run(obs)
	if err != nil {
		return nil, err
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

func describeObserved(o Observed) string {
	s := fmt.Sprintf("status %d, body user %q", o.Status, o.BodyUser)
	if o.CookieFP == "" {
		s += ", no session cookie"
	} else {
		s += fmt.Sprintf(", Set-Cookie session %s of %s", o.CookieFP[:8], orAnon(o.CookieUser))
	}
	if o.Leaked {
		s += " → WRONG SESSION"
	}
	return s
}
