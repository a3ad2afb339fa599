package forensics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/forensics"
	"github.com/cordon-sec/cordon/reqlog"
)

// logb builds request logs line by line from reqlog.Line, the writers' own
// type, so the tests also check that the scanner reads what they write.
type logb struct {
	t0    time.Time
	seq   int64
	n     int
	lines []string
}

func newLog() *logb {
	return &logb{t0: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)}
}

const (
	sA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	sB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	sC = "cccccccccccccccccccccccccccccccc"
	dA = "0000000000000000000000000000000a"
	dB = "0000000000000000000000000000000b"
)

// add appends a line at t0+off; zero fields get plausible defaults. It
// returns the request id.
func (b *logb) add(off time.Duration, l reqlog.Line) string {
	b.n++
	l.V = 1
	l.TS = b.t0.Add(off).Format(time.RFC3339Nano)
	if l.Req == "" {
		l.Req = fmt.Sprintf("req-%04d", b.n)
	}
	if l.Host == "" {
		l.Host = "web-1"
	}
	if l.PID == 0 {
		l.PID = 100
	}
	if l.Seq == 0 {
		b.seq++
		l.Seq = b.seq
	}
	if l.IP == "" {
		l.IP = "198.51.100.7"
	}
	if l.UA == "" {
		l.UA = "Mozilla/5.0 A"
	}
	if l.Method == "" {
		l.Method = "GET"
	}
	if l.Path == "" {
		l.Path = "/inbox"
	}
	if l.Status == 0 {
		l.Status = 200
	}
	j, err := json.Marshal(l)
	if err != nil {
		panic(err)
	}
	b.lines = append(b.lines, string(j))
	return l.Req
}

func (b *logb) String() string { return strings.Join(b.lines, "\n") + "\n" }

