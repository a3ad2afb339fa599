package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/internal/h1"
	"github.com/cordon-sec/cordon/proxy"
	"github.com/cordon-sec/cordon/reqlog"
)

// proxyConfig is `cordon proxy`'s command line, parsed and checked.
type proxyConfig struct {
	listen   string
	pprof    string
	netHTTP  bool
	storeURL string
	logPath  string
	mode     string
	trusted  []netip.Prefix
	limits   proxy.Limits
	opt      proxy.Options // everything but Bindings and Logger
}

// parseProxy parses and checks `cordon proxy`'s flags. A bad flag is a
// usage error; nothing is opened or started.
func parseProxy(env *Env, args []string) (*proxyConfig, error) {
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
	pprofAddr := fs.String("pprof", "", "serve Go's profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (off by default; never on a public address)")
	dev := fs.Bool("dev", false, "development over plain HTTP: the device cookie is cordon-dev without Secure (never use in production)")
	maxIssued := fs.Int("max-bindings", proxy.DefaultMaxIssued, "most bindings of sessions the app issued kept in memory (least recently used go first)")
	maxPresented := fs.Int("max-presented", proxy.DefaultMaxPresented, "most bindings of sessions only presented by a device, never seen issued (random cookie values land here)")
	idle := fs.Duration("binding-idle", proxy.DefaultIdle, "forget a binding unused for this long: the app's session lifetime")
	dbscOn := fs.Bool("dbsc", false, "device-bound sessions (DBSC): offer, register and refresh them on the app's behalf; a bound session is forwarded only with its current bound cookie")
	dbscTTL := fs.Duration("dbsc-ttl", proxy.DefaultDBSCTTL, "with -dbsc, the bound cookie's life (at least 30s)")
	netHTTP := fs.Bool("nethttp", false, "serve every request with Go's net/http server, not only the ones the lean HTTP/1.1 loop hands it (slower; for comparison)")
	dbscMax := fs.Int("dbsc-max-sessions", proxy.DefaultMaxSessions, "with -dbsc, most device-bound sessions kept in memory (least recently used go first)")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: cordon proxy -upstream URL -session-cookie NAME [flags]\n\nA reverse proxy that binds the app's sessions to browser devices and stops\na response that would hand one device another device's session.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageError("proxy: unexpected argument %q", fs.Arg(0))
	}
	up, err := url.Parse(*upstream)
	if *upstream == "" || err != nil || up.Host == "" || (up.Scheme != "http" && up.Scheme != "https") {
		return nil, usageError("proxy: -upstream must be an http(s) URL")
	}
	if *cookie == "" {
		return nil, usageError("proxy: -session-cookie is required")
	}
	if *maxIssued <= 0 || *maxPresented <= 0 || *idle <= 0 {
		return nil, usageError("proxy: -max-bindings, -max-presented and -binding-idle must be positive")
	}
	if *maxBody <= 0 {
		return nil, usageError("proxy: -max-body must be positive")
	}
	dbscSet := false
	fs.Visit(func(f *flag.Flag) { dbscSet = dbscSet || strings.HasPrefix(f.Name, "dbsc-") })
	if dbscSet && !*dbscOn {
		return nil, usageError("proxy: -dbsc-ttl and -dbsc-max-sessions need -dbsc")
	}
	if *dbscMax <= 0 {
		return nil, usageError("proxy: -dbsc-max-sessions must be positive")
	}
	if *dbscTTL < proxy.MinDBSCTTL {
		return nil, usageError("proxy: -dbsc-ttl must be at least %s", proxy.MinDBSCTTL)
	}
	cfg := &proxyConfig{
		listen: *listen, pprof: *pprofAddr, netHTTP: *netHTTP, storeURL: *storeURL, logPath: *logPath, mode: *mode,
		limits: proxy.Limits{MaxIssued: *maxIssued, MaxPresented: *maxPresented, Idle: *idle},
		opt: proxy.Options{Upstream: up, SessionCookie: *cookie, StripForeign: *stripForeign,
			UserHeader: *userHeader, MaxRequestBody: *maxBody, Dev: *dev},
	}
	if *dbscOn {
		cfg.opt.DBSC = &proxy.DBSC{TTL: *dbscTTL, MaxSessions: *dbscMax}
	}
	switch *mode {
	case "block":
	case "report":
		cfg.opt.Mode = proxy.Report
	default:
		return nil, usageError("proxy: -mode is block or report")
	}
	switch *onBlock {
	case "fail":
	case "strip":
		cfg.opt.OnBlock = proxy.Strip
	default:
		return nil, usageError("proxy: -on-block is fail or strip")
	}
	for _, s := range strings.Split(*trusted, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, usageError("proxy: -trusted-proxies: %v", err)
		}
		cfg.trusted = append(cfg.trusted, p)
	}
	switch s := cfg.storeURL; {
	case s == "memory:" || s == "":
	case strings.HasPrefix(s, "sqlite:") && len(s) > len("sqlite:"):
	case strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://"):
	default:
		return nil, usageError("proxy: -store: use memory:, sqlite:PATH or redis://HOST:PORT/DB")
	}
	return cfg, nil
}

