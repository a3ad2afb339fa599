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
	"strings"
	"time"

	"github.com/cordon-sec/cordon/internal/demo"
	"github.com/cordon-sec/cordon/metrics"
	"github.com/cordon-sec/cordon/report"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
	"github.com/cordon-sec/cordon/store/storeurl"
)

// shutdownGrace bounds how long a stopping demo waits for requests in
// flight before it closes their connections.
const shutdownGrace = 10 * time.Second

// The demo server's limits on slow clients. A client has headerTimeout to
// send a request's header and, when the request has a body, bodyTimeout
// more for the body (bodyDeadline); writeTimeout to take the response; and
// idleTimeout between requests on a kept-alive connection.
//
// The body's limit is set per request, only for requests that have one,
// instead of http.Server.ReadTimeout: ReadTimeout moves the connection's
// read deadline (a runtime timer) on every request, bodiless GETs
// included, which is most of what the demo serves; ReadHeaderTimeout and
// IdleTimeout already bound every read but the body's.
const (
	headerTimeout = 10 * time.Second
	bodyTimeout   = 30 * time.Second
	writeTimeout  = 30 * time.Second
	idleTimeout   = 2 * time.Minute
)

// demoConfig is what the flags of `cordon demo` say.
type demoConfig struct {
	addr, db, log, admin, store, metricsAddr string
	cacheBound                               time.Duration
	onStoreError                             string
	dev                                      bool
	netHTTP                                  bool
	dbsc                                     bool
	dbscTTL                                  time.Duration
}

func parseDemoFlags(env *Env, args []string) (demoConfig, error) {
	var c demoConfig
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen `address` (host:port; port 0 picks a free one)")
	fs.StringVar(&c.db, "db", "./cordon-demo.db", "SQLite `file` for users and sessions")
	fs.StringVar(&c.log, "log", "./cordon-requests.log", "request log `file` (appended; - for standard output)")
	fs.StringVar(&c.admin, "admin", "", "the account `name` that may open /admin (default: the account signed up first)")
	fs.StringVar(&c.store, "store", "", "session store `URL`: sqlite:PATH, postgres://... or redis://... (default sqlite: the -db file); users stay in -db")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on `address` (host:port) at /metrics (default: off)")
	fs.StringVar(&c.onStoreError, "on-store-error", "anonymous", "what a request gets while the session store cannot be read: anonymous (served as nobody) or unavailable (503)")
	fs.BoolVar(&c.dev, "dev", false, "development mode: the session cookie goes out without Secure, so a browser sends it back over plain HTTP (default: on when -addr is a loopback address; -dev=false behind a TLS proxy)")
	fs.BoolVar(&c.netHTTP, "nethttp", false, "serve every request with Go's net/http server, not only the ones the lean HTTP/1.1 loop hands it (slower; for comparison)")
	fs.DurationVar(&c.cacheBound, "cache-bound", time.Second, "cache validated sessions in memory; a revocation made elsewhere (another node, or cordon revoke on the same file) reaches this one within this `duration` (0: no cache)")
	fs.BoolVar(&c.dbsc, "dbsc", false, "offer device-bound sessions (DBSC) after every log-in: a browser that registers a key is served only with a short-lived bound cookie it renews by proving the key")
	fs.DurationVar(&c.dbscTTL, "dbsc-ttl", 10*time.Minute, "with -dbsc, the bound cookie's `lifetime`")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: cordon demo [flags]")
		fmt.Fprintln(env.Stderr, "\nServes the reference app: sign-up, log-in, profile with active sessions, log-out,")
		fmt.Fprintln(env.Stderr, "a JSON API (/api/signup, /api/login, /api/whoami, /api/logout) and /admin.")
		fmt.Fprintln(env.Stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, usageError("demo: %v", err)
	}
	if fs.NArg() > 0 {
		return c, usageError("demo: unexpected argument %q", fs.Arg(0))
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return c, usageError("demo: -addr %q: %v", c.addr, err)
	}
	devSet := false
	fs.Visit(func(f *flag.Flag) { devSet = devSet || f.Name == "dev" })
	if !devSet {
		c.dev = loopbackAddr(c.addr)
	}
	if c.db == "" {
		return c, usageError("demo: -db must name a file")
	}
	if c.admin != "" {
		if err := demo.ValidateName(c.admin); err != nil {
			return c, usageError("demo: -admin %q: not a user name (3 to 64 of a-z, 0-9, _ and -)", c.admin)
		}
	}
	if c.log == "" {
		return c, usageError("demo: -log must name a file or -")
	}
	if c.store == "" {
		c.store = "sqlite:" + c.db
	}
	if c.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.metricsAddr); err != nil {
			return c, usageError("demo: -metrics-addr %q: %v", c.metricsAddr, err)
		}
	}
	if c.onStoreError != "anonymous" && c.onStoreError != "unavailable" {
		return c, usageError("demo: -on-store-error is anonymous or unavailable")
	}
	if c.dbscTTL < 30*time.Second {
		return c, usageError("demo: -dbsc-ttl must be at least 30s")
	}
	if c.cacheBound < 0 {
		return c, usageError("demo: -cache-bound must not be negative")
	}
	return c, nil
}

