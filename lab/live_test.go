package lab

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
)

// serveForTest starts Serve on a free loopback port and returns its URL; it
// stops at the end of the test.
func serveForTest(t *testing.T, m Mitigations) string {
	u, stop := serveLogged(t, m, nil)
	t.Cleanup(stop)
	return u
}

// serveLogged starts Serve with a request log; stop ends it and waits.
func serveLogged(t *testing.T, m Mitigations, log *reqlog.Writer) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{Addr: "127.0.0.1:0", Mitigations: m, Log: log, Ready: func(u string) { ready <- u }})
	}()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	select {
	case u := <-ready:
		return u, stop
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not become ready")
	}
	return "", nil
}

func TestLiveVulnerableShowsCrossings(t *testing.T) {
	u := serveForTest(t, Mitigations{})
	res, err := Attack(context.Background(), AttackOptions{URL: u, Requests: 600, Duration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vulnerable: %+v", res)
	if res.Crossings == 0 {
		t.Fatalf("no crossings against the vulnerable server: %+v", res)
	}
	for _, c := range res.Examples {
		if c.CookieUser == c.As || (c.BodyUser != "" && c.CookieUser == c.BodyUser) {
			t.Errorf("example is not a crossing: %+v", c)
		}
	}
}

func TestLiveHardenedShowsNone(t *testing.T) {
	u := serveForTest(t, AllMitigations())
	res, err := Attack(context.Background(), AttackOptions{URL: u, Requests: 600, Duration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hardened: %+v", res)
	if res.Crossings != 0 || res.Errors != 0 {
		t.Fatalf("hardened server: %+v", res)
	}
	if res.Requests != 600 {
		t.Fatalf("attack answered %d of 600 requests", res.Requests)
	}
}

func TestServeRefusesNonLoopback(t *testing.T) {
	err := Serve(context.Background(), ServeOptions{Addr: "0.0.0.0:0"})
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("Serve on 0.0.0.0 = %v, want ErrNotLoopback", err)
	}
}

// TestLiveRequestLogShowsTheSignature: the request log of the vulnerable
// server carries the incident's signature (the body rendered for one user,
// the cookie set for another's session); the hardened server's has none.
func TestLiveRequestLogShowsTheSignature(t *testing.T) {
	for _, tc := range []struct {
		m    Mitigations
		want bool
	}{{Mitigations{}, true}, {AllMitigations(), false}} {
		var buf bytes.Buffer
		w := reqlog.NewWriter(&buf, reqlog.WriterOptions{})
		u, stop := serveLogged(t, tc.m, w)
		res, err := Attack(context.Background(), AttackOptions{URL: u, Requests: 400, Duration: 20 * time.Second})
		stop()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		lines, err := reqlog.ReadLines(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) < 400 {
			t.Fatalf("%s: %d log lines for %d requests", tc.m, len(lines), res.Requests)
		}
		crossed := 0
		for _, l := range lines {
			if l.SidOut != "" && l.UidOut != l.UidIn && (l.UidView == "" || l.UidOut != l.UidView) && l.Event != "login" && l.Path != "/login" {
				crossed++
			}
		}
		if (crossed > 0) != tc.want {
			t.Errorf("%s: %d log lines with another user's session out (attack saw %d crossings)", tc.m, crossed, res.Crossings)
		}
	}
}
