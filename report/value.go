package report

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Redacted replaces the value of a key that names a secret, and every
// occurrence of a known secret (the request's cookie values, its
// Authorization header, secrets added with Scope.AddSecret) in any string of
// an event.
const Redacted = "[redacted]"

// maxDepth bounds how deep Snapshot follows nested maps, slices and
// pointers; it also ends reference cycles.
const maxDepth = 16

// minSecretLen is the shortest known secret that is scrubbed from strings:
// shorter values ("1", "en") would blank out ordinary words.
const minSecretLen = 8

// ErrUnsupported is matched by the error Snapshot (and Scope.Set) return for
// a value that cannot be copied into plain values: a func, a channel, an
// unsafe pointer, a struct without a String method, a map whose keys are not
// strings, or nesting deeper than 16 levels.
var ErrUnsupported = errors.New("report: value cannot be copied into plain values")

// Snapshot deep-copies v into plain values, the only kind an error report
// holds:
//
//   - nil, string, bool, int64, uint64, float64 (all integer and float kinds
//     are widened; NaN and infinities become strings), time.Time;
//   - []byte becomes a string;
//   - an error or fmt.Stringer is rendered to a string now, by calling its
//     Error or String method once (a panic in it is an error);
//   - a pointer or interface is followed (nil stays nil);
//   - slices and arrays become []any, maps with string keys map[string]any,
//     each element snapshotted in turn; a map key that names a secret
//     (token, cookie, password, secret, authorization, session, api key,
//     credential, bearer) has its value replaced by Redacted.
//
// Funcs, channels and unsafe pointers are refused even when they have a
// String method: a report never keeps anything it would have to call later.
// Everything else (structs, complex numbers, maps with other keys) is
// refused too. The result shares no memory with v.
func Snapshot(v any) (any, error) {
	return snapshot(v, 0)
}

func snapshot(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d levels", ErrUnsupported, maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return x, nil
	case bool:
		return x, nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case uint64:
		return x, nil
	case float64:
		return plainFloat(x), nil
	case time.Time:
		return x, nil
	case []byte:
		return string(x), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return nil, fmt.Errorf("%w: %s %T", ErrUnsupported, rv.Kind(), v)
	}
	if e, ok := v.(error); ok {
		return render(e.Error, v)
	}
	if s, ok := v.(fmt.Stringer); ok {
		return render(s.String, v)
	}
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint(), nil
	case reflect.Float32, reflect.Float64:
		return plainFloat(rv.Float()), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return snapshot(rv.Elem().Interface(), depth+1)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil, nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 && rv.Kind() == reflect.Slice {
			return string(rv.Bytes()), nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			e, err := snapshot(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = e
		}
		return out, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%w: map key %s is not a string", ErrUnsupported, rv.Type().Key())
		}
		if rv.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			k := it.Key().String()
			if SecretKey(k) {
				out[k] = Redacted
				continue
			}
			e, err := snapshot(it.Value().Interface(), depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %s %T (give it a String method or pass a map)", ErrUnsupported, rv.Kind(), v)
}

// render calls a String or Error method now, turning a panic into an error.
func render(f func() string, v any) (s any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("%w: rendering %T panicked: %v", ErrUnsupported, v, p)
		}
	}()
	return f(), nil
}

func plainFloat(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// SecretKey reports whether a context or field key names a secret, whose
// value a report replaces with Redacted. Matching ignores case and
// punctuation ("X-Auth-Token", "session_id", "Set-Cookie", "auth"). A key
// naming a fingerprint ("session_fingerprint", "sid_fp") is not a secret.
func SecretKey(key string) bool {
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
		}
	}
	k := b.String()
	if k == "auth" || k == "pwd" {
		return true
	}
	if strings.Contains(k, "fingerprint") || strings.HasSuffix(k, "fp") {
		return false
	}
	// Fragments that mark a secret, matched against the key lowercased with
	// everything but letters and digits removed.
	secretWords := [...]string{
		"token", "cookie", "password", "passwd", "passphrase", "secret",
		"authorization", "session", "apikey", "credential", "bearer", "privatekey",
	}
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// cloneValue deep-copies a value made by Snapshot, scrubbing every known
// secret from its strings and map keys.
func cloneValue(v any, secrets []string) any {
	switch x := v.(type) {
	case string:
		return scrub(x, secrets)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e, secrets)
		}
		return out
	case map[string]any:
		return cloneMap(x, secrets)
	}
	return v
}

func cloneMap(m map[string]any, secrets []string) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[scrub(k, secrets)] = cloneValue(v, secrets)
	}
	return out
}

// scrub replaces every occurrence of a known secret in s with Redacted.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecretLen && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
	}
	return s
}
