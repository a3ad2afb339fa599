package proxy

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/dbsc/dbsctest"
)

// TestDBSCMemoryFigure measures the memory one device-bound session costs
// (the figure in docs/proxy.md):
//
//	DBSC_MEM=1 go test -v -run TestDBSCMemoryFigure -count=1 ./proxy/
func TestDBSCMemoryFigure(t *testing.T) {
	if os.Getenv("DBSC_MEM") == "" {
		t.Skip("set DBSC_MEM=1")
	}
	for _, tc := range []struct {
		name string
		key  *dbsctest.Client
	}{{"ES256 P-256", dbsctest.NewES256()}, {"RS256 2048", dbsctest.NewRS256(2048)}, {"RS256 4096", dbsctest.NewRS256(4096)}} {
		key := tc.key
		jwk := key.Key().JWK()
		n := 1 << 16
		runtime.GC()
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		s := newDBSCState(DBSC{}, &Options{Now: time.Now})
		for i := range n {
			s.put(boundSession{fp: fmt.Sprintf("%032x", i), id: fmt.Sprintf("%043d", i), jwk: append([]byte(nil), jwk...)})
		}
		runtime.GC()
		runtime.ReadMemStats(&b)
		fmt.Printf("%s: %d bytes per device-bound session\n", tc.name, (b.HeapAlloc-a.HeapAlloc)/uint64(n))
		runtime.KeepAlive(s)
	}
}
