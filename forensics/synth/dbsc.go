package synth

import (
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/forensics"
)

// registerDBSC makes d's browser register a key for its new session a
// moment after the log-in: from then on the session is device-bound.
func (g *gen) registerDBSC(d *device, user string) {
	sid := d.sid
	g.at(g.now+int64((0.2+g.rng.Float64())*float64(second)), func() {
		if d.sid != sid {
			return // logged out (or in again) before it registered
		}
		g.cur = d
		defer func() { g.cur = nil }()
		g.emit(g.where(d), nil, line{method: "POST", path: dbsc.DefaultRegisterPath, status: 200, sidIn: sid, uidIn: user, event: "dbsc_register", keep: true})
		d.bound, d.boundTo = true, g.now+int64(DBSCTTL)
		g.truth.Noise["dbsc-register"]++
	})
}

// refreshDBSC renews d's bound cookie, which has ended: most of the time
// before the next request, now and then too late, so that one request goes
// out with the session cookie alone and is served as nobody (a benign
// lapse: the very browser that holds the key).
func (g *gen) refreshDBSC(d *device, c ctx, user string) {
	if g.rng.Float64() < 0.15 {
		g.emit(c, nil, line{method: "GET", path: pages[g.rng.IntN(len(pages))], status: 200, sidIn: d.sid, event: "dbsc_unbound"})
		g.truth.Noise["dbsc-lapse"]++
	}
	g.emit(c, nil, line{method: "POST", path: dbsc.DefaultRefreshPath, status: 403, sidIn: d.sid, uidIn: user, keep: true})
	g.emit(c, nil, line{method: "POST", path: dbsc.DefaultRefreshPath, status: 200, sidIn: d.sid, uidIn: user, event: "dbsc_refresh", keep: true})
	d.boundTo = g.now + int64(DBSCTTL)
	g.truth.Noise["dbsc-refresh"]++
}

// injectDBSCCopy makes another client present a copy of a's device-bound
// session cookie without the key: an attacker's machine (with a device
// cookie of its own, or with none and a refresh it cannot sign), or the
// browser of another user.
func (g *gen) injectDBSCCopy(a *device, n int) {
	au, sa := uname(a.uid), a.sid
	principals := []string{au}
	var c ctx
	var v *device
	if n%3 == 1 {
		v = g.pickActive(true, a)
	}
	switch {
	case v != nil:
		v.injected = true
		c = g.where(v)
		principals = append(principals, uname(v.uid))
	default:
		c = g.attacker(g.where(a).ip)
		if n%3 == 2 {
			c.dev = ""
		}
	}
	a.hold = true
	var ids []string
	for i := 0; i < 3; i++ {
		g.later(time.Duration(i*20+1)*time.Second, func() {
			l := line{keep: true, method: "GET", path: pages[g.rng.IntN(len(pages))], status: 200, sidIn: sa, event: "dbsc_unbound"}
			if i == 0 && n%3 == 2 {
				l = line{keep: true, method: "POST", path: dbsc.DefaultRefreshPath, status: 400, sidIn: sa, uidIn: au, event: "dbsc_proof_failed", detail: "bad_proof"}
			}
			ids = append(ids, g.emit(c, nil, l))
			if len(ids) == 3 {
				a.hold = false
				note := "a copy of " + au + "'s device-bound session was presented by another client"
				if v != nil {
					note = "a copy of " + au + "'s device-bound session was presented by the browser of " + uname(v.uid)
				}
				g.record(forensics.RuleDBSCCopy, n, []string{sa}, principals, ids, note)
			}
		})
	}
}
