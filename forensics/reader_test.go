package forensics_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/forensics"
	"github.com/cordon-sec/cordon/reqlog"
)

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func incidentLog() *logb {
	b := newLog()
	b.add(0, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_b", Dev: dB})
	b.add(time.Second, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_b", SidOut: sA, UidOut: "u_a", Dev: dB})
	return b
}

func TestMalformedLinesAreCountedAndLocated(t *testing.T) {
	b := incidentLog()
	log := "not json\n" + b.lines[0] + "\n\n{\"v\":1}\n" + b.lines[1] + "\n" + `{"v":1,"ts":"2026-11-24T10:00:02Z"` + "\n"
	cfg := forensics.DefaultConfig()
	cfg.MaxMalformed = 2
	rep, err := forensics.Scan(context.Background(), cfg, []forensics.Source{{Name: "a.log", R: strings.NewReader(log)}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stats.Malformed != 3 || rep.Stats.Requests != 2 || rep.Stats.Lines != 6 {
		t.Errorf("malformed %d requests %d lines %d, want 3, 2, 6", rep.Stats.Malformed, rep.Stats.Requests, rep.Stats.Lines)
	}
	want := []forensics.Malformed{{File: "a.log", Line: 1}, {File: "a.log", Line: 4}}
	if len(rep.Stats.FirstBad) != 2 {
		t.Fatalf("first bad: %v", rep.Stats.FirstBad)
	}
	for i, w := range want {
		got := rep.Stats.FirstBad[i]
		if got.File != w.File || got.Line != w.Line || got.Reason == "" {
			t.Errorf("bad line %d: %+v, want %+v with a reason", i, got, w)
		}
	}
	if !strings.Contains(rep.Stats.FirstBad[1].Reason, "missing required field ts") {
		t.Errorf("reason %q", rep.Stats.FirstBad[1].Reason)
	}
	if len(findingsOf(rep, forensics.RuleCookieMismatch)) != 1 {
		t.Error("the scan did not go on past the malformed lines")
	}
	var text strings.Builder
	rep.WriteText(&text, 5)
	if !strings.Contains(text.String(), "a.log:4: missing required field ts") {
		t.Errorf("text report lacks the malformed line's location:\n%s", text.String())
	}
}

func TestGzipByMagicAndTruncation(t *testing.T) {
	b := incidentLog()
	for i := 0; i < 2000; i++ { // enough to span several chunks compressed
		b.add(time.Duration(i)*time.Millisecond+2*time.Second, reqlog.Line{SidIn: sC, UidIn: "u_c", UidView: "u_c", Dev: dA})
	}
	z := gz(t, b.String())
	cfg := forensics.DefaultConfig()
	cfg.ChunkSize = 4096
	t.Run("gzip named .log", func(t *testing.T) {
		rep, err := forensics.Scan(context.Background(), cfg, []forensics.Source{{Name: "x.log", R: bytes.NewReader(z)}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Stats.Requests != 2002 || len(rep.Stats.Errors) != 0 || rep.Stats.InputBytes != int64(len(z)) {
			t.Errorf("requests %d errors %v input %d", rep.Stats.Requests, rep.Stats.Errors, rep.Stats.InputBytes)
		}
		expect(t, rep, forensics.RuleCookieMismatch, 1, sA, forensics.Critical)
	})
	t.Run("plain text named .gz", func(t *testing.T) {
		rep := scanString(t, cfg, b.String())
		if rep.Stats.Requests != 2002 {
			t.Errorf("requests %d", rep.Stats.Requests)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		cut := z[:len(z)*2/3]
		rep, err := forensics.Scan(context.Background(), cfg, []forensics.Source{
			{Name: "cut.gz", R: bytes.NewReader(cut)},
			{Name: "whole.log", R: strings.NewReader(b.String())},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Stats.Errors) != 1 || !strings.Contains(rep.Stats.Errors[0], "cut.gz") || !strings.Contains(rep.Stats.Errors[0], "truncated gzip") {
			t.Errorf("errors %v", rep.Stats.Errors)
		}
		if rep.Stats.Requests <= 2002 || rep.Stats.Requests >= 4004 {
			t.Errorf("requests %d: want the whole file plus the readable part of the cut one", rep.Stats.Requests)
		}
	})
	t.Run("garbage after the magic", func(t *testing.T) {
		rep, err := forensics.Scan(context.Background(), cfg, []forensics.Source{{Name: "bad.gz", R: bytes.NewReader([]byte{0x1f, 0x8b, 0, 0, 0})}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Stats.Errors) != 1 || !strings.Contains(rep.Stats.Errors[0], "bad.gz") {
			t.Errorf("errors %v", rep.Stats.Errors)
		}
	})
}

// Two hosts' files cover the same minutes; the scan merges them by time, so
// a logout in one file and a later use in the other are seen in order.
func TestSourcesMergedByTime(t *testing.T) {
	a, b := newLog(), newLog()
	b.seq = 1000
	a.add(0, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA})
	a.add(time.Minute, reqlog.Line{Method: "POST", Path: "/logout", SidIn: sA, UidIn: "u_a", Event: "logout", Dev: dA})
	for i := 0; i < 20; i++ {
		a.add(time.Minute+time.Duration(i)*time.Minute, reqlog.Line{SidIn: sC, UidIn: "u_c", UidView: "u_c", Dev: dB})
	}
	// Host 2's file starts with the use after the logout.
	b.add(3*time.Minute, reqlog.Line{Host: "web-2", SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA})
	b.add(30*time.Minute, reqlog.Line{Host: "web-2", SidIn: sC, UidIn: "u_c", UidView: "u_c", Dev: dB})
	cfg := forensics.DefaultConfig()
	cfg.ChunkSize = 256
	cfg.Skew = 0
	rep, err := forensics.Scan(context.Background(), cfg, []forensics.Source{
		{Name: "web-1.log", R: strings.NewReader(a.String())},
		{Name: "web-2.log", R: strings.NewReader(b.String())},
	})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, rep, forensics.RuleUseAfterEnd, 1, sA, forensics.High)
	if rep.Stats.Late != 0 || rep.Stats.Files != 2 {
		t.Errorf("late %d files %d", rep.Stats.Late, rep.Stats.Files)
	}
}

func TestScanHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := forensics.Scan(ctx, forensics.DefaultConfig(), []forensics.Source{{Name: "x", R: strings.NewReader(incidentLog().String())}})
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("err %v", err)
	}
}

// Many inputs, each a share of one log (as when every host writes its own
// file): the merged scan finds what the single file shows.
func TestManySources(t *testing.T) {
	b := newLog()
	b.add(0, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA})
	for i := 0; i < 300; i++ {
		b.add(time.Duration(i)*time.Second, reqlog.Line{SidIn: sC, UidIn: "u_c", UidView: "u_c", Dev: dB})
	}
	b.add(301*time.Second, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dB})
	parts := make([][]string, 7)
	for i, l := range b.lines {
		parts[i%7] = append(parts[i%7], l)
	}
	var srcs []forensics.Source
	for i, p := range parts {
		srcs = append(srcs, forensics.Source{Name: "host-" + string(rune('a'+i)), R: strings.NewReader(strings.Join(p, "\n") + "\n")})
	}
	cfg := forensics.DefaultConfig()
	cfg.ChunkSize = 512
	rep, err := forensics.Scan(context.Background(), cfg, srcs)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stats.Requests != 302 || rep.Stats.Files != 7 || rep.Stats.Late != 0 {
		t.Errorf("requests %d files %d late %d", rep.Stats.Requests, rep.Stats.Files, rep.Stats.Late)
	}
	expect(t, rep, forensics.RuleSecondClient, 1, sA, forensics.High)
}