func scanString(t *testing.T, cfg forensics.Config, log string) *forensics.Report {
	t.Helper()
	rep, err := forensics.Scan(context.Background(), cfg, []forensics.Source{{Name: "t.log", R: strings.NewReader(log)}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stats.Malformed != 0 {
		t.Fatalf("malformed lines: %v", rep.Stats.FirstBad)
	}
	return rep
}

func findingsOf(rep *forensics.Report, rule string) []*forensics.Finding {
	var out []*forensics.Finding
	for _, f := range rep.Findings {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

// expect checks that rule fired exactly want times, each time naming
// session (when not empty).
func expect(t *testing.T, rep *forensics.Report, rule string, want int, session string, sev forensics.Severity) []*forensics.Finding {
	t.Helper()
	fs := findingsOf(rep, rule)
	if len(fs) != want {
		for _, f := range rep.Findings {
			t.Logf("finding %s %s %v: %s", f.Rule, f.Severity, f.Sessions, f.Evidence)
		}
		t.Fatalf("rule %s: %d findings, want %d", rule, len(fs), want)
	}
	for _, f := range fs {
		if session != "" && (len(f.Sessions) == 0 || f.Sessions[0] != session) {
			t.Errorf("rule %s names sessions %v, want %s", rule, f.Sessions, session)
		}
		if f.Severity != sev {
			t.Errorf("rule %s severity %s, want %s", rule, f.Severity, sev)
		}
		if f.Evidence == "" || len(f.Requests) == 0 || f.First.IsZero() {
			t.Errorf("rule %s finding lacks evidence, requests or time: %+v", rule, f)
		}
	}
	return fs
}

func TestRuleCookieMismatch(t *testing.T) {
	def := forensics.DefaultConfig()
	t.Run("other principal", func(t *testing.T) {
		b := newLog()
		b.add(0, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_b", SidOut: sA, UidOut: "u_a", Dev: dB})
		fs := expect(t, scanString(t, def, b.String()), forensics.RuleCookieMismatch, 1, sA, forensics.Critical)
		if got := strings.Join(fs[0].Principals, ","); got != "u_a,u_b" {
			t.Errorf("principals %s", got)
		}
	})
	t.Run("anonymous response sets a principal's session", func(t *testing.T) {
		b := newLog()
		b.add(0, reqlog.Line{SidOut: sA, UidOut: "u_a"})
		expect(t, scanString(t, def, b.String()), forensics.RuleCookieMismatch, 1, sA, forensics.Critical)
	})
	t.Run("login, signup and renewal are fine", func(t *testing.T) {
		b := newLog()
		b.add(0, reqlog.Line{Method: "POST", Path: "/api/login", SidIn: sB, UidIn: "u_b", UidView: "u_b", SidOut: sA, UidOut: "u_a", Event: "login"})
		b.add(time.Second, reqlog.Line{Method: "POST", Path: "/signup", SidOut: sC, UidOut: "u_c"})
		b.add(2*time.Second, reqlog.Line{SidIn: sA, UidIn: "u_a", SidOut: sB, UidOut: "u_a", UidView: "u_a", Event: "renew"})
		// An anonymous session set on a page for a user (after logout) is
		// not somebody's cookie.
		b.add(3*time.Second, reqlog.Line{SidOut: "dddddddddddddddddddddddddddddddd", UidView: "u_a"})
		expect(t, scanString(t, def, b.String()), forensics.RuleCookieMismatch, 0, "", 0)
	})
}

func TestRuleProcessHandoff(t *testing.T) {
	def := forensics.DefaultConfig()
	t.Run("2021 signature", func(t *testing.T) {
		b := newLog()
		b.add(0, reqlog.Line{Seq: 10, SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA, IP: "203.0.113.9"})
		b.add(50*time.Millisecond, reqlog.Line{Seq: 11, Dev: dB, IP: "198.51.100.20", UA: "Mozilla/5.0 B"})
		b.add(100*time.Millisecond, reqlog.Line{Seq: 12, SidIn: sB, UidIn: "u_b", UidView: "u_b", Dev: dB, SidOut: sA, UidOut: "u_a", IP: "198.51.100.20"})
		fs := expect(t, scanString(t, def, b.String()), forensics.RuleProcessHandoff, 1, sA, forensics.Critical)
		if len(fs[0].Requests) != 2 {
			t.Errorf("want both requests in the finding, got %v", fs[0].Requests)
		}
		if !strings.Contains(fs[0].Evidence, "t.log:1: ") || !strings.Contains(fs[0].Evidence, "t.log:3: ") {
			t.Errorf("evidence lacks both lines:\n%s", fs[0].Evidence)
		}
	})
	t.Run("setter seen first, carrier after", func(t *testing.T) {
		b := newLog()
		b.add(0, reqlog.Line{Seq: 12, Dev: dB, SidOut: sA, UidOut: "u_a", UidView: "u_a", Event: "login"})
		b.add(time.Second, reqlog.Line{Seq: 14, SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA})
		expect(t, scanString(t, def, b.String()), forensics.RuleProcessHandoff, 1, sA, forensics.Critical)
	})
	cases := []struct {
		name string
		l1   reqlog.Line
		l2   reqlog.Line
	}{
		{"same client", reqlog.Line{Seq: 10, SidIn: sA, UidIn: "u_a", Dev: dA}, reqlog.Line{Seq: 11, SidIn: sA, UidIn: "u_a", Dev: dA, SidOut: sA, UidOut: "u_a", UidView: "u_a"}},
		{"too far apart", reqlog.Line{Seq: 10, SidIn: sA, UidIn: "u_a", Dev: dA}, reqlog.Line{Seq: 27, Dev: dB, SidOut: sA, UidOut: "u_a"}},
		{"other process", reqlog.Line{Seq: 10, SidIn: sA, UidIn: "u_a", Dev: dA}, reqlog.Line{Seq: 11, PID: 101, Dev: dB, SidOut: sA, UidOut: "u_a"}},
		{"other host", reqlog.Line{Seq: 10, SidIn: sA, UidIn: "u_a", Dev: dA}, reqlog.Line{Seq: 11, Host: "web-2", Dev: dB, SidOut: sA, UidOut: "u_a"}},
		{"no cookie set", reqlog.Line{Seq: 10, SidIn: sA, UidIn: "u_a", Dev: dA}, reqlog.Line{Seq: 11, SidIn: sB, UidIn: "u_b", Dev: dB}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newLog()
			b.add(0, c.l1)
			b.add(time.Second, c.l2)
			expect(t, scanString(t, def, b.String()), forensics.RuleProcessHandoff, 0, "", 0)
		})
	}
	t.Run("window is a flag", func(t *testing.T) {
		b := newLog()
		b.add(0, reqlog.Line{Seq: 10, SidIn: sA, UidIn: "u_a", Dev: dA})
		b.add(time.Second, reqlog.Line{Seq: 27, Dev: dB, SidOut: sA, UidOut: "u_a"})
		cfg := def
		cfg.HandoffWindow = 20
		expect(t, scanString(t, cfg, b.String()), forensics.RuleProcessHandoff, 1, sA, forensics.Critical)
	})
}

func TestRuleSecondClient(t *testing.T) {
	def := forensics.DefaultConfig()
	cases := []struct {
		name  string
		later reqlog.Line
		want  int
	}{
		{"another device", reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dB}, 1},
		{"sent to another device", reqlog.Line{SidOut: sA, UidOut: "u_a", UidView: "u_a", Dev: dB}, 1},
		{"another user agent, no device cookie", reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", UA: "curl/8.0"}, 1},
		{"same device from another address", reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA, IP: "192.0.2.1"}, 0},
		{"device cookie missing, same user agent", reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a"}, 0},
		{"login there", reqlog.Line{SidOut: sA, UidOut: "u_a", UidView: "u_a", Dev: dB, Event: "login"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newLog()
			b.add(0, reqlog.Line{Method: "POST", Path: "/login", SidOut: sA, UidOut: "u_a", UidView: "u_a", Event: "login", Dev: dA})
			b.add(time.Minute, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA})
			b.add(2*time.Minute, c.later)
			expect(t, scanString(t, def, b.String()), forensics.RuleSecondClient, c.want, sA, forensics.High)
		})
	}
}

func TestRulePrincipalDrift(t *testing.T) {
	def := forensics.DefaultConfig()
	b := newLog()
	b.add(0, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA})
	b.add(time.Minute, reqlog.Line{SidIn: sA, UidIn: "u_a", SidOut: sB, UidOut: "u_a", UidView: "u_a", Dev: dA, Event: "renew"})
	b.add(2*time.Minute, reqlog.Line{SidIn: sB, UidIn: "u_a", UidView: "u_a", Dev: dA})
	expect(t, scanString(t, def, b.String()), forensics.RulePrincipalDrift, 0, "", 0)
	b.add(3*time.Minute, reqlog.Line{SidIn: sB, UidIn: "u_z", UidView: "u_z", Dev: dA})
	fs := expect(t, scanString(t, def, b.String()), forensics.RulePrincipalDrift, 1, sB, forensics.Critical)
	if strings.Join(fs[0].Principals, ",") != "u_a,u_z" {
		t.Errorf("principals %v", fs[0].Principals)
	}
}

func TestRuleConcurrentNetworks(t *testing.T) {
	def := forensics.DefaultConfig()
	use := func(ip, dev, ua string, asn int) reqlog.Line {
		return reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", IP: ip, Dev: dev, UA: ua, ASN: asn}
	}
	type step struct {
		at time.Duration
		l  reqlog.Line
	}
	cases := []struct {
		name  string
		steps []step
		sev   forensics.Severity
		want  int
	}{
		{"two clients, two networks", []step{{0, use("203.0.113.9", dA, "A", 1)}, {time.Minute, use("198.51.100.7", dB, "B", 2)}}, forensics.Medium, 1},
		{"one device back and forth across ASNs is low", []step{{0, use("203.0.113.9", dA, "A", 1)}, {time.Minute, use("198.51.100.7", dA, "A", 2)}, {2 * time.Minute, use("203.0.113.10", dA, "A", 1)}}, forensics.Low, 1},
		{"one client without device cookie back and forth across ASNs", []step{{0, use("203.0.113.9", "", "A", 1)}, {time.Minute, use("198.51.100.7", "", "A", 2)}, {2 * time.Minute, use("203.0.113.10", "", "A", 1)}}, forensics.Medium, 1},
		{"thief copies the user agent, no device cookie", []step{{0, use("203.0.113.9", dA, "A", 1)}, {time.Minute, use("198.51.100.7", "", "A", 2)}, {2 * time.Minute, use("203.0.113.10", dA, "A", 1)}}, forensics.Medium, 1},
		{"one move, no way back (Wi-Fi to cellular)", []step{{0, use("203.0.113.9", dA, "A", 1)}, {time.Minute, use("198.51.100.7", dA, "A", 2)}, {2 * time.Minute, use("198.51.100.8", dA, "A", 2)}}, 0, 0},
		{"carrier NAT: one ASN, many /24s", []step{{0, use("100.64.1.9", dA, "A", 7)}, {time.Minute, use("100.65.7.7", dA, "A", 7)}, {2 * time.Minute, use("100.64.1.10", dA, "A", 7)}}, 0, 0},
		{"carrier NAT without asn: one /16", []step{{0, use("100.64.1.9", dA, "A", 0)}, {time.Minute, use("100.64.7.7", dA, "A", 0)}, {2 * time.Minute, use("100.64.1.10", dA, "A", 0)}}, 0, 0},
		{"without asn, another /16, back and forth", []step{{0, use("100.64.1.9", dA, "A", 0)}, {time.Minute, use("45.133.7.7", dA, "A", 0)}, {2 * time.Minute, use("100.64.1.10", dA, "A", 0)}}, forensics.Low, 1},
		{"IPv6 privacy addresses in one /64", []step{{0, use("2001:db8:1:2::1", dA, "A", 0)}, {time.Minute, use("2001:db8:1:2:a:b:c:d", dA, "A", 0)}, {2 * time.Minute, use("2001:db8:1:2:ffff::1", dA, "A", 0)}}, 0, 0},
		{"Happy Eyeballs v4/v6 is informational", []step{{0, use("203.0.113.9", dA, "A", 1)}, {time.Minute, use("2001:db8:1:2::1", dA, "A", 1)}, {2 * time.Minute, use("203.0.113.9", dA, "A", 1)}}, 0, 0},
		{"outside the window", []step{{0, use("203.0.113.9", dA, "A", 1)}, {11 * time.Minute, use("198.51.100.7", dB, "B", 2)}}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newLog()
			for _, s := range c.steps {
				b.add(s.at, s.l)
			}
			if c.sev != forensics.Low {
				expect(t, scanString(t, def, b.String()), forensics.RuleConcurrentNetworks, c.want, sA, c.sev)
				return
			}
			// Low: counted as noise by default, listed on request.
			rep := scanString(t, def, b.String())
			expect(t, rep, forensics.RuleConcurrentNetworks, 0, sA, c.sev)
			if n := rep.Stats.Noise[forensics.RuleConcurrentNetworks+"/low"]; n == nil || n.Count != 1 || n.Severity != "low" || len(n.Examples) != 1 || !strings.Contains(n.Examples[0], "one device") {
				t.Errorf("noise: %+v", n)
			}
			cfg := def
			cfg.MinSeverity = forensics.Low
			expect(t, scanString(t, cfg, b.String()), forensics.RuleConcurrentNetworks, c.want, sA, c.sev)
		})
	}
	t.Run("informational findings on request", func(t *testing.T) {
		b := newLog()
		b.add(0, use("203.0.113.9", dA, "A", 1))
		b.add(time.Minute, use("2001:db8:1:2::1", dA, "A", 1))
		cfg := def
		cfg.MinSeverity = forensics.Info
		expect(t, scanString(t, cfg, b.String()), forensics.RuleConcurrentNetworks, 1, sA, forensics.Info)
		rep := scanString(t, def, b.String())
		if rep.Stats.Suppressed != 1 {
			t.Errorf("suppressed %d, want 1", rep.Stats.Suppressed)
		}
	})
	t.Run("window is a flag", func(t *testing.T) {
		b := newLog()
		b.add(0, use("203.0.113.9", dA, "A", 1))
		b.add(11*time.Minute, use("198.51.100.7", dB, "B", 2))
		cfg := def
		cfg.NetWindow = 15 * time.Minute
		expect(t, scanString(t, cfg, b.String()), forensics.RuleConcurrentNetworks, 1, sA, forensics.Medium)
	})
}

func TestRuleIdentityFlip(t *testing.T) {
	def := forensics.DefaultConfig()
	view := func(sid, uid string) reqlog.Line {
		return reqlog.Line{SidIn: sid, UidIn: uid, UidView: uid, Dev: dA}
	}
	t.Run("A, B, A", func(t *testing.T) {
		b := newLog()
		b.add(0, view(sA, "u_a"))
		b.add(time.Second, view(sB, "u_b"))
		b.add(2*time.Second, view(sA, "u_a"))
		fs := expect(t, scanString(t, def, b.String()), forensics.RuleIdentityFlip, 1, sB, forensics.High)
		if len(fs[0].Requests) != 2 {
			t.Errorf("want the B request and the A request, got %v", fs[0].Requests)
		}
	})
	t.Run("logout and login between", func(t *testing.T) {
		b := newLog()
		b.add(0, view(sA, "u_a"))
		b.add(time.Second, reqlog.Line{Method: "POST", Path: "/logout", SidIn: sA, UidIn: "u_a", Event: "logout", Dev: dA})
		b.add(2*time.Second, reqlog.Line{Method: "POST", Path: "/login", SidOut: sB, UidOut: "u_b", UidView: "u_b", Event: "login", Dev: dA})
		b.add(3*time.Second, view(sB, "u_b"))
		b.add(4*time.Second, reqlog.Line{Method: "POST", Path: "/login", SidOut: sC, UidOut: "u_a", UidView: "u_a", Event: "login", Dev: dA})
		b.add(5*time.Second, view(sC, "u_a"))
		expect(t, scanString(t, def, b.String()), forensics.RuleIdentityFlip, 0, "", 0)
	})
	t.Run("different devices", func(t *testing.T) {
		b := newLog()
		b.add(0, view(sA, "u_a"))
		l := view(sB, "u_b")
		l.Dev = dB
		b.add(time.Second, l)
		b.add(2*time.Second, view(sA, "u_a"))
		expect(t, scanString(t, def, b.String()), forensics.RuleIdentityFlip, 0, "", 0)
	})
}

func TestRuleUseAfterEnd(t *testing.T) {
	def := forensics.DefaultConfig()
	for _, ev := range []string{"logout", "revoke", "expire"} {
		t.Run(ev, func(t *testing.T) {
			b := newLog()
			b.add(0, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA})
			b.add(time.Minute, reqlog.Line{Method: "POST", Path: "/logout", SidIn: sA, UidIn: "u_a", Event: ev, Dev: dA})
			b.add(time.Minute+5*time.Second, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA}) // in flight: within grace
			expect(t, scanString(t, def, b.String()), forensics.RuleUseAfterEnd, 0, "", 0)
			b.add(5*time.Minute, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA})
			expect(t, scanString(t, def, b.String()), forensics.RuleUseAfterEnd, 1, sA, forensics.High)
			cfg := def
			cfg.Grace = 10 * time.Minute
			expect(t, scanString(t, cfg, b.String()), forensics.RuleUseAfterEnd, 0, "", 0)
		})
	}
	t.Run("rejected cookie is no use", func(t *testing.T) {
		b := newLog()
		b.add(0, reqlog.Line{Method: "POST", Path: "/logout", SidIn: sA, UidIn: "u_a", Event: "logout"})
		b.add(5*time.Minute, reqlog.Line{Event: "bad_cookie", Detail: "revoked"})
		b.add(6*time.Minute, reqlog.Line{SidIn: sA, Event: "bad_cookie", Detail: "revoked"})
		expect(t, scanString(t, def, b.String()), forensics.RuleUseAfterEnd, 0, "", 0)
	})
	t.Run("lines out of order within the skew", func(t *testing.T) {
		b := newLog()
		b.add(3*time.Minute, reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a"}) // written first, arrived later
		b.add(4*time.Minute+30*time.Second, reqlog.Line{SidIn: sB, UidIn: "u_b", UidView: "u_b", Dev: dB})
		b.add(time.Minute, reqlog.Line{Method: "POST", Path: "/logout", SidIn: sA, UidIn: "u_a", Event: "logout"})
		cfg := def
		cfg.ChunkSize = 64 // one line per chunk, and lines longer than a chunk
		rep := scanString(t, cfg, b.String())
		expect(t, rep, forensics.RuleUseAfterEnd, 1, sA, forensics.High)
		if rep.Stats.Late != 0 {
			t.Errorf("late %d, want 0", rep.Stats.Late)
		}
		cfg.Skew = time.Minute
		rep = scanString(t, cfg, b.String())
		if rep.Stats.Late != 1 {
			t.Errorf("with a 1m skew: late %d, want 1", rep.Stats.Late)
		}
		expect(t, rep, forensics.RuleUseAfterEnd, 0, "", 0)
	})
}

