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
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var x reqlog.Line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		at, err := time.Parse(time.RFC3339Nano, x.TS)
		if err != nil || x.V != 1 || x.Req == "" || x.Host == "" || x.PID == 0 || x.Seq == 0 || x.Method == "" || x.Path == "" {
			t.Fatalf("line lacks required fields: %q", l)
		}
		lines = append(lines, x)
		ts = append(ts, at)
	}
	if len(lines) != truth.Requests || len(lines) < cfg.Requests {
		t.Fatalf("%d lines, truth says %d", len(lines), truth.Requests)
	}
	// Out of order, but within five minutes.
	var maxTS time.Time
	late, worst := 0, time.Duration(0)
	for _, at := range ts {
		if at.Before(maxTS) {
			late++
			worst = max(worst, maxTS.Sub(at))
		} else {
			maxTS = at
		}
	}
	if late == 0 || worst >= 5*time.Minute {
		t.Errorf("%d lines out of order, the worst by %s: want some, all within 5m", late, worst)
	}
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
