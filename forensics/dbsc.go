package forensics

import "fmt"

// boundState is what rule 10 keeps about a device-bound session: the
// client that holds its key (the one that registered it or last refreshed
// it, with a proof only the key can sign) and whose session it is.
type boundState struct {
	cl        client
	hasUA     bool
	net       netKey
	netOK     bool
	principal string
	last      int64
}

// sameHolder reports whether r comes from the client b names: by device
// cookie when both have one, else by User-Agent (as sameClient), and when
// either has no User-Agent, by network.
func (b *boundState) sameHolder(r *Record) bool {
	if b.cl.hasDev && r.cl.hasDev {
		return b.cl.dev == r.cl.dev
	}
	if b.hasUA && r.UA != "" {
		return b.cl.ua == r.cl.ua
	}
	if b.netOK && r.netOK {
		return b.net == r.nk
	}
	return true // nothing to tell them apart by
}

func (b *boundState) hold(r *Record) {
	b.cl, b.hasUA = r.cl, r.UA != ""
	b.net, b.netOK = r.nk, r.netOK
	b.last = r.TS
}

// dbsc runs rule 10 on a DBSC event (or a renew, which carries the
// binding to the new session).
func (sc *scanner) dbsc(r *Record) {
	if r.SidIn == "" {
		return
	}
	switch r.Event {
	case "dbsc_register", "dbsc_refresh":
		if r.Status >= 400 {
			return
		}
		b := sc.bound[r.kIn]
		if b == nil {
			b = &boundState{}
			sc.bound[r.kIn] = b
		}
		b.hold(r)
		if r.UidIn != "" {
			b.principal = clone(r.UidIn)
		}
	case "renew":
		// cordon keeps a session's values, the binding with them, across
		// a renewal: the new session is bound to the same key.
		b := sc.bound[r.kIn]
		if b == nil || r.SidOut == "" {
			return
		}
		nb := *b
		nb.last = r.TS
		if r.UidOut != "" {
			nb.principal = clone(r.UidOut)
		}
		sc.bound[r.kOut] = &nb
	case "dbsc_unbound", "dbsc_proof_failed":
		if r.Event == "dbsc_proof_failed" && r.Detail != "bad_proof" {
			return
		}
		b := sc.bound[r.kIn]
		if b == nil {
			return // never saw who holds the key: nothing to compare with
		}
		b.last = max(b.last, r.TS)
		owner := b.principal
		if owner == "" {
			owner = r.UidIn
		}
		what := "without its bound cookie"
		if r.Event == "dbsc_proof_failed" {
			what = "with a refresh proof that failed (bad_proof)"
		}
		fp := r.SidIn
		if b.sameHolder(r) {
			// The key's own client whose bound cookie lapsed before it
			// refreshed: normal, counted.
			sc.find(RuleDBSCCopy, Low, "lapse|"+fp, []string{fp}, []string{owner}, r, func() string {
				return fmt.Sprintf("device-bound session %s of %q was presented %s by the client that holds its key (%s): its bound cookie lapsed before a refresh", fp, owner, what, r.IP)
			})
			return
		}
		recipient := ""
		if r.cl.hasDev {
			if d := sc.devs.get(r.cl.dev, r.hDev); d != nil && !d.cur.empty() && !d.cur.eq(owner) {
				recipient = d.cur.String()
			}
		}
		if recipient == "" && r.UidView != "" && r.UidView != owner {
			recipient = r.UidView
		}
		f, created := sc.find(RuleDBSCCopy, High, fp, []string{fp}, []string{owner, recipient}, r, func() string {
			return fmt.Sprintf("device-bound session %s of %q was presented %s by a client other than the one that holds its key (%s, dev %q, ua %q): a copy of its cookie is in use", fp, owner, what, r.IP, r.Dev, clip(r.UA, 60))
		})
		if created {
			who := "another client"
			if recipient != "" {
				who = recipient + "'s client"
			}
			f.setFacts(owner, recipient, r, fmt.Sprintf("%s's device-bound session %s was presented %s by %s (%s, %s) at %s on %s: the session cookie was copied off the device that holds its key; DBSC refused the copy, but the session should be revoked",
				orAnon(owner), short(fp), what, who, r.IP, clip(r.UA, 40), hms(r.TS), r.Host))
		}
	}
}
