package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/proxy"
	"github.com/cordon-sec/cordon/reqlog"
)

// runProxy serves the guard proxy in front of an app.
func runProxy(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	upstream := fs.String("upstream", "", "the app's base URL, e.g. http://127.0.0.1:8080 (required)")
	cookie := fs.String("session-cookie", "", "name of the app's session cookie (required)")
	storeURL := fs.String("store", "memory:", "where bindings and edge revocations live: memory:, sqlite:PATH (one node) or redis://HOST:PORT/DB[?prefix=P] (many nodes)")
	logPath := fs.String("log", "-", "request log file, or - for stdout")
	mode := fs.String("mode", "block", "block: a foreign session cookie fails the response closed; report: it passes and is logged")
	onBlock := fs.String("on-block", "fail", "in block mode, fail: answer an error page; strip: only remove the Set-Cookie")
	stripForeign := fs.Bool("strip-foreign", false, "remove a session presented by a device it is not bound to before the app sees it")
	userHeader := fs.String("user-header", "", "response header in which the app names its principal (stripped, and logged)")
	trusted := fs.String("trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed")
	maxBody := fs.Int64("max-body", 32<<20, "largest request body, bytes")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: cordon proxy -upstream URL -session-cookie NAME [flags]\n\nA reverse proxy that binds the app's sessions to browser devices and stops\na response that would hand one device another device's session.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	up, err := url.Parse(*upstream)
	if *upstream == "" || err != nil || up.Host == "" || (up.Scheme != "http" && up.Scheme != "https") {
		return usageError("proxy: -upstream must be an http(s) URL")
	}
	if *cookie == "" {
		return usageError("proxy: -session-cookie is required")
	}
	opt := proxy.Options{Upstream: up, SessionCookie: *cookie, StripForeign: *stripForeign, UserHeader: *userHeader, MaxRequestBody: *maxBody}
	switch *mode {
	case "block":
	case "report":
		opt.Mode = proxy.Report
	default:
		return usageError("proxy: -mode is block or report")
	}
	switch *onBlock {
	case "fail":
	case "strip":
		opt.OnBlock = proxy.Strip
	default:
		return usageError("proxy: -on-block is fail or strip")
	}
	var prefixes []netip.Prefix
	for _, s := range strings.Split(*trusted, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return usageError("proxy: -trusted-proxies: %v", err)
		}
		prefixes = append(prefixes, p)
	}
	logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
	switch {
	case *storeURL == "memory:" || *storeURL == "":
	case strings.HasPrefix(*storeURL, "sqlite:"):
		b, err := proxy.OpenBindings(strings.TrimPrefix(*storeURL, "sqlite:"), 0)
		if err != nil {
			return err
		}
		defer b.Close()
		opt.Bindings = b
	case strings.HasPrefix(*storeURL, "redis://") || strings.HasPrefix(*storeURL, "rediss://"):
		b, err := proxy.OpenRedisBindings(ctx, *storeURL, proxy.RedisOptions{Logger: logger})
		if err != nil {
			return err
		}
		defer b.Close()
		opt.Bindings = b
	default:
		return usageError("proxy: -store: use memory:, sqlite:PATH or redis://HOST:PORT/DB")
	}
	if os.Getenv("GOGC") == "" {
		// The proxy's live heap is small (bindings and idle connections)
		// and nearly all it allocates is per-request garbage: at the
		// default GOGC=100 the collector runs hundreds of times a second
		// under load (a fifth of the CPU in a profile under wrk). 400 cuts that
		// for a few more MiB of heap; GOGC in the environment overrides.
		debug.SetGCPercent(400)
	}
	opt.Logger = logger
	p, err := proxy.New(opt)
	if err != nil {
		return err
	}
	var lw *reqlog.Writer
	if *logPath == "-" {
		lw = reqlog.NewWriter(env.Stdout, reqlog.WriterOptions{})
	} else if lw, err = reqlog.Open(*logPath, reqlog.WriterOptions{}); err != nil {
		return err
	}
	defer lw.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           reqlog.Middleware(lw, reqlog.Options{TrustedProxies: prefixes})(p),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(env.Stderr, "cordon proxy: %s -> %s (session cookie %q, %s mode)\n", url, up, *cookie, *mode)
	if env.Ready != nil {
		env.Ready(url)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
