package forensics_test

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/cordon-sec/cordon/forensics"
	"github.com/cordon-sec/cordon/forensics/synth"
)

var (
	benchOnce sync.Once
	benchLog  []byte
	benchBad  int64 // lines the generator cut short
)

func benchData(b *testing.B) []byte {
	benchOnce.Do(func() {
		gc := synth.DefaultConfig()
		gc.Requests = 300000
		if n, err := strconv.Atoi(os.Getenv("CORDON_BENCH_REQUESTS")); err == nil && n > 0 {
			gc.Requests = n
		}
		var buf bytes.Buffer
		truth, err := synth.Generate(gc, &buf)
		if err != nil {
			b.Fatal(err)
		}
		benchLog, benchBad = buf.Bytes(), int64(truth.Truncated)
	})
	return benchLog
}

func benchScan(b *testing.B, workers int) {
	data := benchData(b)
	cfg := forensics.DefaultConfig()
	cfg.Workers = workers
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := forensics.Scan(context.Background(), cfg, []forensics.Source{{Name: "bench", R: bytes.NewReader(data)}})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Stats.Malformed != benchBad || len(rep.Findings) == 0 {
			b.Fatalf("malformed %d, findings %d", rep.Stats.Malformed, len(rep.Findings))
		}
	}
}

// BenchmarkScan measures the whole scan (read, parse, rules) of an
// in-memory generated log, with one parsing worker and with one per CPU.
func BenchmarkScan(b *testing.B) {
	b.Run("workers=1", func(b *testing.B) { benchScan(b, 1) })
	b.Run("workers=GOMAXPROCS", func(b *testing.B) { benchScan(b, runtime.GOMAXPROCS(0)) })
}
