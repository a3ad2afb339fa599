package lab

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store/memstore"
)

// BenchmarkRequest measures one signed-in GET /account through the
// composition, in process, without the scheduler or any simulated latency:
// the cost each mitigation adds to a request.
func BenchmarkRequest(b *testing.B) {
	for _, name := range []string{"none", "fresh-env", "value-context", "sealed-handles,egress-guard", "all"} {
		m, err := ParseMitigations(name)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			st := memstore.New(memstore.Options{})
			srv, err := NewServer(Options{Mitigations: m, Store: st, FailRate: -1})
			if err != nil {
				b.Fatal(err)
			}
			tok, err := createSession(context.Background(), st, cryptoRand{}, time.Now(), "alice")
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/account", nil)
			req.AddCookie(&http.Cookie{Name: CookieName, Value: tok})
			b.ReportAllocs()
			for b.Loop() {
				rr := httptest.NewRecorder()
				srv.ServeHTTP(rr, req)
				if rr.Code != http.StatusOK {
					b.Fatalf("status %d", rr.Code)
				}
			}
		})
	}
}

// BenchmarkReplay measures one full eight-step replay over loopback HTTP.
func BenchmarkReplay(b *testing.B) {
	for _, m := range []Mitigations{{}, AllMitigations()} {
		b.Run(m.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Replay(context.Background(), ReplayOptions{Mitigations: m}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
