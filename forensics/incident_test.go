package forensics_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/forensics"
	"github.com/cordon-sec/cordon/reqlog"
)

// One leak seen by five rules is one incident, with one severity, its
// owner and recipient, and a paragraph a responder can read; an unrelated
// guard event is another.
func TestIncidentsGroupOneLeak(t *testing.T) {
	b := newLog()
	b.add(0, reqlog.Line{SidOut: sA, UidOut: "u_a", UidView: "u_a", Dev: dA, Event: "login", Path: "/login", Seq: 1})
	b.add(time.Second, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA, Seq: 2})
	b.add(2*time.Second, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_b", Dev: dB, UA: "Mozilla/5.0 B", IP: "192.0.2.9", Seq: 3})
	// The worker sets u_a's session in u_b's response.
	b.add(3*time.Second, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_b", SidOut: sA, UidOut: "u_a", Dev: dB, UA: "Mozilla/5.0 B", IP: "192.0.2.9", Seq: 4})
	for i := 0; i < 3; i++ {
		b.add(time.Duration(60+i*60)*time.Second, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dB, UA: "Mozilla/5.0 B", IP: "192.0.2.9", Host: "web-2", Seq: int64(10 + i)})
	}
	b.add(5*time.Minute, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_b", Dev: dB, UA: "Mozilla/5.0 B", IP: "192.0.2.9", Host: "web-2", Seq: 20})
	// Elsewhere, later: the guard stopped something on another session.
	b.add(20*time.Minute, reqlog.Line{SidIn: sC, UidIn: "u_c", UidView: "u_c", Event: "guard_block", Detail: "principal_mismatch", Host: "web-3", Seq: 1})
	rep := scanString(t, forensics.DefaultConfig(), b.String())

	if len(rep.Incidents) != 2 {
		for _, f := range rep.Findings {
			t.Logf("%s %v", f.Rule, f.Sessions)
		}
		t.Fatalf("%d incidents, want 2", len(rep.Incidents))
	}
	in := rep.Incidents[0]
	if in.ID != "I1" || in.Severity != forensics.Critical || strings.Join(in.Rules, ",") != "cookie-mismatch,process-handoff,second-client,concurrent-networks,identity-flip" {
		t.Errorf("incident: %s %s %v", in.ID, in.Severity, in.Rules)
	}
	if strings.Join(in.Owners, ",") != "u_a" || strings.Join(in.Recipients, ",") != "u_b" || strings.Join(in.Sessions, ",") != sA {
		t.Errorf("owners %v recipients %v sessions %v", in.Owners, in.Recipients, in.Sessions)
	}
	for _, want := range []string{"u_a's session aaaaaaaa", "web-1 pid 100", "u_b's client", "used it 3 more time(s), until 10:03:00", "Seen by 5 rules"} {
		if !strings.Contains(in.Summary, want) {
			t.Errorf("summary lacks %q: %s", want, in.Summary)
		}
	}
	if !in.First.Equal(b.t0.Add(3*time.Second)) || !in.Last.Equal(b.t0.Add(5*time.Minute)) {
		t.Errorf("first %s last %s", in.First, in.Last)
	}
	if in2 := rep.Incidents[1]; in2.Severity != forensics.Medium || strings.Join(in2.Owners, ",") != "u_c" || len(in2.Recipients) != 0 {
		t.Errorf("second incident: %+v", in2)
	}
	if p, o, r := rep.Affected(forensics.Info); p != 3 || o != 2 || r != 1 {
		t.Errorf("affected %d %d %d", p, o, r)
	}
	if got := rep.SessionsToRevoke(forensics.High); strings.Join(got, ",") != sA {
		t.Errorf("to revoke: %v", got)
	}

	// JSON keeps the findings array and adds the incidents, which index it.
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var j struct {
		Findings  []map[string]any `json:"findings"`
		Incidents []struct {
			ID, Severity, Summary string
			Rules, Owners         []string
			Recipients, Sessions  []string
			Findings              []int
		} `json:"incidents"`
		Summary struct {
			Incidents     int      `json:"incidents"`
			People        int      `json:"people_affected"`
			Revoke        []string `json:"sessions_to_revoke"`
			RevokeCommand string   `json:"revoke_command"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(buf.Bytes(), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Findings) != len(rep.Findings) || len(j.Incidents) != 2 || len(j.Incidents[0].Findings) != 5 || j.Summary.Incidents != 2 || j.Summary.People != 3 || len(j.Summary.Revoke) != 1 || j.Summary.RevokeCommand == "" {
		t.Errorf("json: %s", buf.String())
	}
	for _, i := range j.Incidents[0].Findings {
		if i < 0 || i >= len(j.Findings) || j.Findings[i]["sessions"].([]any)[0] != sA {
			t.Errorf("incident finding index %d", i)
		}
	}
	for _, k := range []string{"rule", "severity", "sessions", "principals", "requests", "first", "last", "count", "evidence"} {
		if _, ok := j.Findings[0][k]; !ok {
			t.Errorf("finding lacks %s", k)
		}
	}
}

// Two sessions handed out by one process within its window are one
// incident; the same two people again within the hour are one incident.
func TestIncidentsGroupByProcessAndPair(t *testing.T) {
	b := newLog()
	b.add(0, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA, Seq: 1})
	b.add(time.Second, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_b", Dev: dB, UA: "B", Seq: 2})
	b.add(2*time.Second, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_a", SidOut: sA, UidOut: "u_a", Dev: dB, UA: "B", Seq: 3})
	b.add(3*time.Second, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_b", SidOut: sB, UidOut: "u_b", Dev: dA, Seq: 4})
	rep := scanString(t, forensics.DefaultConfig(), b.String())
	if len(rep.Incidents) != 1 || len(rep.Incidents[0].Sessions) != 2 {
		t.Fatalf("%d incidents: %+v", len(rep.Incidents), rep.Incidents)
	}

	b = newLog()
	b.add(0, reqlog.Line{Cache: "hit", SidIn: sB, UidIn: "u_b", UidView: "u_a", Path: "/inbox", Host: "web-1"})
	b.add(10*time.Minute, reqlog.Line{Cache: "hit", SidIn: sB, UidIn: "u_b", UidView: "u_a", Path: "/inbox", Host: "web-2"})
	b.add(3*time.Hour, reqlog.Line{Cache: "hit", SidIn: sB, UidIn: "u_b", UidView: "u_a", Path: "/inbox", Host: "web-2"})
	rep = scanString(t, forensics.DefaultConfig(), b.String())
	if len(rep.Findings) != 3 || len(rep.Incidents) != 2 || len(rep.Incidents[0].Findings) != 2 || strings.Join(rep.Incidents[0].Hosts, ",") != "web-1,web-2" {
		t.Fatalf("%d findings, %d incidents", len(rep.Findings), len(rep.Incidents))
	}
}
