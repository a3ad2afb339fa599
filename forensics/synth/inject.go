package synth

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/cordon-sec/cordon/forensics"
)

// kinds of injected incidents, in rule order.
var kinds = []string{
	forensics.RuleCookieMismatch,
	forensics.RuleProcessHandoff,
	forensics.RuleSecondClient,
	forensics.RulePrincipalDrift,
	forensics.RuleConcurrentNetworks,
	forensics.RuleIdentityFlip,
	forensics.RuleUseAfterEnd,
	forensics.RuleGuardEvent,
	forensics.RuleCacheLeak,
}

// kinds returns the kinds of incidents to inject: dbsc-copy too when some
// sessions are device-bound.
func (g *gen) kinds() []string {
	if g.cfg.DBSCShare > 0 {
		return append(kinds[:len(kinds):len(kinds)], forensics.RuleDBSCCopy)
	}
	return kinds
}

// scheduleIncidents spreads cfg.Incidents of each kind over the middle of
// the simulated span (after the fleet has warmed up).
func (g *gen) scheduleIncidents(span float64) {
	kinds := g.kinds()
	total := g.cfg.Incidents * len(kinds)
	if total == 0 {
		return
	}
	start := g.now
	for i := 0; i < total; i++ {
		kind := kinds[i%len(kinds)]
		n := i / len(kinds)
		frac := 0.1 + 0.8*g.rng.Float64()
		t := start + int64(frac*span*float64(second))
		g.pending++
		g.at(t, func() { g.inject(kind, n, 0) })
	}
}

// pickActive returns a device in the middle of a visit with a live session
// that no incident has touched, other than not.
func (g *gen) pickActive(needDev bool, not ...*device) *device {
	for try := 0; try < 200 && len(g.active) > 0; try++ {
		d := g.active[g.rng.IntN(len(g.active))]
		if !d.inVisit || d.sid == "" || d.injected || g.now-d.lastUse > 60*second || d.loginStep != 0 {
			continue
		}
		if needDev && d.dev == "" || g.needBound && !d.bound {
			continue
		}
		ok := true
		for _, o := range not {
			if o == d || (o.dev != "" && o.dev == d.dev) || o.uid == d.uid || o.ua == d.ua {
				ok = false
			}
		}
		if ok {
			return d
		}
	}
	return nil
}

func (g *gen) attacker(family netip.Addr) ctx {
	c := ctx{asn: g.hosting.asn, ua: attackerUAs[g.rng.IntN(len(attackerUAs))], dev: g.hex16()}
	if family.Is6() && !family.Is4In6() {
		var p [8]byte
		copy(p[:4], g.hosting.v6[:])
		p[7] = byte(g.rng.IntN(256))
		c.ip = g.v6In(p)
	} else {
		c.ip = g.v4In(g.hosting)
	}
	return c
}

func (g *gen) record(kind string, n int, sessions, principals, reqs []string, note string) {
	g.truth.Incidents = append(g.truth.Incidents, Incident{
		ID:         kind + "-" + strconv.Itoa(n+1),
		Rule:       kind,
		Sessions:   sessions,
		Principals: principals,
		Requests:   reqs,
		At:         time.Unix(0, g.now).UTC().Format(time.RFC3339Nano),
		Note:       note,
	})
}

// later runs fn at now+d and counts it as pending incident work.
func (g *gen) later(d time.Duration, fn func()) {
	g.pending++
	g.at(g.now+int64(d), func() {
		fn()
		g.pending--
	})
}

