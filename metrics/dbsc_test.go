package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/cordon-sec/cordon/dbsc/dbsctest"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
	"github.com/prometheus/client_golang/prometheus"
)

// The DBSC series move with registration, refresh, a refused proof and a
// session cookie presented without its bound cookie.
func TestDBSCEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	ev, err := NewSessionEvents(reg)
	if err != nil {
		t.Fatal(err)
	}
	m := session.New(memstore.New(memstore.Options{}), session.Options{
		Dev: true, DBSC: &session.DBSC{}, OnEvent: ev.Observe,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	defer m.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) { session.From(r).Login("alice") })
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		p, _ := session.From(r).Principal()
		io.WriteString(w, p)
	})
	srv := httptest.NewServer(m.Middleware(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	b := &dbsctest.Browser{HTTP: &http.Client{Jar: jar}, Key: dbsctest.NewES256()}
	resp, err := b.HTTP.Get(srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st, err := b.Register(resp); st != 200 || err != nil {
		t.Fatal(st, err)
	}
	if st, _, err := b.Refresh(); st != 200 || err != nil {
		t.Fatal(st, err)
	}
	thief := &dbsctest.Browser{HTTP: &http.Client{}, Key: dbsctest.NewES256(), ID: b.ID, RefreshURL: b.RefreshURL}
	u, _ := url.Parse(srv.URL)
	tj, _ := cookiejar.New(nil)
	for _, c := range jar.Cookies(u) {
		if c.Name == "session" {
			tj.SetCookies(u, []*http.Cookie{c})
		}
	}
	thief.HTTP.Jar = tj
	r, err := thief.HTTP.Get(srv.URL + "/whoami") // unbound
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if _, _, err := thief.Refresh(); err != nil { // 403, then a proof by the wrong key
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"cordon_dbsc_total", "event", "register", 1},
		{"cordon_dbsc_total", "event", "refresh", 1},
		{"cordon_dbsc_total", "event", "unbound", 1}, // the thief's whoami
		// The refresh endpoint takes the session cookie alone (that is
		// where a bound cookie is renewed); the thief's proof, signed by
		// the wrong key, is refused.
		{"cordon_dbsc_proof_failures_total", "reason", "bad_proof", 1},
		{"cordon_dbsc_proof_failures_total", "reason", "no_bound_session", 0},
	} {
		if got := value(t, reg, c.name, map[string]string{c.label: c.value}); got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
}
