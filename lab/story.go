package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Link is one link of the chain that hands bob alice's session: a thing the
// vulnerable composition's code does, recognised in a trace by the event the
// code recorded when it did it. Break one link and the later ones cannot
// happen.
type Link struct {
	// N numbers the links from 1, in the order they happen.
	N int `json:"n"`
	// Step is the post-mortem step at which it happens.
	Step int `json:"step"`
	// Name is a short name ("lazy callback").
	Name string `json:"name"`
	// What says, in plain words, what the code does.
	What string `json:"what"`

	match func(e Event) bool
}

// Chain lists the links in order.
var Chain = []Link{
	{N: 1, Step: 1, Name: "lazy callback",
		What: "the error reporter's one current context holds a callback into request #1's controller",
		match: func(e Event) bool {
			return e.Object == "reporter" && e.Op == "write" && strings.HasPrefix(e.Detail, "current context = context of request #1:") && !strings.Contains(e.Detail, " 0 callback")
		}},
	{N: 2, Step: 2, Name: "copied context",
		What: "the background copies that context, callback included, to report its own error",
		match: func(e Event) bool {
			return e.Lane == "background" && e.Object == "reporter" && e.Op == "copy" && strings.HasPrefix(e.Detail, "copy current context: context of request #1:") && !strings.Contains(e.Detail, " 0 callback")
		}},
	{N: 3, Step: 4, Name: "shared env",
		What: "the late controller reads a session cookie out of the env — the worker's one env, which by now holds another request's cookie",
		match: func(e Event) bool {
			return e.Lane == "background" && strings.HasPrefix(e.Object, "env") && e.Op == "read" && strings.HasPrefix(e.Detail, showCookie+" → session ")
		}},
	{N: 4, Step: 7, Name: "foreign write",
		What: "the late controller writes that session into the cookie jar it finds in the env now: another request's",
		match: func(e Event) bool {
			return e.Lane == "background" && strings.HasPrefix(e.Object, "jar") && e.Op == "write" && strings.HasPrefix(e.Detail, "Set ")
		}},
	{N: 5, Step: 8, Name: "delivered",
		What: "the response carries a session cookie that belongs to someone other than its client",
		match: func(e Event) bool {
			return e.Lane == "driver" && strings.HasPrefix(e.Object, "response") && strings.Contains(e.Detail, "WRONG SESSION")
		}},
}

// stepStory tells each post-mortem step in plain words.
var stepStory = map[int]string{
	0: "Alice and bob signed in earlier. One worker serves requests one at a time, with one env (the request's data) that it clears and refills for every request; a background goroutine refreshes feature flags.",
	1: "An anonymous visitor's request (#1) is served. To enrich error reports, the framework puts into the error reporter's one current context a callback that will ask request #1's controller who the user is — later, only if a report is made.",
	2: "In the background, the feature-flag refresh fails (a query timeout). To report it, the reporter copies its current context: request #1's, callback included.",
	3: "Alice's request (#2) starts. The worker clears its one env and refills it: the env now holds alice's session cookie.",
	4: "The background runs the copied callback. Request #1's controller never authenticated (its page did not need to), so it does now: it reads the session cookie from the env it was given — the worker's one env, which now holds alice's cookie — and the store answers \"alice\". It pauses there, as a store round trip would.",
	5: "Alice's request (#2) finishes normally.",
	6: "Bob's request (#3) starts and authenticates as bob. The env now holds bob's cookie and request #3's cookie jar.",
	7: "The background resumes: request #1's controller finishes authenticating by writing the session it found — alice's — into the cookie jar it finds in the env now. That jar is request #3's.",
	8: "Request #3's response goes out. Its page is bob's, but its Set-Cookie is whatever is in its jar.",
}

// afterStory tells the steps after the leak (ReplayOptions.Aftermath),
// with DBSC on and off.
var afterStory = map[bool]map[int]string{
	true: {
		0:  "Alice and bob signed in earlier, and alice's browser, which speaks DBSC, made a device key and registered it: her session is device-bound, served only with a short-lived bound cookie that her browser renews by signing a challenge with that key. One worker serves requests one at a time, with one env (the request's data) that it clears and refills for every request; a background goroutine refreshes feature flags.",
		9:  "Five minutes later — the bound cookie's TTL, on the lab's clock — bob's browser asks for its account page with what it holds since response #3: alice's session cookie and her bound cookie.",
		10: "Bob's browser tries to refresh the bound cookie. It has everything of alice's the mis-delivery could hand it, and is even given her DBSC session id; what it lacks is her private key, which never left her browser.",
		11: "Alice's browser, whose bound cookie ended too, refreshes it: the server challenges, her browser signs with her key, the server sets a new bound cookie, and she goes on.",
	},
	false: {
		9:  "Five minutes later — as long as a DBSC bound cookie would live — bob's browser asks for its account page with what it holds since response #3: alice's session cookie.",
		10: "Bob's browser has nothing to refresh: without device binding, the session cookie alone is the credential.",
		11: "Alice's browser goes on with her session.",
	},
}

