package session

import (
	"encoding/json"
	"fmt"
)

// PutJSON stores v under key as its JSON encoding (encoding/json), for
// values Put refuses, such as structs. The encoding is taken when PutJSON is
// called, so later changes to v are not seen; GetJSON decodes a fresh value
// each time, so a caller that changes what it got never changes what is
// stored.
//
// The value is stored as []byte: Get returns the JSON bytes, and GetJSON
// reads back only what encoding/json writes and reads. Exported fields only,
// times in RFC 3339 with nanoseconds (monotonic reading and zone name
// dropped), no channels, functions or cycles (an error from Marshal).
// Choose field names you can keep: a session outlives a deploy, and renamed
// fields decode as zero values.
func PutJSON(s *Session, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("session: put %q: %w", key, err)
	}
	return s.Put(key, b)
}

// GetJSON decodes into a new T the JSON stored under key by PutJSON, and
// reports whether there was a value. A value that is not JSON bytes gives
// an error matching ErrWrongType; JSON that does not fit T gives the
// decoder's error. Nothing stored is shared with the result.
func GetJSON[T any](s *Session, key string) (T, bool, error) {
	var out T
	v, ok, err := s.Get(key)
	if err != nil || !ok {
		return out, false, err
	}
	b, isBytes := v.([]byte)
	if !isBytes {
		return out, false, fmt.Errorf("%w: %q holds %T, not JSON bytes", ErrWrongType, key, v)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, false, fmt.Errorf("session: get %q as %T: %w", key, out, err)
	}
	return out, true, nil
}
