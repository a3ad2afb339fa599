package lab

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cordon-sec/cordon/store"
)

func TestReplayBaselineLeaks(t *testing.T) {
	var out bytes.Buffer
	seed := [32]byte{1, 2, 3}
	res, err := Replay(context.Background(), ReplayOptions{Out: &out, Rand: rand.NewChaCha8(seed)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Leaked {
		t.Fatalf("baseline replay did not leak: %+v\n%s", res.Responses, out.String())
	}
	r3 := res.Responses[2]
	if r3.BodyUser != "bob" || r3.CookieUser != "alice" {
		t.Fatalf("response #3: body %q cookie %q, want body bob and alice's cookie", r3.BodyUser, r3.CookieUser)
	}
	// #2 itself was served correctly (its cookie unchanged, so not sent
	// again): only #3 got the wrong cookie.
	if r2 := res.Responses[1]; r2.Leaked || r2.CookieFP != "" || r2.BodyUser != "alice" {
		t.Fatalf("response #2 = %+v", r2)
	}
	// The executed trace shows the mechanism: the background goroutine
	// read alice's cookie from the shared env and wrote it into #3's jar.
	var readEnv, wroteJar bool
	for _, e := range res.Events {
		if e.Lane == "background" && e.Object == "env(w1)" && e.Op == "read" && strings.Contains(e.Detail, "(alice)") && e.Step == 4 {
			readEnv = true
		}
		if e.Lane == "background" && e.Object == "jar(#3)" && e.Op == "write" && strings.Contains(e.Detail, "(alice)") && e.Step == 7 {
			wroteJar = true
		}
	}
	if !readEnv || !wroteJar {
		t.Fatalf("trace lacks the background's read of the shared env (%v) or its write into jar #3 (%v):\n%s", readEnv, wroteJar, out.String())
	}
	// The delivered report carries request #1's context, resolved to alice.
	if len(res.Reports) != 1 || res.Reports[0].Fields["user"] != "alice" || res.Reports[0].Fields["request"] != "1" {
		t.Fatalf("reports = %+v", res.Reports)
	}
	// The same seeded source gives the tokens alice and bob got: neither
	// may appear in what the replay printed or recorded.
	src := rand.NewChaCha8(seed)
	for _, who := range []string{"alice", "bob"} {
		tok, err := newToken(src)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), tok) {
			t.Fatalf("the printed replay contains %s's token", who)
		}
		for _, e := range res.Events {
			if strings.Contains(e.Detail, tok) {
				t.Fatalf("event %d contains %s's token", e.N, who)
			}
		}
		if !strings.Contains(out.String(), store.Fingerprint(tok)[:8]) {
			t.Fatalf("the replay never names %s's session by fingerprint", who)
		}
	}
}

func TestReplayEachMitigationAloneStopsTheLeak(t *testing.T) {
	for _, name := range MitigationNames() {
		t.Run(name, func(t *testing.T) {
			m, err := ParseMitigations(name)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			res, err := Replay(context.Background(), ReplayOptions{Mitigations: m, Out: &out})
			if err != nil {
				t.Fatal(err)
			}
			if res.Leaked {
				t.Fatalf("%s alone: replay leaked\n%s", name, out.String())
			}
			r3 := res.Responses[2]
			switch name {
			case "egress-guard":
				// The wrong cookie was written and then stopped at egress.
				if r3.Status != 500 || r3.CookieFP != "" || res.Blocked == 0 {
					t.Fatalf("guard: response #3 = %+v, blocked %d\n%s", r3, res.Blocked, out.String())
				}
			case "sealed-handles":
				// The late callback was refused by request #1's handle.
				if res.Blocked == 0 || len(res.Reports) != 1 || !strings.Contains(res.Reports[0].Fields["user"], "ended") {
					t.Fatalf("sealed: blocked %d reports %+v\n%s", res.Blocked, res.Reports, out.String())
				}
				if r3.Status != 200 || r3.BodyUser != "bob" {
					t.Fatalf("sealed: response #3 = %+v", r3)
				}
			default:
				// The attempt never happens: bob is served normally.
				if r3.Status != 200 || r3.BodyUser != "bob" || res.Blocked != 0 {
					t.Fatalf("%s: response #3 = %+v blocked %d\n%s", name, r3, res.Blocked, out.String())
				}
				if len(res.Reports) != 1 || res.Reports[0].Fields["user"] == "alice" {
					t.Fatalf("%s: the background's report named alice: %+v", name, res.Reports)
				}
				if name == "value-context" {
					// cordon's report refused the controller callback, and the
					// report made through request #1's ended scope is stale
					// and carries nothing of it.
					refused := false
					for _, e := range res.Events {
						refused = refused || (e.Object == "reporter" && e.Op == "block" && strings.Contains(e.Detail, "func"))
					}
					if !refused || res.Reports[0].Fields["stale"] == "" || res.Reports[0].Fields["path"] != "" {
						t.Fatalf("value-context: refused callback %v, report %+v", refused, res.Reports[0])
					}
				}
			}
		})
	}
}