// StoryStep is one step of a replay told in plain words.
type StoryStep struct {
	N     int    `json:"n"`
	Story string `json:"story"`
	// Did lists what the code did at this step, event by event, in plain
	// words (scheduler bookkeeping left out).
	Did []string `json:"did"`
	// Leak marks the step whose code put another user's session into a
	// response's cookie jar, and the step whose response delivered it.
	Leak string `json:"leak,omitempty"`
	// Break marks the step at which a mitigation broke the chain: which
	// link did not happen, and what the code did instead.
	Break string `json:"break,omitempty"`
	// DBSC marks the steps after the leak where device binding acts: the
	// delivered session stops working at the bound cookie's TTL, its
	// refresh is refused, its owner's succeeds.
	DBSC string `json:"dbsc,omitempty"`
	// Stolen marks, without DBSC, the step after the leak where the
	// delivered session still works.
	Stolen string `json:"stolen,omitempty"`
}

// Break is where a replay's chain breaks: the first link of Chain that its
// trace does not show.
type Break struct {
	// Link is the link that did not happen (nil when the whole chain
	// happened, which means the replay leaked).
	Link *Link `json:"link,omitempty"`
	// Step is the step at which it would have happened.
	Step int `json:"step"`
	// Instead is what the code did at that step instead (an event).
	Instead string `json:"instead,omitempty"`
}

// ChainBreak returns where res's chain breaks.
func ChainBreak(res *ReplayResult) Break {
	for i := range Chain {
		l := &Chain[i]
		if findEvent(res.Events, l.match) == nil {
			return Break{Link: l, Step: l.Step, Instead: instead(res.Events, l)}
		}
	}
	return Break{}
}

func findEvent(events []Event, f func(Event) bool) *Event {
	for i := range events {
		if f(events[i]) {
			return &events[i]
		}
	}
	return nil
}

// instead finds, at the step of the missing link, the event that took its
// place: a refusal, or the same kind of act done harmlessly.
func instead(events []Event, l *Link) string {
	var kind func(Event) bool
	switch l.N {
	case 1:
		kind = func(e Event) bool { return e.Object == "reporter" && e.Step == 1 }
	case 2:
		kind = func(e Event) bool { return e.Lane == "background" && e.Object == "reporter" && e.Op == "copy" }
	case 3:
		kind = func(e Event) bool {
			return e.Lane == "background" && strings.HasPrefix(e.Object, "env") && e.Op == "read"
		}
	case 4:
		kind = func(e Event) bool { return e.Lane == "background" && strings.HasPrefix(e.Object, "jar") }
	default:
		kind = func(e Event) bool { return e.Object == "guard" || strings.HasPrefix(e.Object, "response #3") }
	}
	if e := findEvent(events, func(e Event) bool { return e.Step == l.Step && e.Op == "block" }); e != nil {
		return plainEvent(*e)
	}
	if e := findEvent(events, kind); e != nil {
		return plainEvent(*e)
	}
	return ""
}