// runDemo serves the reference app (package internal/demo). Users live in
// the SQLite file -db; sessions in the store named by -store, by default
// the same file. Several nodes may share a PostgreSQL or Redis session
// store; users stay in each node's -db file, so nodes on one machine share
// sign-ups by sharing -db, and nodes on different machines share sessions
// but not sign-ups.
//
// It serves until ctx is cancelled (SIGINT or SIGTERM in main), then shuts
// down gracefully: it stops accepting, lets requests in flight finish (at
// most shutdownGrace), and then closes the session manager, the request log
// (flushed and fsynced) and the stores. Sessions are committed to the store
// before their response is sent, so none that a client was told about is
// lost.
func runDemo(ctx context.Context, env *Env, args []string) error {
	c, err := parseDemoFlags(env, args)
	if err != nil {
		return err
	}
	return serveDemo(ctx, env, c)
}

// serveDemo opens what c names, serves the app until ctx is cancelled and
// closes everything.
func serveDemo(ctx context.Context, env *Env, c demoConfig) (err error) {
	logger := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// Close what was opened, in reverse order, whatever happens.
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if cerr := closers[i](); cerr != nil && err == nil {
				err = fmt.Errorf("demo: close: %w", cerr)
			}
		}
	}()

	// Listen first, and say so: opening the stores can take a while, and
	// connections wait in the listen queue meanwhile.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("demo: listen: %w", err)
	}
	serving := false
	defer func() {
		if !serving {
			ln.Close()
		}
	}()
	url := serveURL(ln.Addr())
	fmt.Fprintf(env.Stdout, "cordon demo: listening on %s\n", url)

	users, err := demo.OpenUsers(c.db, demo.UsersOptions{})
	if err != nil {
		return err // "demo: open users ..."
	}
	closers = append(closers, users.Close)

	var dm *demoMetrics
	if c.metricsAddr != "" {
		if dm, err = newDemoMetrics(); err != nil {
			return fmt.Errorf("demo: metrics: %w", err)
		}
	}

	st, closeStore, err := openDemoStore(ctx, c, logger, dm)
	if err != nil {
		return fmt.Errorf("demo: session store: %w", err)
	}
	closers = append(closers, closeStore)

	var lw *reqlog.Writer
	if c.log == "-" {
		lw = reqlog.NewWriter(env.Stdout, reqlog.WriterOptions{Logger: logger})
	} else if lw, err = reqlog.Open(c.log, reqlog.WriterOptions{Logger: logger}); err != nil {
		return fmt.Errorf("demo: request log: %w", err)
	}
	closers = append(closers, lw.Close)

	// Errors of the app and the session manager's alarms go to the error
	// reporter, which logs them (slog sink) with request data as values
	// and every cookie value scrubbed.
	rep := report.New(report.Options{
		Sinks:         []report.Sink{report.NewSlogSink(logger)},
		SessionCookie: sessionCookieName(c.dev),
		Logger:        logger,
	})
	reportHook := rep.Hook()

	onStoreError := session.FailAnonymous
	if c.onStoreError == "unavailable" {
		onStoreError = session.FailUnavailable
	}
	var bound *session.DBSC
	if c.dbsc {
		bound = &session.DBSC{TTL: c.dbscTTL}
	}
	m := session.New(st, session.Options{
		Dev:          c.dev,
		DBSC:         bound,
		OnStoreError: onStoreError,
		Logger:       logger,
		OnEvent: func(ctx context.Context, ev session.Event) {
			if dm != nil {
				dm.events.Observe(ctx, ev)
			}
			switch ev.Name {
			case reqlog.EventGuardBlock, reqlog.EventStaleUse, session.EventStoreError:
				// Worth an operator's attention: through the error
				// reporter, in the request's scope when there is one.
				reportHook(ctx, ev.Name, ev.Detail, ev.Err)
				return
			}
			// bad_cookie and the like: routine, logged at Info (the
			// request log and the metrics count them).
			attrs := []any{"event", ev.Name, "detail", ev.Detail}
			if ev.Fingerprint != "" {
				attrs = append(attrs, "fingerprint", ev.Fingerprint)
			}
			if ev.Principal != "" {
				attrs = append(attrs, "principal", ev.Principal)
			}
			if ev.Err != nil {
				attrs = append(attrs, "err", ev.Err)
			}
			logger.Info("session event", attrs...)
		},
	})
	closers = append(closers, m.Close)

	app, err := demo.New(demo.Options{
		Sessions: m,
		Users:    users,
		Admin:    c.admin,
		DeviceBound: func(i session.Info) bool {
			return i.DeviceBound
		},
		Log:    lw,
		Report: rep,
		Logger: logger,
	})
	if err != nil {
		return err
	}

	if ap, perr := netip.ParseAddrPort(ln.Addr().String()); perr == nil && !ap.Addr().Unmap().IsLoopback() && c.dev {
		logger.Warn("demo: development mode on a non-loopback address: the session cookie goes out without Secure over plain HTTP; use -dev=false behind a TLS proxy")
	}
	srv := &http.Server{
		Handler:           bodyDeadline(app, bodyTimeout),
		ReadHeaderTimeout: headerTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if c.dev {
		fmt.Fprintln(env.Stdout, "cordon demo: development mode: the session cookie has no Secure flag, for plain HTTP (-dev=false when a TLS proxy is in front)")
	}
	fmt.Fprintf(env.Stdout, "cordon demo: users in %s, sessions in %s, request log in %s\n", c.db, storeurl.Redact(c.store), c.log)
	if c.admin != "" {
		fmt.Fprintf(env.Stdout, "cordon demo: admin page %sadmin, for the account %q\n", url, c.admin)
	} else {
		fmt.Fprintf(env.Stdout, "cordon demo: admin page %sadmin, for the account signed up first\n", url)
	}

	var metricsDone <-chan error
	stopMetrics := func() {}
	if dm != nil {
		mln, err := net.Listen("tcp", c.metricsAddr)
		if err != nil {
			return fmt.Errorf("demo: metrics listen: %w", err)
		}
		mctx, cancel := context.WithCancel(context.Background())
		stopMetrics = cancel
		metricsDone = dm.serve(mctx, mln)
		fmt.Fprintf(env.Stdout, "cordon demo: metrics on %s\n", metricsURL(mln))
	}
	defer stopMetrics()

	// The demo's live heap is a few MiB; what it allocates per request is
	// garbage at once.
	tuneGCUnlessSet(ctx)
	serve := httpServer(srv, c.netHTTP)
	served := make(chan error, 1)
	serving = true
	go func() { served <- serve.Serve(ln) }()
	fmt.Fprintf(env.Stdout, "cordon demo: serving on %s\n", url)
	if env.Ready != nil {
		env.Ready(url)
	}

	select {
	case err := <-served:
		return fmt.Errorf("demo: serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(env.Stdout, "cordon demo: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := serve.Shutdown(sctx); err != nil {
		logger.Warn("demo: requests still running at the end of the grace period were cut off", "err", err)
		_ = srv.Close()
	}
	<-served // http.ErrServerClosed
	if metricsDone != nil {
		stopMetrics()
		if err := <-metricsDone; err != nil {
			logger.Warn("demo: metrics server", "err", err)
		}
	}
	return nil
}

// bodyDeadline gives a request that has a body d to deliver it: the
// connection's read deadline, which the server moves again once the
// request is done (to IdleTimeout, then ReadHeaderTimeout). A request
// whose deadline cannot be set is refused with 503 and its connection
// closed, rather than served without the limit.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(d)); err != nil {
				w.Header().Set("Connection", "close")
				http.Error(w, "request body limit unavailable", http.StatusServiceUnavailable)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serveURL is the URL to print for a listener: an unspecified address
// (0.0.0.0 or ::, from -addr :PORT) is shown as 127.0.0.1, which reaches it.
func serveURL(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ap.Addr().IsUnspecified() {
		ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
	}
	return "http://" + ap.String() + "/"
}

// sessionCookieName is the session cookie's name as the demo's clients see
// it: in development mode the session manager drops the __Host- prefix.
func sessionCookieName(dev bool) string {
	if dev {
		return strings.TrimPrefix(session.DefaultCookieName, "__Host-")
	}
	return session.DefaultCookieName
}

// loopbackAddr reports whether a listen address is a loopback one (where
// `cordon demo` switches development mode on unless told otherwise).
func loopbackAddr(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// openDemoStore opens the session store named by -store and puts it behind
// an in-process cache (store/cache) whose revocation bound is -cache-bound:
// a revocation made anywhere else — another node, or `cordon revoke` on the
// same SQLite file — stops this process from honouring the session within
// the bound; revocations made through this process act at once. For SQLite
// the cache also spares every request a read of the file, whose pages every
// write invalidates. With metrics on, every store operation is timed and
// the cache reports hits, misses and revocation lag.
func openDemoStore(ctx context.Context, c demoConfig, logger *slog.Logger, dm *demoMetrics) (store.Full, func() error, error) {
	st, err := storeurl.Open(ctx, c.store, storeurl.Options{Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	var full store.Full = st
	backend := backendLabel(c.store)
	if dm != nil {
		full = dm.store.Instrument(st, backend)
	}
	if c.cacheBound == 0 {
		return full, st.Close, nil
	}
	opt := cache.Options{Bound: c.cacheBound, Logger: logger}
	if dm != nil {
		obs, err := metrics.NewCacheObserver(dm.reg)
		if err != nil {
			st.Close()
			return nil, nil, fmt.Errorf("metrics: %w", err)
		}
		opt.Observer = obs
	}
	ca := cache.New(full, opt)
	return ca, func() error { return errors.Join(ca.Close(), st.Close()) }, nil
}
