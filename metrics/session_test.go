package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/cache"
	"github.com/cordon-sec/cordon/store/memstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// failingStore fails Find while down is set, as a store whose server died.
type failingStore struct {
	store.Full
	down atomic.Bool
}

func (s *failingStore) Find(ctx context.Context, h store.Hash) (*store.Session, error) {
	if s.down.Load() {
		return nil, errors.New("connection refused")
	}
	return s.Full.Find(ctx, h)
}

// TestSessionEventsOverHTTP drives a real session manager over HTTP and
// checks that each series moves when, and only when, its event happens.
func TestSessionEventsOverHTTP(t *testing.T) {
	reg := prometheus.NewRegistry()
	ev, err := NewSessionEvents(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSessionEvents(reg); err == nil {
		t.Fatal("registering twice succeeded")
	}
	st := &failingStore{Full: memstore.New(memstore.Options{})}
	m := session.New(st, session.Options{
		Dev:     true, // the test server is plain HTTP
		OnEvent: ev.Observe,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer m.Close()

	var foreign string // a token of another user, for the guard
	leaked := make(chan *session.Session, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Login(r.FormValue("u")); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) { session.From(r).Renew() })
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) { session.From(r).Logout() })
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) { session.From(r).Put("cart", "1") })
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		p, _ := session.From(r).Principal()
		io.WriteString(w, p)
	})
	mux.HandleFunc("/inject", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "session="+foreign+"; Path=/; HttpOnly")
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/leak", func(w http.ResponseWriter, r *http.Request) { leaked <- session.From(r) })
	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()

	// get requests path with the cookie (if any) and returns the session
	// cookie set by the response ("" if none) and the body.
	get := func(path, cookie string) (string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "session", Value: cookie})
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		for _, c := range res.Cookies() {
			if c.Name == "session" {
				return c.Value, string(b)
			}
		}
		return "", string(b)
	}

	type series struct {
		name   string
		labels map[string]string
	}
	all := []series{
		{"cordon_sessions_created_total", map[string]string{"kind": "login"}},
		{"cordon_sessions_created_total", map[string]string{"kind": "anonymous"}},
		{"cordon_sessions_renewed_total", nil},
		{"cordon_sessions_logged_out_total", nil},
		{"cordon_revocations_total", map[string]string{"kind": "session"}},
		{"cordon_revocations_total", map[string]string{"kind": "principal"}},
		{"cordon_revocations_total", map[string]string{"kind": "all"}},
		{"cordon_bad_cookies_total", map[string]string{"reason": "malformed"}},
		{"cordon_bad_cookies_total", map[string]string{"reason": "unknown"}},
		{"cordon_bad_cookies_total", map[string]string{"reason": "expired"}},
		{"cordon_guard_blocks_total", map[string]string{"mode": "block"}},
		{"cordon_stale_uses_total", nil},
		{"cordon_session_store_errors_total", map[string]string{"operation": "find"}},
	}
	key := func(s series) string { return s.name + labelString(s.labels) }
	snapshot := func() map[string]float64 {
		out := map[string]float64{}
		for _, s := range all {
			out[key(s)] = value(t, reg, s.name, s.labels)
		}
		return out
	}
	// step runs do and checks that exactly the series in want moved, each
	// by one.
	step := func(name string, do func(), want ...series) {
		t.Helper()
		before := snapshot()
		do()
		after := snapshot()
		wanted := map[string]bool{}
		for _, s := range want {
			wanted[key(s)] = true
		}
		for k := range before {
			d := after[k] - before[k]
			if wanted[k] && d != 1 {
				t.Errorf("%s: %s moved by %v, want 1", name, k, d)
			}
			if !wanted[k] && d != 0 {
				t.Errorf("%s: %s moved by %v, want 0", name, k, d)
			}
		}
	}

	var alice, bob string
	step("login", func() {
		if alice, _ = get("/login?u=alice", ""); alice == "" {
			t.Fatal("login set no cookie")
		}
	}, all[0])
	step("login bob", func() { bob, _ = get("/login?u=bob", "") }, all[0])
	foreign = bob
	step("anonymous", func() {
		if c, _ := get("/put", ""); c == "" {
			t.Fatal("put set no cookie")
		}
	}, all[1])
	step("renew", func() {
		if alice, _ = get("/renew", alice); alice == "" {
			t.Fatal("renew set no cookie")
		}
	}, all[2])
	step("logout", func() { get("/logout", bob) }, all[3])
	ctx := context.Background()
	step("revoke session", func() {
		if _, err := m.RevokeFingerprints(ctx, store.Fingerprint(alice)); err != nil {
			t.Fatal(err)
		}
	}, all[4])
	step("revoked session's cookie", func() {
		if _, who := get("/whoami", alice); who != "" {
			t.Fatalf("revoked session served as %q", who)
		}
	}, all[8]) // revocation by fingerprint deletes the session: unknown
	var frank string
	step("login frank", func() { frank, _ = get("/login?u=frank", "") }, all[0])
	step("revoke principal", func() {
		if err := m.RevokePrincipal(ctx, "frank"); err != nil {
			t.Fatal(err)
		}
	}, all[5])
	step("revoked principal's cookie", func() {
		if _, who := get("/whoami", frank); who != "" {
			t.Fatalf("revoked user's session served as %q", who)
		}
	}, all[8]) // memstore cannot tell revoked from unknown (store.ErrRevoked is optional)
	step("malformed cookie", func() { get("/whoami", "not-a-token") }, all[7])
	step("guard", func() {
		carol, _ := get("/login?u=carol", "")
		get("/inject", carol)
	}, all[0], all[10])
	step("stale use", func() {
		dave, _ := get("/login?u=dave", "")
		get("/leak", dave)
		s := <-leaked
		if _, err := s.Principal(); err == nil {
			t.Fatal("a handle used after its request ended answered")
		}
	}, all[0], all[11])
	step("store down", func() {
		erin, _ := get("/login?u=erin", "")
		st.down.Store(true)
		defer st.down.Store(false)
		if _, who := get("/whoami", erin); who != "" {
			t.Fatalf("with the store down a request was served as %q", who)
		}
	}, all[0], all[12])
	step("revoke all", func() {
		if err := m.RevokeAll(ctx); err != nil {
			t.Fatal(err)
		}
	}, all[6])

	// Unknown details are counted as "other", not as a new series each.
	ev.Observe(ctx, session.Event{Name: reqlog.EventBadCookie, Detail: "something new"})
	ev.Observe(ctx, session.Event{Name: reqlog.EventGuardBlock, Detail: "report:principal_mismatch"})
	if v := value(t, reg, "cordon_bad_cookies_total", map[string]string{"reason": "other"}); v != 1 {
		t.Errorf("unknown reason counted %v times under other, want 1", v)
	}
	if v := value(t, reg, "cordon_guard_blocks_total", map[string]string{"mode": "report"}); v != 1 {
		t.Errorf("report-mode guard events %v, want 1", v)
	}
}

func labelString(l map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"kind", "reason", "mode", "operation"} {
		if v, ok := l[k]; ok {
			b.WriteString("{" + k + "=" + v + "}")
		}
	}
	return b.String()
}

// TestNamesLint runs promlint over every collector of the package.
func TestNamesLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewSessionEvents(reg); err != nil {
		t.Fatal(err)
	}
	obs, err := NewCacheObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	obs.Revoked(cache.KindPrincipal, time.Millisecond)
	sm, err := NewStoreMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Histogram vectors appear in Gather only once observed.
	sm.Instrument(memstore.New(memstore.Options{}), "memory").Find(context.Background(), store.HashToken("x"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 10 {
		t.Fatalf("only %d metric families gathered", len(mfs))
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
