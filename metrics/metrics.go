// Package metrics turns cordon's store and cache measurements into
// Prometheus collectors (github.com/prometheus/client_golang, the standard
// Go client for the Prometheus exposition format).
//
// CacheObserver implements cache.Observer: cache hits and misses (the hit
// ratio is hits / (hits + misses)), flushes, and the propagation lag of
// revocations. InstrumentStore wraps a store.Full and records every
// operation's latency by backend, operation and result. SessionEvents
// counts the session manager's events (session.Options.OnEvent): sessions
// created, renewed, logged out, revocations by kind, bad cookies by reason,
// guard blocks, stale uses and store errors.
//
// Names follow Prometheus conventions: counters end in _total, durations
// are histograms in seconds.
package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
	"github.com/prometheus/client_golang/prometheus"
)

var _ cache.Observer = (*CacheObserver)(nil)

// lagBuckets cover a notification on loopback (sub-millisecond) up to
// past the default 1 s bound.
var lagBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// CacheObserver records a cache's events. Create it with NewCacheObserver
// and pass it as cache.Options.Observer.
type CacheObserver struct {
	hits, misses, flushes prometheus.Counter
	revocations           *prometheus.CounterVec
	lag                   *prometheus.HistogramVec
}

// NewCacheObserver registers the cache collectors with reg:
//
//	cordon_cache_hits_total
//	cordon_cache_misses_total
//	cordon_cache_flushes_total
//	cordon_revocation_notifications_total{kind}
//	cordon_revocation_propagation_seconds{kind}
func NewCacheObserver(reg prometheus.Registerer) (*CacheObserver, error) {
	o := &CacheObserver{
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_cache_hits_total", Help: "Session look-ups answered from the in-process cache.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_cache_misses_total", Help: "Session look-ups that went to the store.",
		}),
		flushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_cache_flushes_total", Help: "Times the cache dropped every entry (resubscription, a revocation seen only by the counter, revoke all).",
		}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_revocation_notifications_total", Help: "Revocation notifications applied by this node's cache, by kind.",
		}, []string{"kind"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cordon_revocation_propagation_seconds", Help: "Time from a revocation's publication to its eviction from this node's cache.",
			Buckets: lagBuckets,
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{o.hits, o.misses, o.flushes, o.revocations, o.lag} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Hit records a cache hit.
func (o *CacheObserver) Hit() { o.hits.Inc() }

// Miss records a cache miss.
func (o *CacheObserver) Miss() { o.misses.Inc() }

// Flushed records a full flush.
func (o *CacheObserver) Flushed() { o.flushes.Inc() }

// Revoked records an applied revocation notification and its lag.
func (o *CacheObserver) Revoked(kind cache.Kind, lag time.Duration) {
	o.revocations.WithLabelValues(string(kind)).Inc()
	if lag > 0 {
		o.lag.WithLabelValues(string(kind)).Observe(lag.Seconds())
	}
}

// StoreMetrics holds the store latency histogram; one per registry, shared
// by every instrumented store.
type StoreMetrics struct {
	latency *prometheus.HistogramVec
}

// NewStoreMetrics registers cordon_store_operation_seconds{backend,
// operation, result} with reg. result is ok, not_found, exists, conflict,
// canceled or error.
func NewStoreMetrics(reg prometheus.Registerer) (*StoreMetrics, error) {
	m := &StoreMetrics{latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cordon_store_operation_seconds",
		Help:    "Latency of session store operations, by backend, operation and result.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"backend", "operation", "result"})}
	if err := reg.Register(m.latency); err != nil {
		return nil, err
	}
	return m, nil
}

// Instrument returns st with every call timed under the backend label. If
// st is a cache.Notifier so is the result, so that a cache in front of it
// still receives revocations.
func (m *StoreMetrics) Instrument(st store.Full, backend string) store.Full {
	in := &instrumented{st: st, backend: backend, m: m}
	if n, ok := st.(cache.Notifier); ok {
		return &instrumentedNotifier{in, n}
	}
	return in
}

type instrumentedNotifier struct {
	*instrumented
	cache.Notifier
}

func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, store.ErrNotFound):
		return "not_found"
	case errors.Is(err, store.ErrExists):
		return "exists"
	case errors.Is(err, store.ErrConflict):
		return "conflict"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

type instrumented struct {
	st      store.Full
	backend string
	m       *StoreMetrics
}

func (s *instrumented) observe(op string, start time.Time, err error) {
	s.m.latency.WithLabelValues(s.backend, op, result(err)).Observe(time.Since(start).Seconds())
}

func (s *instrumented) Create(ctx context.Context, sess *store.Session) error {
	start := time.Now()
	err := s.st.Create(ctx, sess)
	s.observe("create", start, err)
	return err
}

func (s *instrumented) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	start := time.Now()
	sess, err := s.st.Find(ctx, h)
	s.observe("find", start, err)
	return sess, err
}

func (s *instrumented) Update(ctx context.Context, sess *store.Session) error {
	start := time.Now()
	err := s.st.Update(ctx, sess)
	s.observe("update", start, err)
	return err
}

func (s *instrumented) Touch(ctx context.Context, h store.Hash, seen, idle time.Time, ip, ua string) error {
	start := time.Now()
	err := s.st.Touch(ctx, h, seen, idle, ip, ua)
	s.observe("touch", start, err)
	return err
}

func (s *instrumented) Delete(ctx context.Context, h store.Hash) error {
	start := time.Now()
	err := s.st.Delete(ctx, h)
	s.observe("delete", start, err)
	return err
}

func (s *instrumented) RevokeFingerprints(ctx context.Context, fps []string) (int, error) {
	start := time.Now()
	n, err := s.st.RevokeFingerprints(ctx, fps)
	s.observe("revoke_fingerprints", start, err)
	return n, err
}

func (s *instrumented) RevokePrincipal(ctx context.Context, p string) error {
	start := time.Now()
	err := s.st.RevokePrincipal(ctx, p)
	s.observe("revoke_principal", start, err)
	return err
}

func (s *instrumented) RevokeAll(ctx context.Context) error {
	start := time.Now()
	err := s.st.RevokeAll(ctx)
	s.observe("revoke_all", start, err)
	return err
}

func (s *instrumented) List(ctx context.Context, opt store.ListOptions) ([]*store.Session, error) {
	start := time.Now()
	l, err := s.st.List(ctx, opt)
	s.observe("list", start, err)
	return l, err
}

func (s *instrumented) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	start := time.Now()
	n, err := s.st.DeleteExpired(ctx, now)
	s.observe("delete_expired", start, err)
	return n, err
}
