package lab

import (
	"context"
	"errors"
	"testing"
	"time"
)

// serveForTest starts Serve on a free loopback port and returns its URL.
func serveForTest(t *testing.T, m Mitigations) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ServeOptions{Addr: "127.0.0.1:0", Mitigations: m, Ready: func(u string) { ready <- u }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case u := <-ready:
		return u
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not become ready")
	}
	return ""
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
