package forensics

import (
	"fmt"
	"testing"
)

// Two processes whose host+pid hashes collide keep separate state.
func TestProcessHashCollision(t *testing.T) {
	sc := newScanner(DefaultConfig())
	const s = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	line := func(host string, seq int, in, out, dev string) string {
		return fmt.Sprintf(`{"v":1,"ts":"2026-11-24T10:00:%02dZ","req":"%s-%d","host":%q,"pid":7,"seq":%d,"ip":"192.0.2.1","dev":%q,"sid_in":%q,"uid_in":"u","sid_out":%q,"uid_out":"u"}`+"\n", seq, host, seq, host, seq, dev, in, out)
	}
	data := line("a", 1, s, "", "0000000000000000000000000000000a") +
		line("b", 2, "", s, "0000000000000000000000000000000b") +
		line("a", 3, "", s, "0000000000000000000000000000000b")
	b := parseChunk([]byte(data), nil, sc.seed, nil, nil)
	if len(b.recs) != 3 {
		t.Fatalf("parsed %d of 3: %v", len(b.recs), b.bad)
	}
	for i := range b.recs {
		b.recs[i].ph = 42 // force the collision
	}
	sc.process(&b.recs[0])
	sc.process(&b.recs[1])
	for _, f := range sc.order {
		if f.Rule == RuleProcessHandoff {
			t.Fatalf("handoff across two processes: %s", f.Evidence)
		}
	}
	sc.process(&b.recs[2])
	found := false
	for _, f := range sc.order {
		found = found || f.Rule == RuleProcessHandoff
	}
	if !found || len(sc.procs)+len(sc.procsSlow) != 2 {
		t.Errorf("found %v, processes %d+%d", found, len(sc.procs), len(sc.procsSlow))
	}
}
