package metrics

import (
	"context"
	"strings"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/prometheus/client_golang/prometheus"
)

// SessionEvents counts the session manager's events. Create it with
// NewSessionEvents and pass its Observe method as session.Options.OnEvent
// (or call it from an OnEvent that also does other things).
//
// Labels stay low-cardinality: a label value outside the known set is
// counted as "other" (a stale_use detail names a file and line, a
// guard_block detail may carry a "report:" prefix, and a store error or a
// future manager could send anything).
type SessionEvents struct {
	created     *prometheus.CounterVec
	renewed     prometheus.Counter
	loggedOut   prometheus.Counter
	revocations *prometheus.CounterVec
	badCookies  *prometheus.CounterVec
	guardBlocks *prometheus.CounterVec
	staleUses   prometheus.Counter
	storeErrors *prometheus.CounterVec
	dbsc        *prometheus.CounterVec
	dbscFailed  *prometheus.CounterVec
}

// NewSessionEvents registers the session collectors with reg:
//
//	cordon_sessions_created_total{kind}       kind: login, anonymous
//	cordon_sessions_renewed_total
//	cordon_sessions_logged_out_total
//	cordon_revocations_total{kind}            kind: session, principal, all
//	cordon_bad_cookies_total{reason}          reason: malformed, oversized, unknown, expired, revoked
//	cordon_guard_blocks_total{mode}           mode: block, report
//	cordon_stale_uses_total
//	cordon_session_store_errors_total{operation}  operation: find, commit, late_commit
//	cordon_dbsc_total{event}                  event: register, refresh, unbound
//	cordon_dbsc_proof_failures_total{reason}  reason: bad_proof, bad_challenge, stale_challenge, malformed_header, ...
//
// Every labelled series is created at zero, so that a rate can be taken
// before the first event.
func NewSessionEvents(reg prometheus.Registerer) (*SessionEvents, error) {
	m := &SessionEvents{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_sessions_created_total", Help: "Sessions created, by kind: login (a log-in issues a new session) or anonymous (values stored before any log-in).",
		}, []string{"kind"}),
		renewed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_sessions_renewed_total", Help: "Sessions renewed (token rotated, principal and values kept).",
		}),
		loggedOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_sessions_logged_out_total", Help: "Sessions ended by their own log-out.",
		}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_revocations_total", Help: "Revocations made through this node's session manager, by kind: session (by fingerprint), principal (every session of a user), all.",
		}, []string{"kind"}),
		badCookies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_bad_cookies_total", Help: "Session cookies refused, by reason (malformed, oversized, unknown, expired, revoked).",
		}, []string{"reason"}),
		guardBlocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_guard_blocks_total", Help: "Responses whose session cookie the egress guard blocked (mode block) or only reported (mode report).",
		}, []string{"mode"}),
		staleUses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cordon_stale_uses_total", Help: "Uses of a session handle after its request ended (refused).",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_session_store_errors_total", Help: "Session store failures seen by the session manager, by operation; the request failed closed.",
		}, []string{"operation"}),
		dbsc: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_dbsc_total", Help: "Device-bound sessions: keys registered, bound cookies refreshed, and requests that presented a device-bound session without its bound cookie (unbound, served as nobody).",
		}, []string{"event"}),
		dbscFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cordon_dbsc_proof_failures_total", Help: "Device-bound session registrations and refreshes refused, by reason.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.created, m.renewed, m.loggedOut, m.revocations, m.badCookies, m.guardBlocks, m.staleUses, m.storeErrors, m.dbsc, m.dbscFailed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, k := range createdKinds {
		m.created.WithLabelValues(k)
	}
	for _, k := range revocationKinds {
		m.revocations.WithLabelValues(k)
	}
	for _, r := range badCookieReasons {
		m.badCookies.WithLabelValues(r)
	}
	for _, g := range guardModes {
		m.guardBlocks.WithLabelValues(g)
	}
	for _, o := range storeOps {
		m.storeErrors.WithLabelValues(o)
	}
	for _, e := range dbscEvents {
		m.dbsc.WithLabelValues(e)
	}
	for _, r := range dbscReasons {
		m.dbscFailed.WithLabelValues(r)
	}
	return m, nil
}

var (
	createdKinds     = []string{"login", "anonymous"}
	revocationKinds  = []string{"session", "principal", "all"}
	badCookieReasons = []string{session.BadMalformed, session.BadOversized, session.BadUnknown, session.BadExpired, session.BadRevoked}
	guardModes       = []string{"block", "report"}
	storeOps         = []string{"find", "commit", "late_commit"}
	dbscEvents       = []string{"register", "refresh", "unbound"}
	dbscReasons      = []string{"bad_proof", "bad_challenge", "stale_challenge", "malformed_header", "malformed_session_id", "no_bound_session", "no_registration_offered", "stored_key"}
)

// known returns v if it is one of set, else "other".
func known(v string, set []string) string {
	for _, s := range set {
		if v == s {
			return v
		}
	}
	return "other"
}

// Observe counts ev. Its signature is session.Options.OnEvent's; it never
// blocks (each count is an atomic add) and ignores events it does not know.
func (m *SessionEvents) Observe(_ context.Context, ev session.Event) {
	switch ev.Name {
	case reqlog.EventLogin:
		m.created.WithLabelValues("login").Inc()
	case session.EventCreate:
		m.created.WithLabelValues("anonymous").Inc()
	case reqlog.EventRenew:
		m.renewed.Inc()
	case reqlog.EventLogout:
		m.loggedOut.Inc()
	case reqlog.EventRevoke:
		m.revocations.WithLabelValues(known(ev.Detail, revocationKinds)).Inc()
	case reqlog.EventBadCookie:
		m.badCookies.WithLabelValues(known(ev.Detail, badCookieReasons)).Inc()
	case reqlog.EventGuardBlock:
		mode := "block"
		if strings.HasPrefix(ev.Detail, "report:") {
			mode = "report"
		}
		m.guardBlocks.WithLabelValues(mode).Inc()
	case reqlog.EventStaleUse:
		m.staleUses.Inc()
	case session.EventStoreError:
		m.storeErrors.WithLabelValues(known(ev.Detail, storeOps)).Inc()
	case reqlog.EventDBSCRegister:
		m.dbsc.WithLabelValues("register").Inc()
	case reqlog.EventDBSCRefresh:
		m.dbsc.WithLabelValues("refresh").Inc()
	case reqlog.EventDBSCUnbound:
		m.dbsc.WithLabelValues("unbound").Inc()
	case reqlog.EventDBSCProofFailed:
		m.dbscFailed.WithLabelValues(known(ev.Detail, dbscReasons)).Inc()
	}
}
