package synth

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/reqlog"
)

// The generated log has the shape of a real one: valid lines of the
// schema, many hosts and processes with per-process seq in arrival order,
// both address families, every session event, cache hits, and lines out of
// order by less than the scanner's default skew.
func TestGeneratedLogShape(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Requests = 30000
	var buf bytes.Buffer
	truth, err := Generate(cfg, &buf)
	if err != nil {
		t.Fatal(err)
	}
	var lines []reqlog.Line
	var ts []time.Time
	truncated, dups, written := 0, 0, 0
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var x reqlog.Line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			truncated++ // a shipper cut it short
			continue
		}
		written++
		// The same line delivered twice (at-least-once) is the same
		// request: counted once here.
		if seen[l] {
			dups++
			continue
		}
		seen[l] = true
		at, err := time.Parse(time.RFC3339Nano, x.TS)
		if err != nil || x.V != 1 || x.Req == "" || x.Host == "" || x.PID == 0 || x.Seq == 0 || x.Method == "" || x.Path == "" {
			t.Fatalf("line lacks required fields: %q", l)
		}
		lines = append(lines, x)
		ts = append(ts, at)
	}
	if written != truth.Requests || truncated != truth.Truncated || len(lines)+truncated < cfg.Requests {
		t.Fatalf("%d whole lines (%d truncated), truth says %d (%d)", written, truncated, truth.Requests, truth.Truncated)
	}
	// Out of order, within five minutes but for the few lines of a
	// stalled shipper or a redelivery.
	var maxTS time.Time
	late, beyond := 0, 0
	for _, at := range ts {
		if at.Before(maxTS) {
			late++
			if maxTS.Sub(at) >= 5*time.Minute {
				beyond++
			}
		} else {
			maxTS = at
		}
	}
	if late == 0 || beyond*1000 > len(ts) {
		t.Errorf("%d lines out of order, %d by 5m or more: want some, and the far ones rare", late, beyond)
	}
	t.Logf("%d lines, %d out of order (%d beyond 5m), %d duplicates, %d truncated; noise %v", written, late, beyond, dups, truncated, truth.Noise)
	// Per process, seq follows arrival order.
	type proc struct {
		host string
		pid  int
	}
	idx := make([]int, len(lines))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ts[idx[a]].Before(ts[idx[b]]) })
	last := map[proc]int64{}
	hosts := map[string]bool{}
	for _, i := range idx {
		p := proc{lines[i].Host, lines[i].PID}
		if lines[i].Seq <= last[p] {
			t.Fatalf("%v: seq %d after %d", p, lines[i].Seq, last[p])
		}
		last[p] = lines[i].Seq
		hosts[p.host] = true
	}
	if len(hosts) != cfg.Hosts || len(last) < cfg.Hosts*cfg.Workers {
		t.Errorf("%d hosts, %d processes", len(hosts), len(last))
	}
	counts := map[string]int{}
	for _, l := range lines {
		a, err := netip.ParseAddr(l.IP)
		if err != nil {
			t.Fatalf("bad ip %q", l.IP)
		}
		if a.Is6() {
			counts["v6"]++
		} else {
			counts["v4"]++
		}
		counts["event:"+l.Event]++
		counts["cache:"+l.Cache]++
		if l.Dev == "" {
			counts["nodev"]++
		}
		if l.ASN != 0 {
			counts["asn"]++
		}
	}
	for _, k := range []string{"v4", "v6", "event:login", "event:logout", "event:renew", "event:expire", "event:guard_block", "cache:hit", "cache:miss", "nodev", "asn"} {
		if counts[k] == 0 {
			t.Errorf("no %s in the log (%v)", k, counts)
		}
	}
}

func TestGenerateDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Requests = 3000
	var a, b, c bytes.Buffer
	Generate(cfg, &a)
	Generate(cfg, &b)
	cfg.Seed++
	Generate(cfg, &c)
	if !bytes.Equal(a.Bytes(), b.Bytes()) || bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("one seed must give one log, another seed another")
	}
}
