package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/metrics"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// demoMetrics is what `cordon demo -metrics-addr` exposes: the Go runtime
// and process, store operation latency by backend and operation (package
// metrics), the session cache's hits, misses and revocation lag (when the
// store is cached), and the session manager's events.
type demoMetrics struct {
	reg    *prometheus.Registry
	store  *metrics.StoreMetrics
	events *sessionEventMetrics
}

func newDemoMetrics() (*demoMetrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	sm, err := metrics.NewStoreMetrics(reg)
	if err != nil {
		return nil, err
	}
	ev, err := newSessionEventMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &demoMetrics{reg: reg, store: sm, events: ev}, nil
}

// sessionEventMetrics counts the session manager's events (Options.OnEvent).
// Labels stay low-cardinality: bad cookies by reason, the rest by name only
// (a stale_use detail names a file and line, a guard_block detail may carry
// a report: prefix).
type sessionEventMetrics struct {
	badCookies                       *prometheus.CounterVec
	guardBlocks, staleUses, storeErr prometheus.Counter
}

func newSessionEventMetrics(reg prometheus.Registerer) (*sessionEventMetrics, error) {
	m := &sessionEventMetrics{
		badCookies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_bad_cookies_total", Help: "Session cookies refused, by reason (malformed, oversized, unknown, expired, revoked).",
		}, []string{"reason"}),
		guardBlocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_guard_blocks_total", Help: "Responses whose session cookie the egress guard blocked (or reported).",
		}),
		staleUses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_stale_uses_total", Help: "Uses of a session handle after its request ended.",
		}),
		storeErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_session_store_errors_total", Help: "Session store failures seen by the session manager (the request failed closed).",
		}),
	}
	for _, c := range []prometheus.Collector{m.badCookies, m.guardBlocks, m.staleUses, m.storeErr} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

var badCookieReasons = map[string]bool{
	session.BadMalformed: true, session.BadOversized: true, session.BadUnknown: true,
	session.BadExpired: true, session.BadRevoked: true,
}

func (m *sessionEventMetrics) observe(ev session.Event) {
	switch ev.Name {
	case reqlog.EventBadCookie:
		reason := ev.Detail
		if !badCookieReasons[reason] {
			reason = "other"
		}
		m.badCookies.WithLabelValues(reason).Inc()
	case reqlog.EventGuardBlock:
		m.guardBlocks.Inc()
	case reqlog.EventStaleUse:
		m.staleUses.Inc()
	case "store_error":
		m.storeErr.Inc()
	}
}

// backendLabel names the store backend of a store URL for the metrics.
func backendLabel(storeURL string) string {
	scheme, _, _ := strings.Cut(strings.ToLower(storeURL), ":")
	switch scheme {
	case "sqlite", "sqlite3":
		return "sqlite"
	case "postgres", "postgresql":
		return "postgres"
	case "redis", "rediss":
		return "redis"
	}
	return scheme
}

// serveMetrics serves /metrics on ln until ctx is cancelled.
func (dm *demoMetrics) serve(ctx context.Context, ln net.Listener) <-chan error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(dm.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if err == http.ErrServerClosed {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	return done
}

func metricsURL(ln net.Listener) string {
	return fmt.Sprintf("http://%s/metrics", ln.Addr())
}
