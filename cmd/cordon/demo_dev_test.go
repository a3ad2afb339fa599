package main

import (
	"bytes"
	"testing"
)

// TestDemoDevFlag: development mode is on by default only on a loopback
// address, and -dev=false switches it off there (behind a TLS proxy).
func TestDemoDevFlag(t *testing.T) {
	env := &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	for _, tc := range []struct {
		args []string
		dev  bool
	}{
		{nil, true},
		{[]string{"-addr", "localhost:0"}, true},
		{[]string{"-addr", "[::1]:0"}, true},
		{[]string{"-addr", "0.0.0.0:8080"}, false},
		{[]string{"-addr", "192.0.2.1:8080"}, false},
		{[]string{"-dev=false"}, false},
		{[]string{"-addr", "0.0.0.0:8080", "-dev"}, true},
	} {
		c, err := parseDemoFlags(env, tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if c.dev != tc.dev {
			t.Errorf("%q: dev = %v, want %v", tc.args, c.dev, tc.dev)
		}
		if want := map[bool]string{true: "session", false: "__Host-session"}[tc.dev]; sessionCookieName(c.dev) != want {
			t.Errorf("%q: cookie name %q, want %q", tc.args, sessionCookieName(c.dev), want)
		}
	}
}
