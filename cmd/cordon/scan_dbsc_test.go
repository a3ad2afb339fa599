package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestScanDBSCAgainstTruth runs `cordon gen-logs -dbsc-share` into `cordon
// scan -format json`: the copies of device-bound sessions are found, each
// as one incident, their sessions are in -sessions-out, and the benign
// lapses are counted, not listed.
func TestScanDBSCAgainstTruth(t *testing.T) {
	dir := t.TempDir()
	logf, truthf := filepath.Join(dir, "g.log"), filepath.Join(dir, "truth.json")
	if _, _, err := scanRun(t, nil, "gen-logs", "-n", "60000", "-incidents", "3", "-seed", "4", "-dbsc-share", "0.4", "-o", logf, "-truth", truthf); err != nil {
		t.Fatal(err)
	}
	var truth scanTruth
	tb, _ := os.ReadFile(truthf)
	scanReadJSON(t, tb, &truth)
	copies := 0
	for _, in := range truth.Incidents {
		if in.Rule == "dbsc-copy" {
			copies++
		}
	}
	if len(truth.Incidents) != 30 || copies != 3 {
		t.Fatalf("truth: %d incidents, %d dbsc-copy", len(truth.Incidents), copies)
	}
	sessOut := filepath.Join(dir, "revoke.txt")
	out, _, err := scanRun(t, nil, "scan", "-format", "json", "-sessions-out", sessOut, logf)
	if !errors.Is(err, errIncidents) {
		t.Fatalf("err %v, want the exit-1 result", err)
	}
	var rep scanOutput
	scanReadJSON(t, []byte(out), &rep)
	scanCheckTruth(t, rep, truth)
	sb, _ := os.ReadFile(sessOut)
	revoke := strings.Fields(string(sb))
	for _, in := range truth.Incidents {
		if in.Rule == "dbsc-copy" && !slices.Contains(revoke, in.Sessions[0]) {
			t.Errorf("%s: session %s not in -sessions-out", in.ID, in.Sessions[0])
		}
	}
	var noise struct {
		Stats struct {
			Noise map[string]struct {
				Count int `json:"count"`
			} `json:"noise"`
		} `json:"stats"`
	}
	scanReadJSON(t, []byte(out), &noise)
	var gen struct {
		Noise map[string]int `json:"noise"`
	}
	scanReadJSON(t, tb, &gen)
	// As many as written, give or take a line delivered twice or cut short.
	if n, w := noise.Stats.Noise["dbsc-copy/low"].Count, gen.Noise["dbsc-lapse"]; w < 10 || n < w*49/50 || n > w*51/50+1 {
		t.Errorf("scan counted %d lapses, the generator wrote %d", n, gen.Noise["dbsc-lapse"])
	}
}

// TestGenLogsDBSCShare checks that -dbsc-share 0 is the default log, with
// no DBSC line, and that a share writes registrations, refreshes and
// lapses, deterministically.
func TestGenLogsDBSCShare(t *testing.T) {
	a, _, err := scanRun(t, nil, "gen-logs", "-n", "5000", "-seed", "9")
	if err != nil {
		t.Fatal(err)
	}
	z, _, _ := scanRun(t, nil, "gen-logs", "-n", "5000", "-seed", "9", "-dbsc-share", "0")
	if a != z || strings.Contains(a, "dbsc_") {
		t.Error("-dbsc-share 0 changes the default log")
	}
	b, _, _ := scanRun(t, nil, "gen-logs", "-n", "5000", "-seed", "9", "-dbsc-share", "0.5")
	c, _, _ := scanRun(t, nil, "gen-logs", "-n", "5000", "-seed", "9", "-dbsc-share", "0.5")
	if b != c {
		t.Error("same seed and share, different logs")
	}
	for _, ev := range []string{`"event":"dbsc_register"`, `"event":"dbsc_refresh"`, `"event":"dbsc_unbound"`} {
		if !strings.Contains(b, ev) {
			t.Errorf("log lacks %s", ev)
		}
	}
}
