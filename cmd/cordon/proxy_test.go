package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/dbsc/dbsctest"
	"github.com/cordon-sec/cordon/internal/h1"
	"github.com/cordon-sec/cordon/proxy"
)

func TestProxyFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-upstream", "ftp://x", "-session-cookie", "sid"},
		{"-upstream", "http://127.0.0.1:1"},
		{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid", "-store", "mongodb://x"},
		{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid", "-mode", "maybe"},
		{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid", "-max-bindings", "0"},
		{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid", "-binding-idle", "-1h"},
		{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid", "-store", "sqlite:"},
		{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid", "stray"},
	} {
		var stderr bytes.Buffer
		err := Run(context.Background(), &Env{Stdout: io.Discard, Stderr: &stderr}, append([]string{"proxy"}, args...))
		if !errors.Is(err, errUsage) {
			t.Errorf("cordon proxy %v: %v, want a usage error", args, err)
		}
	}
	// A Redis store that is not there is an error at start, not a proxy
	// that fails open later.
	err := Run(context.Background(), &Env{Stdout: io.Discard, Stderr: io.Discard},
		[]string{"proxy", "-upstream", "http://127.0.0.1:1", "-session-cookie", "sid", "-store", "redis://127.0.0.1:1/0", "-listen", "127.0.0.1:0"})
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "redis") {
		t.Errorf("an unreachable Redis store: %v", err)
	}
}

// TestParseProxy: -dev is off unless given, the binding limits take
// their documented defaults.
func TestParseProxy(t *testing.T) {
	env := &Env{Stdout: io.Discard, Stderr: io.Discard}
	cfg, err := parseProxy(env, []string{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.opt.Dev || cfg.limits != (proxy.Limits{MaxIssued: proxy.DefaultMaxIssued, MaxPresented: proxy.DefaultMaxPresented, Idle: proxy.DefaultIdle}) {
		t.Fatalf("defaults: dev %v, limits %+v", cfg.opt.Dev, cfg.limits)
	}
	cfg, err = parseProxy(env, []string{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid", "-dev", "-max-bindings", "10", "-max-presented", "5", "-binding-idle", "30m"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.opt.Dev || cfg.limits != (proxy.Limits{MaxIssued: 10, MaxPresented: 5, Idle: 30 * time.Minute}) {
		t.Fatalf("dev %v, limits %+v", cfg.opt.Dev, cfg.limits)
	}
}

func TestProxyServes(t *testing.T) {
	for _, dev := range []bool{false, true} {
		testProxyServes(t, dev)
	}
}

func testProxyServes(t *testing.T, dev bool) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "s1", Path: "/"})
		io.WriteString(w, "app")
	}))
	defer up.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logPath := filepath.Join(t.TempDir(), "requests.log")
	go func() {
		done <- Run(ctx, &Env{Stdout: io.Discard, Stderr: io.Discard, Ready: func(u string) { ready <- u }},
			[]string{"proxy", "-listen", "127.0.0.1:0", "-upstream", up.URL, "-session-cookie", "sid",
				"-store", "sqlite:" + filepath.Join(t.TempDir(), "bindings.db"), "-log", logPath, fmt.Sprintf("-dev=%v", dev)})
	}()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("cordon proxy ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("cordon proxy did not start")
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var names []string
	for _, c := range resp.Cookies() {
		names = append(names, fmt.Sprintf("%s/%v", c.Name, c.Secure))
	}
	want := "sid/false,__Host-cordon-dev/true"
	if dev {
		want = "sid/false,cordon-dev/false"
	}
	if string(body) != "app" || strings.Join(names, ",") != want {
		t.Fatalf("through the proxy (-dev=%v): %q, cookies %v, want %s", dev, body, names, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestProxyDBSCFlags(t *testing.T) {
	env := &Env{Stdout: io.Discard, Stderr: io.Discard}
	base := []string{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid"}
	for _, extra := range [][]string{{"-dbsc-ttl", "5m"}, {"-dbsc", "-dbsc-ttl", "10s"}, {"-dbsc", "-dbsc-ttl", "-1m"}, {"-dbsc-max-sessions", "5"}, {"-dbsc", "-dbsc-max-sessions", "0"}} {
		if _, err := parseProxy(env, append(base, extra...)); !errors.Is(err, errUsage) {
			t.Errorf("cordon proxy %v: %v, want a usage error", extra, err)
		}
	}
	cfg, err := parseProxy(env, base)
	if err != nil || cfg.opt.DBSC != nil {
		t.Fatalf("DBSC without -dbsc: %+v %v", cfg.opt.DBSC, err)
	}
	cfg, err = parseProxy(env, append(base, "-dbsc"))
	if err != nil || cfg.opt.DBSC == nil || cfg.opt.DBSC.TTL != proxy.DefaultDBSCTTL || cfg.opt.DBSC.MaxSessions != proxy.DefaultMaxSessions {
		t.Fatalf("-dbsc: %+v %v", cfg.opt.DBSC, err)
	}
	cfg, err = parseProxy(env, append(base, "-dbsc", "-dbsc-ttl", "2m", "-dbsc-max-sessions", "7"))
	if err != nil || cfg.opt.DBSC == nil || cfg.opt.DBSC.TTL != 2*time.Minute || cfg.opt.DBSC.MaxSessions != 7 {
		t.Fatalf("-dbsc -dbsc-ttl 2m: %+v %v", cfg.opt.DBSC, err)
	}
}

// TestProxyDBSCServes runs `cordon proxy -dbsc` in front of an app that
// knows nothing of DBSC: the log-in offers registration, the proxy
// registers a key and issues the bound cookie (Secure and __Host- unless
// -dev), and the app sees its session cookie only with that bound cookie.
func TestProxyDBSCServes(t *testing.T) {
	for _, dev := range []bool{false, true} {
		testProxyDBSCServes(t, dev)
	}
}

func testProxyDBSCServes(t *testing.T, dev bool) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "sid", Value: "s1", Path: "/"})
			return
		}
		c, _ := r.Cookie("sid")
		if c != nil {
			io.WriteString(w, c.Value)
		}
	}))
	defer up.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, &Env{Stdout: io.Discard, Stderr: io.Discard, Ready: func(u string) { ready <- u }},
			[]string{"proxy", "-listen", "127.0.0.1:0", "-upstream", up.URL, "-session-cookie", "sid",
				"-dbsc", "-dbsc-ttl", "1m", fmt.Sprintf("-dev=%v", dev)})
	}()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("cordon proxy ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("cordon proxy did not start")
	}
	// The client sends cookies by hand: a cookie jar would not send the
	// Secure ones over plain http.
	cookies := map[string]string{}
	do := func(method, path string, hdr http.Header, with ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		for _, name := range with {
			req.AddCookie(&http.Cookie{Name: name, Value: cookies[name]})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			cookies[c.Name] = c.Value
		}
		return resp, string(b)
	}
	devName, boundName := proxy.DeviceCookie, proxy.BoundCookie
	if dev {
		devName, boundName = proxy.DevDeviceCookie, proxy.DevBoundCookie
	}
	resp, _ := do(http.MethodGet, "/login", nil)
	reg, err := dbsctest.ParseRegistration(resp.Header.Get(dbsc.HeaderRegistration))
	if err != nil {
		t.Fatalf("-dev=%v: registration offer: %v", dev, err)
	}
	key := dbsctest.NewES256()
	resp, body := do(http.MethodPost, reg.Path, http.Header{dbsc.HeaderResponse: {key.RegistrationProof(reg.Challenge, "")}}, "sid", devName)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"session_identifier"`) {
		t.Fatalf("-dev=%v: registration: %d %s", dev, resp.StatusCode, body)
	}
	var bound *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == boundName {
			bound = c
		}
	}
	if bound == nil || bound.Secure == dev || bound.MaxAge != 60 || !bound.HttpOnly {
		t.Fatalf("-dev=%v: bound cookie %+v, want %s", dev, bound, boundName)
	}
	if _, body := do(http.MethodGet, "/", nil, "sid", devName, boundName); body != "s1" {
		t.Fatalf("-dev=%v: with the bound cookie the app saw %q", dev, body)
	}
	if _, body := do(http.MethodGet, "/", nil, "sid", devName); body != "" {
		t.Fatalf("-dev=%v: without the bound cookie the app saw %q", dev, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestNetHTTPFlag: -nethttp, on proxy and demo, serves with net/http's
// server alone; without it the lean loop serves, net/http behind it.
func TestNetHTTPFlag(t *testing.T) {
	env := &Env{Stdout: io.Discard, Stderr: io.Discard}
	for _, nethttp := range []bool{false, true} {
		args := []string{"-upstream", "http://127.0.0.1:1", "-session-cookie", "sid"}
		dargs := []string{}
		if nethttp {
			args, dargs = append(args, "-nethttp"), append(dargs, "-nethttp")
		}
		cfg, err := parseProxy(env, args)
		if err != nil {
			t.Fatal(err)
		}
		dc, err := parseDemoFlags(env, dargs)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.netHTTP != nethttp || dc.netHTTP != nethttp {
			t.Fatalf("-nethttp=%v: proxy %v, demo %v", nethttp, cfg.netHTTP, dc.netHTTP)
		}
		srv := &http.Server{}
		switch s := httpServer(srv, nethttp).(type) {
		case *http.Server:
			if !nethttp || s != srv {
				t.Errorf("-nethttp=%v: net/http's server alone", nethttp)
			}
		case *h1.Server:
			if nethttp || s.Fallback != srv {
				t.Errorf("-nethttp=%v: the lean loop, fallback %p", nethttp, s.Fallback)
			}
		default:
			t.Errorf("-nethttp=%v: %T", nethttp, s)
		}
	}
}
