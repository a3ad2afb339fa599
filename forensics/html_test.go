package forensics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/forensics"
	"github.com/cordon-sec/cordon/reqlog"
)

// The HTML report draws a timeline per finding and escapes what the log
// says: User-Agents, paths and principals come from the outside.
func TestHTMLReport(t *testing.T) {
	b := newLog()
	evil := `<script>alert(1)</script>`
	b.add(0, reqlog.Line{SidIn: sA, UidIn: evil, UidView: evil, Dev: dA, UA: evil})
	b.add(time.Minute, reqlog.Line{SidIn: sA, UidIn: evil, UidView: evil, Dev: dA, IP: "2001:db8::1"})
	b.add(2*time.Minute, reqlog.Line{SidIn: sA, UidIn: evil, UidView: evil, Dev: dB, IP: "192.0.2.9", Path: "/" + evil})
	b.add(3*time.Minute, reqlog.Line{SidIn: sA, UidIn: evil, UidView: evil, Dev: dB, IP: "192.0.2.9"})
	rep := scanString(t, forensics.DefaultConfig(), b.String())
	fs := expect(t, rep, forensics.RuleSecondClient, 1, sA, forensics.High)
	tl := fs[0].Timeline()
	if len(tl) != 1 || len(tl[0].Spans) != 2 || len(tl[0].Uses) != 2 {
		t.Fatalf("timeline: %+v", tl)
	}
	if tl[0].Spans[0].Network != "198.51.100.0/24" || tl[0].Spans[1].Network != "2001:db8::/64" || tl[0].Uses[0].IP != "192.0.2.9" {
		t.Errorf("timeline networks: %+v", tl[0])
	}
	var sb strings.Builder
	if err := rep.WriteHTML(&sb); err != nil {
		t.Fatal(err)
	}
	h := sb.String()
	if strings.Contains(h, "<script") {
		t.Error("log content reached the page unescaped")
	}
	if !strings.Contains(h, "&lt;script&gt;") {
		t.Error("the principal is missing from the page")
	}
	// The incident timeline, then one SVG per finding's session.
	if strings.Count(h, "<svg") != len(rep.Findings)+1 || !strings.Contains(h, "<rect") || !strings.Contains(h, `stroke="#d00"`) {
		t.Errorf("want the incident timeline and one SVG per finding with bars and the firing requests marked:\n%s", h)
	}
	if strings.Contains(h, "<script") || strings.Contains(h, " src=") || strings.Contains(h, "<link") {
		t.Error("the page is not self-contained and script-free")
	}
	for _, want := range []string{`id="incident-count">1 incident <span class="sev high">1 high</span>`, `<details id="I1">`, `href="#I1"`, "1 session to revoke", "cordon revoke -from - -apply &lt;&lt;'EOF'\n" + sA + "\nEOF"} {
		if !strings.Contains(h, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Named -sessions-out file: the command names it.
	rep.SessionsFile = "out dir/revoke.txt"
	sb.Reset()
	if err := rep.WriteHTML(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), `cordon revoke -from &#39;out dir/revoke.txt&#39; -apply`) {
		t.Error("the revoke command does not name the -sessions-out file")
	}
}

// A log without incidents says so first.
func TestHTMLReportClean(t *testing.T) {
	b := newLog()
	b.add(0, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA})
	rep := scanString(t, forensics.DefaultConfig(), b.String())
	var sb strings.Builder
	if err := rep.WriteHTML(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), `id="incident-count">No incidents</p>`) {
		t.Errorf("clean page:\n%.2000s", sb.String())
	}
}

func TestSessionsToRevoke(t *testing.T) {
	b := newLog()
	b.add(0, reqlog.Line{SidOut: "not-a-fingerprint", UidOut: "u_x"})
	b.add(time.Second, reqlog.Line{SidOut: sA, UidOut: "u_a"})
	b.add(2*time.Second, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_b", Event: "guard_block"})
	rep := scanString(t, forensics.DefaultConfig(), b.String())
	if got := strings.Join(rep.SessionsToRevoke(forensics.High), ","); got != sA {
		t.Errorf("high: %s", got)
	}
	if got := strings.Join(rep.SessionsToRevoke(forensics.Medium), ","); got != sA+","+sB {
		t.Errorf("medium: %s", got)
	}
	var sb strings.Builder
	if err := rep.WriteSessions(&sb, forensics.Medium); err != nil || sb.String() != sA+"\n"+sB+"\n" {
		t.Errorf("WriteSessions: %v %q", err, sb.String())
	}
}