// runProxy serves the guard proxy in front of an app.
func runProxy(ctx context.Context, env *Env, args []string) error {
	cfg, err := parseProxy(env, args)
	if err != nil {
		return err
	}
	return serveProxy(ctx, env, cfg)
}

// serveProxy opens the store and the request log, and serves until ctx
// ends.
func serveProxy(ctx context.Context, env *Env, cfg *proxyConfig) error {
	logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
	opt := cfg.opt
	switch s := cfg.storeURL; {
	case strings.HasPrefix(s, "sqlite:"):
		b, err := proxy.OpenBindingsLimited(strings.TrimPrefix(s, "sqlite:"), 0, cfg.limits)
		if err != nil {
			return err
		}
		defer b.Close()
		opt.Bindings = b
	case strings.HasPrefix(s, "redis://") || strings.HasPrefix(s, "rediss://"):
		b, err := proxy.OpenRedisBindings(ctx, s, proxy.RedisOptions{Logger: logger, Limits: cfg.limits})
		if err != nil {
			return err
		}
		defer b.Close()
		opt.Bindings = b
	default:
		opt.Bindings = proxy.NewBindingsLimited(cfg.limits)
	}
	// The proxy's live heap is small (bindings and idle connections) and
	// nearly all it allocates is per-request garbage; a large binding
	// table holds no pointers, so a collection does not scan it.
	tuneGCUnlessSet(ctx)
	opt.Logger = logger
	p, err := proxy.New(opt)
	if err != nil {
		return err
	}
	var lw *reqlog.Writer
	if cfg.logPath == "-" {
		lw = reqlog.NewWriter(env.Stdout, reqlog.WriterOptions{})
	} else if lw, err = reqlog.Open(cfg.logPath, reqlog.WriterOptions{}); err != nil {
		return err
	}
	defer lw.Close()
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           reqlog.Middleware(lw, reqlog.Options{TrustedProxies: cfg.trusted})(p),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.pprof != "" {
		pl, err := net.Listen("tcp", cfg.pprof)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ps := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go ps.Serve(pl)
		defer ps.Close()
		fmt.Fprintf(env.Stderr, "cordon proxy: profiles on http://%s/debug/pprof/\n", pl.Addr())
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(env.Stderr, "cordon proxy: %s -> %s (session cookie %q, %s mode)\n", url, opt.Upstream, opt.SessionCookie, cfg.mode)
	if opt.Dev {
		fmt.Fprintf(env.Stderr, "cordon proxy: development mode (-dev): the device cookie %s is not Secure; do not use in production\n", proxy.DevDeviceCookie)
	} else {
		fmt.Fprintf(env.Stderr, "cordon proxy: the device cookie %s is Secure: browsers send it back only over https (TLS in front of the proxy); for trying it out over plain http use -dev\n", proxy.DeviceCookie)
	}
	if opt.DBSC != nil {
		fmt.Fprintf(env.Stderr, "cordon proxy: device-bound sessions (-dbsc): bound cookie %s, TTL %s, endpoints under /.cordon/dbsc/; bindings are kept in this process's memory\n", boundName(opt.Dev), opt.DBSC.TTL)
	}
	if env.Ready != nil {
		env.Ready(url)
	}
	serve := httpServer(srv, cfg.netHTTP)
	errc := make(chan error, 1)
	go func() { errc <- serve.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := serve.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// server is what serves a command's HTTP: an *h1.Server or, with
// -nethttp, the *http.Server itself.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// httpServer returns the lean HTTP/1.1 loop (package internal/h1), which
// answers bodiless GET and HEAD itself with srv's timeouts and hands every
// other connection to srv; or srv alone when netHTTP is set.
func httpServer(srv *http.Server, netHTTP bool) server {
	if netHTTP {
		return srv
	}
	return &h1.Server{Fallback: srv}
}

func boundName(dev bool) string {
	if dev {
		return proxy.DevBoundCookie
	}
	return proxy.BoundCookie
}
