package session

import (
	"fmt"

	"github.com/cordon-sec/cordon/reqlog"
)

// LogoutOthers ("log out my other sessions") revokes every session of the
// request's principal except this one: other browsers and devices are
// anonymous on their next request. It revokes the principal (an epoch bump
// in the store, so a session opened elsewhere while it runs is caught too)
// and then issues this session a new token with the same values, the same
// "remember me" choice and the same absolute end, as Renew does. It must
// therefore be called before the response headers are written, and other
// requests of this browser still in flight with the old cookie are served
// as anonymous.
//
// On an anonymous request it does nothing. With a store that cannot revoke
// it returns an error matching ErrNotSupported and changes nothing. If the
// revocation succeeds but the new token cannot be issued, this session is
// logged out too (fail closed) and the error says so.
func (s *Session) LogoutOthers() error {
	st, err := s.lock()
	if err != nil {
		return err
	}
	defer st.mu.Unlock()
	if st.storeDown {
		return fmt.Errorf("session: logout others: %w", ErrStoreUnavailable)
	}
	if st.sent {
		return fmt.Errorf("session: logout others: %w", ErrHeadersSent)
	}
	principal := st.principal()
	if principal == "" {
		return nil
	}
	rv, err := st.m.revoker()
	if err != nil {
		return fmt.Errorf("session: logout others: %w", err)
	}
	// Values and the lifetime are read before the revocation, which makes
	// the loaded session absent.
	if err := st.ensureValues(); err != nil {
		return err
	}
	lt := st.keepLifetime()
	ctx := st.commitContext()
	defer ctx.stop()
	if err := rv.RevokePrincipal(ctx, principal); err != nil {
		return fmt.Errorf("session: logout others: %w", err)
	}
	st.rec.Event(reqlog.EventRevoke, "others")
	st.m.event(st.rctx, Event{Name: reqlog.EventRevoke, Detail: "others", Fingerprint: st.loaded.Fingerprint(), Principal: principal})
	if err := st.reissue(principal, "logout others", lt); err != nil {
		// The old session is revoked with the rest: this request is now
		// anonymous and its cookie is cleared.
		st.loaded, st.token, st.values, st.changes = nil, "", nil, nil
		st.cookie = cookieClear
		return fmt.Errorf("session: logout others: revoked every session, this one too: %w", err)
	}
	return nil
}