// Story tells res step by step: what happened in plain words, what the
// code did, where the wrong session is written and delivered, and where a
// mitigation broke the chain.
func Story(res *ReplayResult) []StoryStep {
	steps := make([]StoryStep, 0, 9)
	byStep := map[int][]Event{}
	for _, e := range res.Events {
		byStep[e.Step] = append(byStep[e.Step], e)
	}
	br := ChainBreak(res)
	write := findEvent(res.Events, Chain[3].match)
	last := 8
	if res.Aftermath != nil {
		last = 11
	}
	withDBSC := res.Mitigations.DBSC
	for n := 0; n <= last; n++ {
		if n > 8 && len(byStep[n]) == 0 {
			continue
		}
		st := StoryStep{N: n, Story: stepStory[n], Did: []string{}}
		if t, ok := afterStory[withDBSC][n]; ok && (n > 0 || withDBSC) {
			st.Story = t
		}
		for _, e := range byStep[n] {
			if e.Object == "scheduler" {
				continue
			}
			st.Did = append(st.Did, plainEvent(e))
		}
		if res.Leaked && len(res.Responses) == 3 {
			o := res.Responses[2]
			if write != nil && n == write.Step {
				st.Leak = fmt.Sprintf("here %s's session is written into %s — the jar of %s's request", o.CookieUser, plainObject(write.Object), o.BodyUser)
			}
			if n == 8 {
				st.Leak = fmt.Sprintf("here response #3 hands %s's browser %s's session: the page says %s, the cookie is %s's", o.BodyUser, o.CookieUser, o.BodyUser, o.CookieUser)
			}
		}
		if br.Link != nil && n == br.Step {
			st.Break = fmt.Sprintf("the chain breaks here: link %d, %s (%s), does not happen", br.Link.N, br.Link.Name, br.Link.What)
			if br.Instead != "" {
				st.Break += "; instead: " + br.Instead
			}
		}
		if af := res.Aftermath; af != nil {
			markAftermath(&st, res, af)
		}
		steps = append(steps, st)
	}
	return steps
}

// markAftermath marks what steps 9 to 11 showed, read from their responses.
func markAftermath(st *StoryStep, res *ReplayResult, af *Aftermath) {
	third := res.Responses[2]
	stolen := "alice"
	if third.Leaked {
		stolen = third.CookieUser
	}
	switch st.N {
	case 9:
		o := af.Recipient
		switch {
		case af.StolenUsable && res.Mitigations.DBSC:
			st.DBSC = fmt.Sprintf("bob's browser is still served as %s past the bound cookie's TTL: device binding did not hold", stolen)
		case af.StolenUsable:
			st.Stolen = fmt.Sprintf("bob's browser is still served as %s, %s after the leak (response #%d, status %d): nothing ends a delivered bearer session before its own timeout", stolen, af.After, o.Request, o.Status)
		case res.Mitigations.DBSC && third.Leaked:
			st.DBSC = fmt.Sprintf("here the delivered session dies: %s's bound cookie ended at its TTL (%s), so response #%d serves bob's browser as no one (status %d)", stolen, af.After, o.Request, o.Status)
		}
	case 10:
		if r := af.RecipientRefresh; r != nil {
			if r.Refused() {
				st.DBSC = fmt.Sprintf("here the recipient's refresh is refused (status %d, no bound cookie): its proof is not signed by the key %s's browser registered", r.Status, stolen)
			} else {
				st.DBSC = fmt.Sprintf("bob's browser refreshed %s's bound cookie without her key (status %d): device binding did not hold", stolen, r.Status)
			}
		}
	case 11:
		if r := af.OwnerRefresh; r != nil {
			if !r.Refused() && af.Owner.BodyUser == "alice" {
				st.DBSC = fmt.Sprintf("the owner's browser, holding the key, refreshes (status %d, a new bound cookie) and is served as alice (response #%d)", r.Status, af.Owner.Request)
			} else {
				st.DBSC = fmt.Sprintf("alice's own refresh failed (status %d) or she was not served (response #%d, status %d)", r.Status, af.Owner.Request, af.Owner.Status)
			}
		}
	}
}

