package session

// Test-only switches, visible to this package's external tests (package
// session_test) and to nothing else: they turn a protection off to prove
// that the chaos oracle then catches crossings.

// DisableGuard lets every Set-Cookie through unchecked.
func DisableGuard(m *Manager) { m.noGuard = true }

// DisableSeal lets sealed handles act.
func DisableSeal(m *Manager) { m.noSeal = true }

// RecycleStates makes the middleware reuse request states from a pool, as
// frameworks that recycle their request contexts do.
func RecycleStates(m *Manager) { m.reuse = &freeList{} }

// DisableProtection switches one of the guard's checks off by name (see
// protectionNames); it fails the test for an unknown name.
func DisableProtection(m *Manager, name string) {
	if !switchOff(m, name) {
		panic("session: unknown protection " + name)
	}
}
