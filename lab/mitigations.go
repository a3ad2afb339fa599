package lab

import (
	"fmt"
	"strings"
)

// Mitigations switches the five defences on and off. The zero value is the
// vulnerable composition of the 2021 incident. Each switch selects a
// different code path in the composition; none of them is a flag that a
// result is read from.
type Mitigations struct {
	// FreshEnv gives every request an env of its own instead of clearing and
	// reusing the worker's one (the Unicorn patch).
	FreshEnv bool
	// ValueContext makes the error context a snapshot of plain values taken
	// when it is set, with no callbacks (cordon's report).
	ValueContext bool
	// IsolatedBackground makes the background refresher report with a
	// context of its own instead of copying the current one.
	IsolatedBackground bool
	// SealedHandles makes the controller reach the session only through the
	// request-bound handle cordon's middleware gives it, which refuses every
	// call once its request has ended.
	SealedHandles bool
	// EgressGuard puts cordon's egress guard around the worker's responses:
	// a session cookie that does not belong to the request's principal is
	// blocked and the response fails closed.
	EgressGuard bool
	// DBSC binds a signed-in session to a key its browser keeps (Device
	// Bound Session Credentials): the server then serves the session only
	// with a short-lived bound cookie, renewed by a proof signed with that
	// key. It does not break the chain; it limits what a delivered
	// session is worth to its recipient. It is not part of "all" nor of
	// Combinations: name it on its own.
	DBSC bool
}

// mitigationNames lists the switches in table order.
var mitigationNames = []string{"fresh-env", "value-context", "isolated-background", "sealed-handles", "egress-guard"}

// dbscName is the name of the DBSC switch, listed after the five.
const dbscName = "dbsc"

// MitigationNames returns the names of the five mitigations that break the
// chain, in table order.
func MitigationNames() []string { return append([]string(nil), mitigationNames...) }

func (m Mitigations) bits() [5]bool {
	return [5]bool{m.FreshEnv, m.ValueContext, m.IsolatedBackground, m.SealedHandles, m.EgressGuard}
}

func (m *Mitigations) set(i int, v bool) {
	switch i {
	case 0:
		m.FreshEnv = v
	case 1:
		m.ValueContext = v
	case 2:
		m.IsolatedBackground = v
	case 3:
		m.SealedHandles = v
	case 4:
		m.EgressGuard = v
	}
}

// Names returns the names of the switches that are on, in table order; an
// empty (non-nil) slice for the vulnerable baseline.
func (m Mitigations) Names() []string {
	out := []string{}
	for i, on := range m.bits() {
		if on {
			out = append(out, mitigationNames[i])
		}
	}
	if m.DBSC {
		out = append(out, dbscName)
	}
	return out
}

// String returns the names joined by "+", or "none".
func (m Mitigations) String() string {
	n := m.Names()
	if len(n) == 0 {
		return "none"
	}
	return strings.Join(n, "+")
}

// Count returns how many switches are on.
func (m Mitigations) Count() int { return len(m.Names()) }

// AllMitigations returns the five switches that break the chain on: the
// hardened composition (DBSC off).
func AllMitigations() Mitigations {
	return Mitigations{FreshEnv: true, ValueContext: true, IsolatedBackground: true, SealedHandles: true, EgressGuard: true}
}

// ParseMitigations reads a comma-separated list of mitigation names; "none"
// or "" is the baseline and "all" the five that break the chain ("all,dbsc"
// adds DBSC).
func ParseMitigations(s string) (Mitigations, error) {
	var m Mitigations
	s = strings.TrimSpace(s)
	switch s {
	case "", "none":
		return m, nil
	case "all":
		return AllMitigations(), nil
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case dbscName:
			m.DBSC = true
			continue
		case "all":
			a := AllMitigations()
			a.DBSC = m.DBSC
			m = a
			continue
		}
		found := false
		for i, n := range mitigationNames {
			if n == name {
				m.set(i, true)
				found = true
			}
		}
		if !found {
			return Mitigations{}, fmt.Errorf("lab: unknown mitigation %q (known: %s, %s)", name, strings.Join(mitigationNames, ", "), dbscName)
		}
	}
	return m, nil
}

// Combinations returns all 32 combinations of the mitigations: the baseline
// first, then by number of switches on, then in table order.
func Combinations() []Mitigations {
	var out []Mitigations
	for k := 0; k <= len(mitigationNames); k++ {
		for bits := 0; bits < 1<<len(mitigationNames); bits++ {
			var m Mitigations
			n := 0
			for i := range mitigationNames {
				// Bit for the first name is the highest, so that within one
				// count the order follows the table.
				if bits&(1<<(len(mitigationNames)-1-i)) != 0 {
					m.set(i, true)
					n++
				}
			}
			if n == k {
				out = append(out, m)
			}
		}
	}
	// Within one count the loop above runs from low bits to high; reverse
	// each group so that fresh-env comes first.
	for i, j := 0, 0; i < len(out); i = j {
		for j = i; j < len(out) && out[j].Count() == out[i].Count(); j++ {
		}
		for a, b := i, j-1; a < b; a, b = a+1, b-1 {
			out[a], out[b] = out[b], out[a]
		}
	}
	return out
}