func (g *gen) inject(kind string, n, tries int) {
	done := func() { g.pending-- }
	retry := func() {
		if tries > 50 {
			done()
			return
		}
		g.at(g.now+30*second, func() { g.inject(kind, n, tries+1) })
	}
	g.needBound = kind == forensics.RuleDBSCCopy
	a := g.pickActive(kind == forensics.RuleIdentityFlip)
	g.needBound = false
	if a == nil {
		retry()
		return
	}
	if kind == forensics.RuleDBSCCopy {
		a.injected = true
		g.injectDBSCCopy(a, n)
		done()
		return
	}
	needV := kind != forensics.RuleSecondClient && kind != forensics.RuleConcurrentNetworks && kind != forensics.RuleUseAfterEnd && kind != forensics.RulePrincipalDrift && kind != forensics.RuleGuardEvent
	var v *device
	if needV {
		v = g.pickActive(kind == forensics.RuleIdentityFlip, a)
		if v == nil {
			retry()
			return
		}
		v.injected = true
	}
	a.injected = true
	au, sa := uname(a.uid), a.sid
	switch kind {
	case forensics.RuleCookieMismatch:
		vu := uname(v.uid)
		id := g.emit(g.where(v), nil, line{keep: true, method: "GET", path: "/notifications", status: 200, sidIn: v.sid, uidIn: vu, uidView: vu, sidOut: sa, uidOut: au})
		g.record(kind, n, []string{sa}, []string{au, vu}, []string{id}, "response for "+vu+" set the session of "+au)
		g.takeOver(v, a)
	case forensics.RuleProcessHandoff:
		p := g.procs[g.rng.IntN(len(g.procs))]
		id1 := g.emit(g.where(a), p, line{keep: true, method: "GET", path: "/api/feed", status: 200, sidIn: sa, uidIn: au, uidView: au})
		vc, vs, vu := g.where(v), v.sid, uname(v.uid)
		g.later(time.Duration(20+g.rng.IntN(200))*time.Millisecond, func() {
			id2 := g.emit(vc, p, line{keep: true, method: "GET", path: "/", status: 200, sidIn: vs, uidIn: vu, uidView: vu, sidOut: sa, uidOut: au})
			g.record(kind, n, []string{sa}, []string{au, vu}, []string{id1, id2}, "worker "+p.host+" pid "+strconv.Itoa(p.pid)+" handed "+au+"'s session to "+vu)
			g.takeOver(v, a)
		})
	case forensics.RuleSecondClient:
		c := g.attacker(g.where(a).ip)
		var ids []string
		for i := 0; i < 3; i++ {
			g.later(time.Duration(i*20+1)*time.Second, func() {
				ids = append(ids, g.emit(c, nil, line{keep: true, method: "GET", path: pages[g.rng.IntN(len(pages))], status: 200, sidIn: sa, uidIn: au, uidView: au}))
				if len(ids) == 3 {
					g.record(kind, n, []string{sa}, []string{au}, ids, "another client used "+au+"'s session")
				}
			})
		}
	case forensics.RulePrincipalDrift:
		other := uname((a.uid + 1 + g.rng.IntN(g.users-1)) % g.users)
		if other == au {
			other = uname(g.users + 1)
		}
		id := g.emit(g.where(a), nil, line{keep: true, method: "GET", path: "/inbox", status: 200, sidIn: sa, uidIn: other, uidView: other})
		g.record(kind, n, []string{sa}, []string{au, other}, []string{id}, "the session of "+au+" came back as "+other+"'s")
	case forensics.RuleConcurrentNetworks:
		vc := g.where(a)
		c := g.attacker(vc.ip)
		c.ua, c.dev = a.ua, "" // a careful thief copies the User-Agent, not the device cookie
		id1 := g.emit(vc, nil, line{keep: true, method: "GET", path: "/inbox", status: 200, sidIn: sa, uidIn: au, uidView: au})
		var ids = []string{id1}
		g.later(15*time.Second, func() {
			ids = append(ids, g.emit(c, nil, line{keep: true, method: "GET", path: "/billing", status: 200, sidIn: sa, uidIn: au, uidView: au}))
		})
		g.later(30*time.Second, func() {
			ids = append(ids, g.emit(vc, nil, line{keep: true, method: "GET", path: "/inbox", status: 200, sidIn: sa, uidIn: au, uidView: au}))
			g.record(kind, n, []string{sa}, []string{au}, ids, "the session of "+au+" went back and forth between the user's network and another ASN")
		})
	case forensics.RuleIdentityFlip:
		// v's device is shown a's page (a's session reached it), then v's own
		// again: B, A, B on one device.
		vu, vc := uname(v.uid), g.where(v)
		id := g.emit(vc, nil, line{keep: true, method: "GET", path: "/inbox", status: 200, sidIn: sa, uidIn: au, uidView: au})
		vs := v.sid
		v.hold = true
		g.later(5*time.Second, func() {
			v.hold = false
			id2 := g.emit(vc, nil, line{keep: true, method: "GET", path: "/inbox", status: 200, sidIn: vs, uidIn: vu, uidView: vu})
			g.record(kind, n, []string{sa}, []string{vu, au}, []string{id, id2}, "device of "+vu+" showed "+au+" between two pages of its own user")
		})
	case forensics.RuleUseAfterEnd:
		ev := []string{"logout", "revoke", "expire"}[n%3]
		c := g.where(a)
		end := line{keep: true, method: "POST", path: "/logout", status: 303, sidIn: sa, uidIn: au, event: ev}
		switch ev {
		case "revoke":
			end.path, end.status, end.detail = "/api/sessions/revoke", 200, "user"
		case "expire":
			end.method, end.path, end.status, end.detail = "GET", "/", 302, "absolute"
		}
		id := g.emit(c, nil, end)
		a.sid = "" // the device logs in again on its next request
		g.later(time.Duration(2+g.rng.IntN(8))*time.Minute, func() {
			id2 := g.emit(c, nil, line{keep: true, method: "GET", path: "/settings", status: 200, sidIn: sa, uidIn: au, uidView: au})
			g.record(kind, n, []string{sa}, []string{au}, []string{id, id2}, "the session of "+au+" authenticated after its "+ev)
		})
	case forensics.RuleGuardEvent:
		ev, detail := "guard_block", "principal_mismatch"
		if n%2 == 1 {
			ev, detail = "stale_use", "sealed_handle"
		}
		id := g.emit(g.where(a), nil, line{keep: true, method: "GET", path: "/notifications", status: 200, sidIn: sa, uidIn: au, uidView: au, event: ev, detail: detail})
		g.record(kind, n, []string{sa}, []string{au}, []string{id}, ev+" recorded")
	case forensics.RuleCacheLeak:
		id := g.emit(g.where(v), nil, line{keep: true, method: "GET", path: "/account", status: 200, cache: "hit", sidOut: sa, uidOut: au, uidView: au})
		g.record(kind, n, []string{sa}, []string{au}, []string{id}, "a shared cache served "+au+"'s response with its Set-Cookie")
	}
	done()
}

// takeOver makes v's browser keep the session of a that a response set on
// it: v goes on with a's session (and sees a's pages) for the rest of its
// visit, and has lost it by its next visit.
func (g *gen) takeOver(v, a *device) {
	v.sid, v.uid, v.created, v.leaked = a.sid, a.uid, g.now, true
	v.bound = false // v's browser holds no key for it and does not refresh it
}
