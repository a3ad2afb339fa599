package forensics_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/forensics"
	"github.com/cordon-sec/cordon/reqlog"
)

// boundLog is u_a logging in on device dA, registering its key and
// refreshing once: the session sA is device-bound to dA.
func boundLog() *logb {
	b := newLog()
	b.add(0, reqlog.Line{Dev: dA, Method: "POST", Path: "/login", SidOut: sA, UidOut: "u_a", UidView: "u_a", Event: reqlog.EventLogin})
	b.add(time.Second, reqlog.Line{Dev: dA, Method: "POST", Path: "/.cordon/dbsc/register", SidIn: sA, UidIn: "u_a", Event: reqlog.EventDBSCRegister})
	b.add(2*time.Second, reqlog.Line{Dev: dA, SidIn: sA, UidIn: "u_a", UidView: "u_a"})
	b.add(10*time.Minute, reqlog.Line{Dev: dA, Method: "POST", Path: "/.cordon/dbsc/refresh", SidIn: sA, UidIn: "u_a", Status: 403})
	b.add(10*time.Minute+time.Second, reqlog.Line{Dev: dA, Method: "POST", Path: "/.cordon/dbsc/refresh", SidIn: sA, UidIn: "u_a", Event: reqlog.EventDBSCRefresh})
	return b
}

func TestDBSCCopyFromAnotherClient(t *testing.T) {
	def := forensics.DefaultConfig()
	for _, tc := range []struct {
		name string
		l    reqlog.Line
	}{
		{"unbound, other device", reqlog.Line{Dev: dB, IP: "203.0.113.50", SidIn: sA, Event: reqlog.EventDBSCUnbound}},
		{"unbound, other User-Agent, no device cookie", reqlog.Line{UA: "curl/8.11.0", IP: "203.0.113.50", SidIn: sA, Event: reqlog.EventDBSCUnbound}},
		{"refresh with a bad proof", reqlog.Line{Dev: dB, IP: "203.0.113.50", Method: "POST", Path: "/.cordon/dbsc/refresh", SidIn: sA, UidIn: "u_a", Status: 400, Event: reqlog.EventDBSCProofFailed, Detail: "bad_proof"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := boundLog()
			id := b.add(12*time.Minute, tc.l)
			rep := scanString(t, def, b.String())
			f := expect(t, rep, forensics.RuleDBSCCopy, 1, sA, forensics.High)[0]
			if !slices.Contains(f.Requests, id) || !slices.Contains(f.Principals, "u_a") {
				t.Errorf("finding names requests %v, principals %v", f.Requests, f.Principals)
			}
			var in *forensics.Incident
			for _, i := range rep.Incidents {
				if slices.Contains(i.Rules, forensics.RuleDBSCCopy) {
					if in != nil {
						t.Fatalf("two incidents name the copy")
					}
					in = i
				}
			}
			if in == nil || !slices.Equal(in.Owners, []string{"u_a"}) || !slices.Equal(in.Sessions, []string{sA}) || in.Severity < forensics.High {
				t.Fatalf("incident %+v", in)
			}
			if got := rep.SessionsToRevoke(forensics.High); !slices.Equal(got, []string{sA}) {
				t.Errorf("sessions to revoke %v", got)
			}
		})
	}
}

func TestDBSCCopyRecipientIsTheOtherDevicesUser(t *testing.T) {
	b := boundLog()
	b.add(11*time.Minute, reqlog.Line{Dev: dB, IP: "203.0.113.50", Method: "POST", Path: "/login", SidOut: sB, UidOut: "u_b", UidView: "u_b", Event: reqlog.EventLogin})
	b.add(11*time.Minute+time.Second, reqlog.Line{Dev: dB, IP: "203.0.113.50", SidIn: sB, UidIn: "u_b", UidView: "u_b"})
	b.add(12*time.Minute, reqlog.Line{Dev: dB, IP: "203.0.113.50", SidIn: sA, Event: reqlog.EventDBSCUnbound})
	rep := scanString(t, forensics.DefaultConfig(), b.String())
	expect(t, rep, forensics.RuleDBSCCopy, 1, sA, forensics.High)
	for _, in := range rep.Incidents {
		if slices.Contains(in.Rules, forensics.RuleDBSCCopy) {
			if !slices.Equal(in.Owners, []string{"u_a"}) || !slices.Equal(in.Recipients, []string{"u_b"}) {
				t.Errorf("owners %v recipients %v, want u_a and u_b", in.Owners, in.Recipients)
			}
			return
		}
	}
	t.Fatal("no incident")
}