func TestRuleGuardEvent(t *testing.T) {
	def := forensics.DefaultConfig()
	b := newLog()
	b.add(0, reqlog.Line{Req: "prev-req", Seq: 5, SidIn: sB, UidIn: "u_b", UidView: "u_b", Dev: dB})
	b.add(time.Second, reqlog.Line{Seq: 6, SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA, Event: "guard_block", Detail: "principal_mismatch"})
	b.add(2*time.Second, reqlog.Line{Seq: 7, SidIn: sA, UidIn: "u_a", UidView: "u_a", Dev: dA, Event: "stale_use", Detail: "sealed"})
	fs := expect(t, scanString(t, def, b.String()), forensics.RuleGuardEvent, 2, sA, forensics.Medium)
	if !strings.Contains(fs[0].Evidence, "prev-req") || !strings.Contains(fs[0].Evidence, "guard_block") {
		t.Errorf("evidence lacks the context: %s", fs[0].Evidence)
	}
}

func TestRuleCacheLeak(t *testing.T) {
	def := forensics.DefaultConfig()
	b := newLog()
	b.add(0, reqlog.Line{Cache: "hit", SidOut: sA, UidOut: "u_a", UidView: "u_a", Path: "/account"})
	expect(t, scanString(t, def, b.String()), forensics.RuleCacheLeak, 1, sA, forensics.Critical)

	b = newLog()
	b.add(0, reqlog.Line{Cache: "hit", UidView: "u_a", Path: "/account"})
	expect(t, scanString(t, def, b.String()), forensics.RuleCacheLeak, 1, "", forensics.High)

	b = newLog()
	b.add(0, reqlog.Line{Cache: "miss", SidIn: sA, UidIn: "u_a", UidView: "u_a"})
	b.add(time.Second, reqlog.Line{Cache: "hit", Path: "/static/app.js"})
	expect(t, scanString(t, def, b.String()), forensics.RuleCacheLeak, 0, "", 0)

	// A hit served to the principal the page was produced for (a CDN or
	// browser cache keyed by user): counted, not a finding. The same hit
	// served to someone else, or to an anonymous visitor, is a leak.
	b = newLog()
	b.add(0, reqlog.Line{Cache: "hit", SidIn: sA, UidIn: "u_a", UidView: "u_a", Path: "/inbox"})
	b.add(time.Second, reqlog.Line{Cache: "hit", SidIn: sA, UidIn: "u_a", SidOut: sC, UidOut: "u_a", UidView: "u_a", Path: "/inbox"})
	rep := scanString(t, def, b.String())
	expect(t, rep, forensics.RuleCacheLeak, 0, "", 0)
	if rep.Stats.Benign[forensics.BenignOwnCache] != 2 || len(rep.Incidents) != 0 {
		t.Errorf("benign %v, incidents %d", rep.Stats.Benign, len(rep.Incidents))
	}
	b = newLog()
	b.add(0, reqlog.Line{Cache: "hit", SidIn: sB, UidIn: "u_b", UidView: "u_a", Path: "/inbox"})
	expect(t, scanString(t, def, b.String()), forensics.RuleCacheLeak, 1, "", forensics.High)
	b = newLog()
	b.add(0, reqlog.Line{Cache: "hit", SidIn: sB, UidIn: "u_b", UidView: "u_b", SidOut: sA, UidOut: "u_a", Path: "/inbox"})
	expect(t, scanString(t, def, b.String()), forensics.RuleCacheLeak, 1, sA, forensics.Critical)
}

