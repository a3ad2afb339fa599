package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// demoMetrics is what `cordon demo -metrics-addr` exposes: the Go runtime
// and process, store operation latency by backend and operation (package
// metrics), the session cache's hits, misses and revocation lag (when the
// store is cached), and the session manager's events (metrics.SessionEvents).
type demoMetrics struct {
	reg    *prometheus.Registry
	store  *metrics.StoreMetrics
	events *metrics.SessionEvents
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
	ev, err := metrics.NewSessionEvents(reg)
	if err != nil {
		return nil, err
	}
	return &demoMetrics{reg: reg, store: sm, events: ev}, nil
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