// WriteStory prints res as a story.
func WriteStory(w io.Writer, res *ReplayResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "The 2021 session mix-up, replayed step by step (mitigations: %s).\n", res.Mitigations)
	b.WriteString("Every line under \"the code did\" was recorded by the code as it ran; the outcome is read from response #3.\n")
	for _, st := range Story(res) {
		if st.N == 0 {
			fmt.Fprintf(&b, "\nBefore: %s\n", wrap(st.Story, 78, "  "))
		} else {
			fmt.Fprintf(&b, "\nStep %d. %s\n", st.N, wrap(st.Story, 78, "  "))
		}
		if len(st.Did) > 0 {
			b.WriteString("  the code did:\n")
			for _, d := range st.Did {
				fmt.Fprintf(&b, "    - %s\n", d)
			}
		}
		if st.Leak != "" {
			fmt.Fprintf(&b, "  >>> LEAK: %s\n", st.Leak)
		}
		if st.Break != "" {
			fmt.Fprintf(&b, "  >>> %s\n", wrap(st.Break, 74, "      "))
		}
		if st.DBSC != "" {
			fmt.Fprintf(&b, "  >>> DBSC: %s\n", wrap(st.DBSC, 72, "      "))
		}
		if st.Stolen != "" {
			fmt.Fprintf(&b, "  >>> STILL WORKS: %s\n", wrap(st.Stolen, 66, "      "))
		}
	}
	o := res.Responses[len(res.Responses)-1]
	fmt.Fprintf(&b, "\nOutcome, read from response #%d: %s.\n", o.Request, describeObserved(o))
	if res.Leaked {
		fmt.Fprintf(&b, "LEAK: bob's browser now holds %s's session.\n", o.CookieUser)
	} else {
		fmt.Fprintf(&b, "No leak: bob's browser did not receive anyone else's session (attempts refused: %d).\n", res.Blocked)
	}
	if af := res.Aftermath; af != nil {
		fmt.Fprintf(&b, "After %s (response #%d): bob's browser is %s", af.After, af.Recipient.Request, describeServed(af.Recipient))
		if af.StolenUsable {
			b.WriteString(" → the stolen session still works")
		}
		b.WriteString(".\n")
		if r := af.RecipientRefresh; r != nil {
			fmt.Fprintf(&b, "Bob's browser's refresh without alice's key: status %d, %s.\n", r.Status, map[bool]string{true: "refused", false: "NOT refused"}[r.Refused()])
		}
		if r := af.OwnerRefresh; r != nil {
			fmt.Fprintf(&b, "Alice's browser's refresh with her key: status %d, %s.\n", r.Status, map[bool]string{true: "refused", false: "refreshed"}[r.Refused()])
		}
		fmt.Fprintf(&b, "Alice's browser after that (response #%d): %s.\n", af.Owner.Request, describeServed(af.Owner))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// plainEvent says what an event did, in plain words.
func plainEvent(e Event) string {
	who := "the client"
	switch e.Lane {
	case "request":
		who = "request goroutine"
		if _, n, ok := strings.Cut(e.Actor, "serving "); ok {
			who += " (" + n + ")"
		}
	case "background":
		who = "background goroutine"
	}
	verb := map[string]string{
		"read": "reads", "write": "writes", "clear": "clears", "copy": "copies", "call": "calls",
		"block": "refuses", "pass": "lets through", "send": "sends",
	}[e.Op]
	if verb == "" {
		verb = e.Op
	}
	if e.Lane == "driver" {
		switch {
		case e.Object == "client":
			return "the client sends " + e.Detail
		case e.Object == "store":
			return "setup: " + e.Detail
		case e.Object == "clock":
			return e.Detail
		case e.Object == "refresh":
			return "the client reads the refresh's answer: " + e.Detail
		}
	}
	return fmt.Sprintf("%s %s %s: %s", who, verb, plainObject(e.Object), e.Detail)
}

// plainObject names a traced object in plain words.
func plainObject(o string) string {
	switch {
	case strings.HasPrefix(o, "env(w"):
		return "the worker's one env"
	case strings.HasPrefix(o, "env(#"):
		return "request " + strings.TrimSuffix(strings.TrimPrefix(o, "env("), ")") + "'s own env"
	case strings.HasPrefix(o, "jar(#"):
		return "request " + strings.TrimSuffix(strings.TrimPrefix(o, "jar("), ")") + "'s cookie jar"
	case strings.HasPrefix(o, "controller#"):
		return "controller #" + strings.TrimPrefix(o, "controller#")
	case o == "store":
		return "the session store"
	case o == "reporter":
		return "the error reporter"
	case o == "guard":
		return "cordon's egress guard"
	case o == "flags":
		return "the feature flags"
	case o == "dbsc":
		return "the app's device-binding code"
	}
	return o
}

// wrap folds s at width, indenting continuation lines.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 {
			if n+1+len(w) > width {
				b.WriteString("\n" + indent)
				n = len(indent)
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// MitigationBreak is where one mitigation, alone, breaks the chain.
type MitigationBreak struct {
	Mitigation string `json:"mitigation"`
	Break      Break  `json:"break"`
	Leaked     bool   `json:"leaked"`
}

// SingleBreaks replays each mitigation alone and says where it breaks the
// chain, in table order.
func SingleBreaks(ctx context.Context) ([]MitigationBreak, error) {
	var out []MitigationBreak
	for i, name := range mitigationNames {
		var m Mitigations
		m.set(i, true)
		res, err := Replay(ctx, ReplayOptions{Mitigations: m})
		if err != nil {
			return nil, err
		}
		out = append(out, MitigationBreak{Mitigation: name, Break: ChainBreak(res), Leaked: res.Leaked})
	}
	return out, nil
}