func TestRulesListed(t *testing.T) {
	rules := forensics.Rules()
	if len(rules) != 10 {
		t.Fatalf("%d rules, want 10", len(rules))
	}
	seen := map[string]bool{}
	for i, r := range rules {
		if r.N != i+1 || r.ID == "" || seen[r.ID] || r.Summary == "" || r.FalsePositives == "" {
			t.Errorf("rule %d incomplete or duplicate: %+v", i+1, r)
		}
		seen[r.ID] = true
	}
	var sb strings.Builder
	if err := forensics.WriteRules(&sb); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !strings.Contains(sb.String(), r.ID+" ("+r.Severity.String()+")") {
			t.Errorf("rule list lacks %s", r.ID)
		}
	}
}

// Hosts' clocks a few seconds apart interleave the lines around a move or
// a login: within Config.ClockSkew that is no finding. With no tolerance
// the same log raises them, so the tolerance is what keeps them out.
func TestClockSkewTolerance(t *testing.T) {
	// One client without a device cookie moves from one operator to
	// another; the lines of the host whose clock runs 2 s fast put its
	// last request on the old network after the first on the new one.
	move := newLog()
	at := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	use := func(ip string, asn int, host string) reqlog.Line {
		return reqlog.Line{SidIn: sA, UidIn: "u_a", UidView: "u_a", IP: ip, ASN: asn, UA: "A", Host: host}
	}
	move.add(0, use("203.0.113.9", 1, "web-1"))
	move.add(at(10), use("198.51.100.7", 2, "web-2"))
	move.add(at(11), use("203.0.113.9", 1, "web-3")) // really at 9 s: web-3 is 2 s fast
	move.add(at(20), use("198.51.100.7", 2, "web-2"))
	move.add(at(30), use("198.51.100.7", 2, "web-1"))

	// A family computer: u_b logs in over u_a's session; a page of u_a
	// and one of u_b land on the wrong side of the login.
	fam := newLog()
	page := func(uid, sid string) reqlog.Line {
		return reqlog.Line{SidIn: sid, UidIn: uid, UidView: uid, Dev: dA}
	}
	fam.add(0, page("u_a", sA))
	fam.add(at(30), page("u_b", sB)) // really after the login
	fam.add(at(31), page("u_a", sA)) // GET /login, really before it
	fam.add(at(31.5), reqlog.Line{SidIn: sA, UidIn: "u_a", SidOut: sB, UidOut: "u_b", UidView: "u_b", Dev: dA, Event: "login", Path: "/login"})
	fam.add(at(32), page("u_a", sA)) // a straggler of u_a's
	fam.add(at(40), page("u_b", sB))
	fam.add(at(50), page("u_b", sB))

	for _, c := range []struct {
		name string
		log  *logb
		rule string
	}{{"move", move, forensics.RuleConcurrentNetworks}, {"login", fam, forensics.RuleIdentityFlip}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := forensics.DefaultConfig()
			expect(t, scanString(t, cfg, c.log.String()), c.rule, 0, "", 0)
			cfg.ClockSkew = 0
			if n := len(findingsOf(scanString(t, cfg, c.log.String()), c.rule)); n == 0 {
				t.Errorf("without the tolerance the reordered lines raise no %s: the test shows nothing", c.rule)
			}
		})
	}

	// A real flip, and a real thief, are still found with the tolerance.
	flip := newLog()
	flip.add(0, page("u_a", sA))
	flip.add(at(20), page("u_b", sB))
	flip.add(at(40), page("u_a", sA))
	flip.add(at(60), page("u_a", sA))
	expect(t, scanString(t, forensics.DefaultConfig(), flip.String()), forensics.RuleIdentityFlip, 1, sB, forensics.High)
	thief := newLog()
	thief.add(0, use("203.0.113.9", 1, "web-1"))
	thief.add(at(14), use("203.0.113.9", 1, "web-1"))
	thief.add(at(15), use("45.133.0.7", 64999, "web-2"))
	thief.add(at(16), use("203.0.113.9", 1, "web-1"))
	thief.add(at(30), use("203.0.113.9", 1, "web-3"))
	expect(t, scanString(t, forensics.DefaultConfig(), thief.String()), forensics.RuleConcurrentNetworks, 1, sA, forensics.Medium)
}

