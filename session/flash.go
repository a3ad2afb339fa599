package session

import (
	"errors"
	"fmt"
	"strings"
)

// ErrReservedKey is returned for a key that starts with a NUL byte: the
// session package keeps its own bookkeeping (such as "remember me") under
// such keys, out of reach of Put, Get, Pop and Delete and hidden from Keys.
var ErrReservedKey = errors.New("session: keys starting with NUL are reserved")

// internalKey reports whether key is one of the session package's own.
func internalKey(key string) bool { return strings.HasPrefix(key, "\x00") }

func checkKey(key string) error {
	if internalKey(key) {
		return fmt.Errorf("%w: %q", ErrReservedKey, key)
	}
	return nil
}

// Pop returns a deep copy of the value stored under key, and whether there
// was one, and deletes it in the same step: a flash message put before a
// redirect is shown once, by the request that pops it. The deletion is
// committed like any other change.
//
// Pop is a read and a delete on this request's view of the session: two
// requests of the same session running at once may both pop the same value
// before either commits. That suits messages shown to the user; a value
// that must be consumed exactly once (a one-time code) belongs in your
// database, not in a flash.
func (s *Session) Pop(key string) (any, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	st, err := s.lock()
	if err != nil {
		return nil, false, err
	}
	defer st.mu.Unlock()
	v, ok, err := st.get(key)
	if err != nil || !ok {
		return nil, false, err
	}
	if err := st.change(key, change{del: true}); err != nil {
		return nil, false, fmt.Errorf("session: pop %q: %w", key, err)
	}
	return v, true, nil
}

// PopString pops the string under key (see Pop), "" if there is none. A
// value of another type is left in place and ErrWrongType returned.
func (s *Session) PopString(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	st, err := s.lock()
	if err != nil {
		return "", err
	}
	defer st.mu.Unlock()
	v, ok, err := st.get(key)
	if err != nil || !ok {
		return "", err
	}
	str, isStr := v.(string)
	if !isStr {
		return "", fmt.Errorf("%w: %q holds %T", ErrWrongType, key, v)
	}
	if err := st.change(key, change{del: true}); err != nil {
		return "", fmt.Errorf("session: pop %q: %w", key, err)
	}
	return str, nil
}
