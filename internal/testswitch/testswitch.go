// Package testswitch lets cordon's own tests, in any of its modules (the
// framework adapters are modules of their own), switch one protection of a
// session manager off, to prove that an oracle catches what then leaks.
// Nothing outside cordon can import it, and nothing in cordon calls it
// outside tests.
package testswitch

// off is installed by package session when it is initialised.
var off func(m any, protection string) bool

// Install is called by package session, once, at initialisation.
func Install(f func(m any, protection string) bool) { off = f }

// Off switches the named protection of m (a *session.Manager) off:
// "guard", "seal", "recycle" (request states recycled, as frameworks pool
// contexts), or one of the guard's checks: "canonical", "trailers",
// "smuggled", "deletion", "unwrap", "stale", "ambiguous", "lastword". It
// reports false for an unknown name.
func Off(m any, protection string) bool {
	if off == nil {
		return false
	}
	return off(m, protection)
}