// A shipper that delivers a batch again minutes later (beyond -skew) puts
// old pages after new ones: late lines do not take part in the order of a
// device's pages.
func TestLateLinesDoNotFlip(t *testing.T) {
	b := newLog()
	page := func(uid, sid string) reqlog.Line {
		return reqlog.Line{SidIn: sid, UidIn: uid, UidView: uid, Dev: dA}
	}
	b.add(0, page("u_a", sA))
	b.add(time.Minute, reqlog.Line{SidIn: sA, UidIn: "u_a", Dev: dA, Event: "logout", Path: "/logout"})
	b.add(2*time.Minute, reqlog.Line{SidOut: sB, UidOut: "u_b", UidView: "u_b", Dev: dA, Event: "login", Path: "/login"})
	for i := 3; i < 12; i++ {
		b.add(time.Duration(i)*time.Minute, page("u_b", sB))
	}
	b.lines = append(b.lines, b.lines[0]) // u_a's page again, 11 minutes late
	b.add(12*time.Minute, page("u_b", sB))
	cfg := forensics.DefaultConfig()
	cfg.ChunkSize = 256 // a chunk is sorted as a whole: put the late line in a later one
	rep := scanString(t, cfg, b.String())
	expect(t, rep, forensics.RuleIdentityFlip, 0, "", 0)
	if rep.Stats.Late != 1 {
		t.Errorf("late %d, want 1", rep.Stats.Late)
	}
}