// The key's own device whose bound cookie lapsed, or a refresh that failed
// for a reason other than a bad proof, is no finding; a lapse is counted.
func TestDBSCOwnLapseIsNoise(t *testing.T) {
	b := boundLog()
	b.add(21*time.Minute, reqlog.Line{Dev: dA, IP: "198.51.100.99", SidIn: sA, Event: reqlog.EventDBSCUnbound})
	b.add(21*time.Minute+time.Second, reqlog.Line{Dev: dA, Method: "POST", Path: "/.cordon/dbsc/refresh", SidIn: sA, UidIn: "u_a", Event: reqlog.EventDBSCRefresh})
	b.add(22*time.Minute, reqlog.Line{Dev: dB, SidIn: sA, UidIn: "u_a", Method: "POST", Path: "/.cordon/dbsc/refresh", Status: 403, Event: reqlog.EventDBSCProofFailed, Detail: "stale_challenge"})
	rep := scanString(t, forensics.DefaultConfig(), b.String())
	expect(t, rep, forensics.RuleDBSCCopy, 0, "", forensics.High)
	if n := rep.Stats.Noise[forensics.RuleDBSCCopy+"/low"]; n == nil || n.Count != 1 {
		t.Errorf("lapse noise %+v, want 1", n)
	}
	low := forensics.DefaultConfig()
	low.MinSeverity = forensics.Low
	expect(t, scanString(t, low, b.String()), forensics.RuleDBSCCopy, 1, sA, forensics.Low)
}

// Without device cookies a client is its User-Agent, and without that its
// network; a renewed session stays bound to the same key.
func TestDBSCClientWithoutDeviceCookie(t *testing.T) {
	b := newLog()
	b.add(0, reqlog.Line{Method: "POST", Path: "/.cordon/dbsc/register", SidIn: sA, UidIn: "u_a", Event: reqlog.EventDBSCRegister})
	b.add(time.Minute, reqlog.Line{SidIn: sA, UidIn: "u_a", SidOut: sB, UidOut: "u_a", UidView: "u_a", Event: reqlog.EventRenew})
	b.add(12*time.Minute, reqlog.Line{IP: "198.51.100.8", SidIn: sB, Event: reqlog.EventDBSCUnbound}) // same UA: a lapse
	rep := scanString(t, forensics.DefaultConfig(), b.String())
	expect(t, rep, forensics.RuleDBSCCopy, 0, "", forensics.High)
	b.add(13*time.Minute, reqlog.Line{UA: "python-requests/2.32.3", SidIn: sB, Event: reqlog.EventDBSCUnbound})
	expect(t, scanString(t, forensics.DefaultConfig(), b.String()), forensics.RuleDBSCCopy, 1, sB, forensics.High)

	// No User-Agent on either side: the network tells.
	b = newLog()
	b.add(0, reqlog.Line{Method: "POST", Path: "/.cordon/dbsc/register", SidIn: sA, UidIn: "u_a", Event: reqlog.EventDBSCRegister})
	b.add(11*time.Minute, reqlog.Line{IP: "198.51.100.9", SidIn: sA, Event: reqlog.EventDBSCUnbound})
	b.add(12*time.Minute, reqlog.Line{IP: "203.0.113.50", SidIn: sA, Event: reqlog.EventDBSCUnbound})
	for i := range b.lines {
		b.lines[i] = strings.Replace(b.lines[i], `"ua":"Mozilla/5.0 A",`, "", 1)
	}
	f := expect(t, scanString(t, forensics.DefaultConfig(), b.String()), forensics.RuleDBSCCopy, 1, sA, forensics.High)[0]
	if f.Count != 1 {
		t.Errorf("count %d, want 1 (the same network is the same client)", f.Count)
	}
}

// An unbound use of a session whose registration the logs do not hold
// cannot be told from a lapse: no finding of this rule.
func TestDBSCUnknownHolder(t *testing.T) {
	b := newLog()
	b.add(0, reqlog.Line{Dev: dB, SidIn: sA, Event: reqlog.EventDBSCUnbound})
	expect(t, scanString(t, forensics.DefaultConfig(), b.String()), forensics.RuleDBSCCopy, 0, "", forensics.High)
}
