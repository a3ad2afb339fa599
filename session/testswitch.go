package session

import "github.com/cordon-sec/cordon/internal/testswitch"

// The switches that turn a protection off exist only for cordon's own
// tests (internal/testswitch; this package's export_test.go).
func init() { testswitch.Install(switchOff) }

func switchOff(mv any, name string) bool {
	m, ok := mv.(*Manager)
	if !ok {
		return false
	}
	switch name {
	case "guard":
		m.noGuard = true
	case "seal":
		m.noSeal = true
	case "recycle":
		m.reuse = &freeList{}
	default:
		p, ok := protectionNames[name]
		if !ok {
			return false
		}
		m.off |= p
	}
	return true
}