// A login delivered twice, and a login delivered later than the skew,
// still separate the users of a family computer.
func TestFlipAroundDuplicateAndLateLogins(t *testing.T) {
	at := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	page := func(uid, sid string) reqlog.Line {
		return reqlog.Line{SidIn: sid, UidIn: uid, UidView: uid, Dev: dA}
	}
	login := reqlog.Line{SidIn: sA, UidIn: "u_a", SidOut: sB, UidOut: "u_b", UidView: "u_b", Dev: dA, Event: "login", Path: "/login"}

	// Twice: the same line again right after (at-least-once delivery),
	// then u_a's GET /login that a fast clock put after both.
	dup := newLog()
	dup.add(0, page("u_a", sA))
	dup.add(at(30), login)
	dup.lines = append(dup.lines, dup.lines[len(dup.lines)-1])
	dup.add(at(30.1), page("u_a", sA))
	dup.add(at(40), page("u_b", sB))
	dup.add(at(60), page("u_b", sB))
	expect(t, scanString(t, forensics.DefaultConfig(), dup.String()), forensics.RuleIdentityFlip, 0, "", 0)

	// Late: the login line arrives ten minutes after its time, by when
	// the device's pages read u_a, u_b, u_a, u_b.
	late := newLog()
	late.add(0, page("u_a", sA))
	late.add(at(30.2), page("u_b", sB)) // really after the login
	late.add(at(30.5), page("u_a", sA)) // GET /login, really before it
	for i := 0; i < 12; i++ {
		late.add(at(40+float64(i)*60), page("u_b", sB))
	}
	late.add(at(30), login)
	cfg := forensics.DefaultConfig()
	cfg.ChunkSize = 256
	rep := scanString(t, cfg, late.String())
	expect(t, rep, forensics.RuleIdentityFlip, 0, "", 0)
	if rep.Stats.Late != 1 || rep.Stats.Retracted != 2 {
		t.Errorf("late %d retracted %d, want 1 and 2", rep.Stats.Late, rep.Stats.Retracted)
	}
	// Without the late login the same pages are flips: u_a, u_b, u_a and
	// u_b, u_a, u_b.
	late.lines = late.lines[:len(late.lines)-1]
	if n := len(findingsOf(scanString(t, cfg, late.String()), forensics.RuleIdentityFlip)); n != 2 {
		t.Errorf("without the late login: %d flips, want 2", n)
	}
}
