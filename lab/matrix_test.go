package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func stress(t *testing.T, m Mitigations, runs int) StressResult {
	t.Helper()
	r, err := Stress(context.Background(), m, StressOptions{Runs: runs, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStressBaselineLeaks(t *testing.T) {
	r := stress(t, Mitigations{}, 30)
	if r.Leaks == 0 {
		t.Fatalf("the vulnerable composition never leaked under stress: %+v", r)
	}
	if r.Blocked != 0 {
		t.Fatalf("nothing can block in the vulnerable composition, got %d", r.Blocked)
	}
}

// TestStressEachMitigationAlone: each defence alone keeps every wrong cookie
// in; the two that intervene (rather than remove the mechanism) show their
// refusals.
func TestStressEachMitigationAlone(t *testing.T) {
	for _, name := range MitigationNames() {
		t.Run(name, func(t *testing.T) {
			m, _ := ParseMitigations(name)
			r := stress(t, m, 30)
			if r.Leaks != 0 {
				t.Fatalf("%s alone: %d leaks", name, r.Leaks)
			}
			switch name {
			case "sealed-handles", "egress-guard":
				if r.Blocked == 0 {
					t.Fatalf("%s alone blocked nothing: %+v", name, r)
				}
			default:
				if r.Blocked != 0 {
					t.Fatalf("%s alone: %d blocked, want 0 (nothing reaches a handle or the guard)", name, r.Blocked)
				}
			}
		})
	}
}

// TestStressGuardCombinationsNeverLeak: no combination that includes the
// guard lets a wrong cookie out.
func TestStressGuardCombinationsNeverLeak(t *testing.T) {
	n := 0
	for _, m := range Combinations() {
		if !m.EgressGuard {
			continue
		}
		n++
		if r := stress(t, m, 20); r.Leaks != 0 || r.Requests != 20*12 {
			t.Errorf("%s: %+v", m, r)
		}
	}
	if n != 16 {
		t.Fatalf("%d combinations with the guard, want 16", n)
	}
}

func TestStressIsDeterministic(t *testing.T) {
	a, b := stress(t, Mitigations{}, 10), stress(t, Mitigations{}, 10)
	if a != b {
		t.Fatalf("same seed, different results: %+v vs %+v", a, b)
	}
}

func TestCombinations(t *testing.T) {
	cs := Combinations()
	if len(cs) != 32 {
		t.Fatalf("%d combinations", len(cs))
	}
	seen := map[Mitigations]bool{}
	for _, m := range cs {
		if seen[m] {
			t.Fatalf("duplicate %s", m)
		}
		seen[m] = true
	}
	if cs[0] != (Mitigations{}) || cs[31] != AllMitigations() || cs[1] != (Mitigations{FreshEnv: true}) {
		t.Fatalf("order: first %s, second %s, last %s", cs[0], cs[1], cs[31])
	}
	for _, m := range cs {
		back, err := ParseMitigations(strings.Join(m.Names(), ","))
		if err != nil || back != m {
			t.Fatalf("round trip %s: %s %v", m, back, err)
		}
	}
	if _, err := ParseMitigations("fresh-env,bogus"); err == nil {
		t.Fatal("unknown mitigation accepted")
	}
}

func TestMatrixJSON(t *testing.T) {
	mx, err := RunMatrix(context.Background(), MatrixOptions{
		StressOptions: StressOptions{Runs: 4},
		Combinations:  []Mitigations{{}, {EgressGuard: true}, {DBSC: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := mx.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Rows) != 3 {
		t.Fatalf("rows: %s", buf.String())
	}
	// The five keys the contract checks, with their types, the three that
	// say which link a row breaks, and the two that say what the delivered
	// session was worth after the bound cookie's TTL.
	for _, r := range got.Rows {
		if len(r) != 10 {
			t.Fatalf("row has %d keys, want 10: %v", len(r), r)
		}
		for k, kind := range map[string]string{"mitigations": "list", "replay_leaked": "bool", "runs": "num", "leaks": "num", "blocked": "num",
			"breaks_link": "num", "breaks_step": "num", "breaks_name": "string",
			"stolen_usable_after_ttl": "bool", "recipient_refresh_refused": "bool"} {
			ok := false
			switch r[k].(type) {
			case []any:
				ok = kind == "list"
			case bool:
				ok = kind == "bool"
			case float64:
				ok = kind == "num"
			case string:
				ok = kind == "string"
			}
			if !ok {
				t.Fatalf("row key %s is %T, want %s: %v", k, r[k], kind, r)
			}
		}
	}
	if got.Rows[0]["breaks_link"].(float64) != 0 || got.Rows[1]["breaks_link"].(float64) == 0 {
		t.Fatalf("breaks_link: %s", buf.String())
	}
	if ms, _ := got.Rows[0]["mitigations"].([]any); ms == nil || len(ms) != 0 {
		t.Fatalf("baseline mitigations = %v, want []", got.Rows[0]["mitigations"])
	}
	if got.Rows[0]["replay_leaked"] != true || got.Rows[1]["replay_leaked"] != false {
		t.Fatalf("replay_leaked: %s", buf.String())
	}
	if got.Rows[1]["blocked"].(float64) < 1 || got.Rows[0]["runs"].(float64) != 4 {
		t.Fatalf("numbers: %s", buf.String())
	}
	// The baseline's delivered session still works after the TTL; dbsc's
	// leaks as well, but is dead by then and its refresh refused.
	if got.Rows[0]["stolen_usable_after_ttl"] != true || got.Rows[0]["recipient_refresh_refused"] != false {
		t.Fatalf("baseline aftermath: %v", got.Rows[0])
	}
	if got.Rows[1]["stolen_usable_after_ttl"] != false {
		t.Fatalf("egress-guard aftermath: %v", got.Rows[1])
	}
	if r := got.Rows[2]; r["replay_leaked"] != true || r["stolen_usable_after_ttl"] != false || r["recipient_refresh_refused"] != true || r["breaks_link"].(float64) != 0 {
		t.Fatalf("dbsc row: %v", r)
	}
	var text bytes.Buffer
	if err := mx.WriteText(&text); err != nil || !strings.Contains(text.String(), "none (vulnerable)") ||
		!strings.Contains(text.String(), "dead, refresh refused") || !strings.Contains(text.String(), "still works") {
		t.Fatalf("text: %v\n%s", err, text.String())
	}
}

func TestSVGIsWellFormed(t *testing.T) {
	res, err := Replay(context.Background(), ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteSVG(&buf, "t <&> \"x\"", res.Events, res.Headings); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&buf)
	texts := 0
	var all strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok {
			all.Write(cd)
			texts++
		}
	}
	s := all.String()
	for _, want := range []string{"request goroutine", "background goroutine", "env", "cookie jar", "step 7", "WRONG SESSION", "jar(#3)"} {
		if !strings.Contains(s, want) {
			t.Errorf("diagram lacks %q", want)
		}
	}
}
