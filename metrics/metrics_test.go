package metrics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
	"github.com/cordon-sec/cordon/store/memstore"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value returns the value of the counter, or the sample count of the
// histogram, named name with the given labels.
func value(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metric
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func TestCacheObserver(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := NewCacheObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewCacheObserver(reg); err == nil {
		t.Fatal("registering twice succeeded")
	}
	ctx := context.Background()
	m := memstore.New(memstore.Options{})
	c := cache.New(m, cache.Options{Observer: obs})
	defer c.Close()
	now := time.Now()
	s := &store.Session{Hash: store.HashToken("t"), Principal: "alice", Created: now, LastSeen: now,
		IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	if err := m.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Find(ctx, s.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if h, mi := value(t, reg, "cordon_cache_hits_total", nil), value(t, reg, "cordon_cache_misses_total", nil); h != 2 || mi != 1 {
		t.Fatalf("hits %v misses %v, want 2 and 1", h, mi)
	}
	obs.Revoked(cache.KindPrincipal, 3*time.Millisecond)
	obs.Flushed()
	if v := value(t, reg, "cordon_revocation_notifications_total", map[string]string{"kind": "principal"}); v != 1 {
		t.Fatalf("notifications %v", v)
	}
	if v := value(t, reg, "cordon_revocation_propagation_seconds", map[string]string{"kind": "principal"}); v != 1 {
		t.Fatalf("lag samples %v", v)
	}
	if v := value(t, reg, "cordon_cache_flushes_total", nil); v != 1 {
		t.Fatalf("flushes %v", v)
	}
}

type notifying struct{ *memstore.Store }

func (notifying) Subscribe(ctx context.Context, fn func(cache.Event)) error {
	<-ctx.Done()
	return ctx.Err()
}
func (notifying) RevocationSeq(context.Context) (int64, error) { return 0, nil }

func TestInstrumentStore(t *testing.T) {
	reg := prometheus.NewRegistry()
	sm, err := NewStoreMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := sm.Instrument(memstore.New(memstore.Options{}), "memory")
	if _, ok := st.(cache.Notifier); ok {
		t.Fatal("instrumented memstore claims to notify")
	}
	if _, err := st.Find(ctx, store.HashToken("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	now := time.Now()
	s := &store.Session{Hash: store.HashToken("t"), Principal: "alice", Created: now, LastSeen: now,
		IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, s.Clone()); !errors.Is(err, store.ErrExists) {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op, result string
	}{{"find", "not_found"}, {"create", "ok"}, {"create", "exists"}} {
		if v := value(t, reg, "cordon_store_operation_seconds", map[string]string{"backend": "memory", "operation": tc.op, "result": tc.result}); v != 1 {
			t.Errorf("%s/%s observed %v times, want 1", tc.op, tc.result, v)
		}
	}
	if _, ok := sm.Instrument(notifying{memstore.New(memstore.Options{})}, "n").(cache.Notifier); !ok {
		t.Fatal("instrumenting a notifier hid its notifications")
	}
}
