package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runLabCmd(t *testing.T, ctx context.Context, env *Env, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	if env == nil {
		env = &Env{}
	}
	env.Stdout, env.Stderr = &out, &errb
	err := Run(ctx, env, args)
	return out.String(), err
}

func TestLabMatrixJSON(t *testing.T) {
	out, err := runLabCmd(t, context.Background(), nil, "lab", "matrix", "-format", "json", "-runs", "3")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Rows []struct {
			Mitigations  []string `json:"mitigations"`
			ReplayLeaked bool     `json:"replay_leaked"`
			Runs         int      `json:"runs"`
			Leaks        int      `json:"leaks"`
			Blocked      int      `json:"blocked"`
			Stolen       bool     `json:"stolen_usable_after_ttl"`
			Refused      bool     `json:"recipient_refresh_refused"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(m.Rows) != 33 || !m.Rows[0].ReplayLeaked || len(m.Rows[0].Mitigations) != 0 || m.Rows[0].Runs != 3 || !m.Rows[0].Stolen {
		t.Fatalf("rows: %+v", m.Rows)
	}
	for _, r := range m.Rows[1:32] {
		if r.ReplayLeaked || r.Stolen {
			t.Errorf("%v: replay leaked", r.Mitigations)
		}
	}
	// dbsc: the leak happens, the delivered session is dead past the TTL.
	if d := m.Rows[32]; strings.Join(d.Mitigations, ",") != "dbsc" || !d.ReplayLeaked || d.Stolen || !d.Refused {
		t.Errorf("dbsc row: %+v", d)
	}
}

func TestLabReplayDBSC(t *testing.T) {
	out, err := runLabCmd(t, context.Background(), nil, "lab", "replay", "-mitigations", "dbsc")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{">>> LEAK: here response #3 hands bob's browser alice's session",
		"\nStep 9. ", ">>> DBSC: here the delivered session dies", "\nStep 10. ", ">>> DBSC: here the recipient's refresh is refused",
		"\nStep 11. ", "Alice's browser's refresh with her key: status 200, refreshed."} {
		if !strings.Contains(out, s) {
			t.Errorf("replay -mitigations dbsc lacks %q", s)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
	// The oracle: the same aftermath without dbsc, the session still works.
	out, err = runLabCmd(t, context.Background(), nil, "lab", "replay", "-aftermath")
	if err != nil || !strings.Contains(out, ">>> STILL WORKS: bob's browser is still served as alice") || strings.Contains(out, ">>> DBSC:") {
		t.Errorf("replay -aftermath: %v\n%s", err, out)
	}
	js, err := runLabCmd(t, context.Background(), nil, "lab", "replay", "-mitigations", "dbsc", "-format", "json")
	var got struct {
		Leaked    bool `json:"leaked"`
		Aftermath struct {
			StolenUsable     bool `json:"stolen_usable"`
			RecipientRefresh struct {
				Status    int  `json:"status"`
				NewCookie bool `json:"new_cookie"`
			} `json:"recipient_refresh"`
		} `json:"aftermath"`
	}
	if err != nil || json.Unmarshal([]byte(js), &got) != nil || !got.Leaked || got.Aftermath.StolenUsable || got.Aftermath.RecipientRefresh.Status != 400 || got.Aftermath.RecipientRefresh.NewCookie {
		t.Errorf("json: %v %+v", err, got)
	}
	if _, err := runLabCmd(t, context.Background(), nil, "lab", "replay", "-mitigations", "dbsc,bogus"); err == nil {
		t.Error("unknown mitigation accepted")
	}
}

func TestLabReplayTextAndSVG(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "r.svg")
	out, err := runLabCmd(t, context.Background(), nil, "lab", "replay", "-svg", svg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 8; i++ {
		if !strings.Contains(out, "\nStep "+string(rune('0'+i))+". ") {
			t.Errorf("output lacks step %d", i)
		}
	}
	if !strings.Contains(out, ">>> LEAK: here alice's session is written into request #3's cookie jar") ||
		!strings.Contains(out, ">>> LEAK: here response #3 hands bob's browser alice's session") ||
		!strings.Contains(out, "LEAK: bob's browser now holds alice's session") {
		t.Fatalf("no leak reported:\n%s", out)
	}
	if strings.Contains(out, "Hash#clear") || strings.Contains(out, "HTTP_COOKIE") {
		t.Fatalf("the story speaks Rack:\n%s", out)
	}
	trace, err := runLabCmd(t, context.Background(), nil, "lab", "replay", "-format", "trace")
	if err != nil || !strings.Contains(trace, "\nstep 7:") || !strings.Contains(trace, "WRONG SESSION") {
		t.Fatalf("trace format: %v\n%s", err, trace)
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Fatalf("svg: %v %q", err, b[:min(len(b), 40)])
	}
	out, err = runLabCmd(t, context.Background(), nil, "lab", "replay", "-mitigations", "sealed-handles")
	if err != nil || !strings.Contains(out, "No leak") || !strings.Contains(out, ">>> the chain breaks here: link 3") {
		t.Fatalf("sealed replay: %v\n%s", err, out)
	}
}

func TestLabReplayJSON(t *testing.T) {
	out, err := runLabCmd(t, context.Background(), nil, "lab", "replay", "-format", "json", "-mitigations", "egress-guard")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Mitigations []string `json:"mitigations"`
		Leaked      bool     `json:"leaked"`
		Blocked     int      `json:"blocked"`
		Responses   []struct {
			Status   int    `json:"status"`
			CookieFP string `json:"cookie_fp"`
		} `json:"responses"`
		Events []struct {
			Object, Op string
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Leaked || r.Blocked != 1 || len(r.Responses) != 3 || r.Responses[2].Status != 500 || r.Responses[2].CookieFP != "" {
		t.Fatalf("guard replay: %+v", r)
	}
	blocked := false
	for _, e := range r.Events {
		blocked = blocked || (e.Object == "guard" && e.Op == "block")
	}
	if !blocked || len(r.Mitigations) != 1 {
		t.Fatalf("no guard block in the trace: %+v", r)
	}
}

func TestLabBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"lab"},
		{"lab", "bogus"},
		{"lab", "matrix", "-runs", "0"},
		{"lab", "matrix", "-format", "xml"},
		{"lab", "replay", "-mitigations", "nope"},
		{"lab", "serve", "-addr", "0.0.0.0:0"},
		{"lab", "attack"},
		{"lab", "attack", "-url", "http://127.0.0.1:1", "-concurrency", "0"},
		{"lab", "replay", "stray"},
	} {
		_, err := runLabCmd(t, context.Background(), nil, args...)
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}

func TestLabServeAndAttack(t *testing.T) {
	for _, tc := range []struct {
		flags     []string
		crossings bool
	}{
		{[]string{"-vulnerable"}, true},
		{nil, false},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			env := &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Ready: func(u string) { ready <- u }}
			done <- Run(ctx, env, append([]string{"lab", "serve", "-addr", "127.0.0.1:0"}, tc.flags...))
		}()
		var u string
		select {
		case u = <-ready:
		case err := <-done:
			t.Fatalf("serve %v: %v", tc.flags, err)
		case <-time.After(10 * time.Second):
			t.Fatal("serve not ready")
		}
		out, err := runLabCmd(t, context.Background(), nil, "lab", "attack", "-url", u, "-requests", "500", "-format", "json")
		cancel()
		if serr := <-done; serr != nil {
			t.Errorf("serve %v: %v", tc.flags, serr)
		}
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Requests, Crossings, Errors int
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if res.Requests != 500 || res.Errors != 0 || (res.Crossings > 0) != tc.crossings {
			t.Errorf("serve %v: attack saw %+v, want crossings=%v", tc.flags, res, tc.crossings)
		}
	}
}
