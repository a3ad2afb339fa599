package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// ErrUnsupportedType is returned by Put for a value that cannot be stored.
var ErrUnsupportedType = errors.New("session: unsupported value type")

// errCorrupt is returned when stored session data does not decode.
var errCorrupt = errors.New("session: stored data is corrupt")

// Value kinds in the encoding. The encoding is: a uvarint count of entries,
// then for each entry a uvarint-length key and a tagged value.
const (
	tagNil byte = iota
	tagString
	tagTrue
	tagFalse
	tagInt
	tagUint
	tagFloat
	tagTime
	tagBytes
	tagList
	tagMap
	tagStrings
)

// maxDepth bounds nesting, both when storing and when decoding.
const maxDepth = 32

// normalize returns a deep copy of v in the canonical form that Get
// returns, or ErrUnsupportedType. See the package documentation for the
// table of types.
func normalize(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrUnsupportedType, maxDepth)
	}
	switch x := v.(type) {
	case nil, string, bool, int64, uint64, float64:
		return x, nil
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint:
		return uint64(x), nil
	case uint8:
		return uint64(x), nil
	case uint16:
		return uint64(x), nil
	case uint32:
		return uint64(x), nil
	case float32:
		return float64(x), nil
	case time.Time:
		return x.Round(0), nil // drop the monotonic reading; keep the location's offset
	case []byte:
		return append([]byte{}, x...), nil
	case []string:
		return append([]string{}, x...), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
}

// clone deep-copies a normalized value.
func clone(v any) any {
	switch x := v.(type) {
	case []byte:
		return append([]byte{}, x...)
	case []string:
		return append([]string{}, x...)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = clone(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = clone(e)
		}
		return out
	}
	return v
}

// encodeValues encodes a map of normalized values. Keys are sorted so equal
// maps encode to equal bytes.
func encodeValues(m map[string]any) []byte {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := binary.AppendUvarint(nil, uint64(len(m)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendValue(b, m[k])
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, tagNil)
	case string:
		return appendString(append(b, tagString), x)
	case bool:
		if x {
			return append(b, tagTrue)
		}
		return append(b, tagFalse)
	case int64:
		return binary.AppendVarint(append(b, tagInt), x)
	case uint64:
		return binary.AppendUvarint(append(b, tagUint), x)
	case float64:
		return binary.BigEndian.AppendUint64(append(b, tagFloat), math.Float64bits(x))
	case time.Time:
		_, off := x.Zone()
		b = binary.AppendVarint(append(b, tagTime), x.Unix())
		b = binary.AppendUvarint(b, uint64(x.Nanosecond()))
		return binary.AppendVarint(b, int64(off))
	case []byte:
		b = binary.AppendUvarint(append(b, tagBytes), uint64(len(x)))
		return append(b, x...)
	case []string:
		b = binary.AppendUvarint(append(b, tagStrings), uint64(len(x)))
		for _, s := range x {
			b = appendString(b, s)
		}
		return b
	case []any:
		b = binary.AppendUvarint(append(b, tagList), uint64(len(x)))
		for _, e := range x {
			b = appendValue(b, e)
		}
		return b
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = binary.AppendUvarint(append(b, tagMap), uint64(len(x)))
		for _, k := range keys {
			b = appendString(b, k)
			b = appendValue(b, x[k])
		}
		return b
	}
	// normalize admits nothing else; reaching here is a bug in this file.
	panic(fmt.Sprintf("cordon/session: encode of unnormalized %T", v))
}

// decoder reads the encoding; every read is bounds-checked so corrupt or
// hostile bytes give an error, never a panic or a huge allocation.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length and checks that at least min bytes per element
// remain, so a forged length cannot make us allocate more than the input.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.count(1)
	if d.err != nil {
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) byte1() byte {
	if d.err != nil || len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func decodeValues(b []byte) (map[string]any, error) {
	m := map[string]any{}
	if len(b) == 0 {
		return m, nil
	}
	d := &decoder{b: b}
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		k := string(d.bytes())
		m[k] = d.value(0)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

func (d *decoder) value(depth int) any {
	if depth > maxDepth {
		d.fail()
		return nil
	}
	switch d.byte1() {
	case tagNil:
		return nil
	case tagString:
		return string(d.bytes())
	case tagTrue:
		return true
	case tagFalse:
		return false
	case tagInt:
		return d.varint()
	case tagUint:
		return d.uvarint()
	case tagFloat:
		if len(d.b) < 8 {
			d.fail()
			return nil
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(d.b))
		d.b = d.b[8:]
		return f
	case tagTime:
		sec := d.varint()
		nsec := d.uvarint()
		off := d.varint()
		if d.err != nil || nsec >= 1e9 || off < -86400 || off > 86400 {
			d.fail()
			return nil
		}
		t := time.Unix(sec, int64(nsec))
		if off == 0 {
			return t.UTC()
		}
		return t.In(time.FixedZone("", int(off)))
	case tagBytes:
		return append([]byte{}, d.bytes()...)
	case tagStrings:
		n := d.count(1)
		out := make([]string, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			out = append(out, string(d.bytes()))
		}
		return out
	case tagList:
		n := d.count(1)
		out := make([]any, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			out = append(out, d.value(depth+1))
		}
		return out
	case tagMap:
		n := d.count(2)
		out := make(map[string]any, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := string(d.bytes())
			out[k] = d.value(depth + 1)
		}
		return out
	}
	d.fail()
	return nil
}

// skip passes over one value exactly as value reads it, refusing the same
// bytes, without building it.
func (d *decoder) skip(depth int) {
	if depth > maxDepth {
		d.fail()
		return
	}
	switch d.byte1() {
	case tagNil, tagTrue, tagFalse:
	case tagString, tagBytes:
		d.bytes()
	case tagInt:
		d.varint()
	case tagUint:
		d.uvarint()
	case tagFloat:
		if len(d.b) < 8 {
			d.fail()
			return
		}
		d.b = d.b[8:]
	case tagTime:
		d.varint()
		nsec := d.uvarint()
		off := d.varint()
		if nsec >= 1e9 || off < -86400 || off > 86400 {
			d.fail()
		}
	case tagStrings:
		n := d.count(1)
		for i := 0; i < n && d.err == nil; i++ {
			d.bytes()
		}
	case tagList:
		n := d.count(1)
		for i := 0; i < n && d.err == nil; i++ {
			d.skip(depth + 1)
		}
	case tagMap:
		n := d.count(2)
		for i := 0; i < n && d.err == nil; i++ {
			d.bytes()
			d.skip(depth + 1)
		}
	default:
		d.fail()
	}
}

// entries walks encoded values as decodeValues reads them, calling fn with
// each key and the encoding of its value (both alias b), and checks the
// whole of b: it fails where decodeValues fails. sorted reports whether
// the keys were strictly ascending, as encodeValues writes them.
func entries(b []byte, fn func(k, raw []byte)) (sorted bool, err error) {
	if len(b) == 0 {
		return true, nil
	}
	d := decoder{b: b}
	n := d.count(2)
	sorted = true
	var prev []byte
	for i := 0; i < n && d.err == nil; i++ {
		k := d.bytes()
		start := d.b
		d.skip(0)
		if d.err != nil {
			break
		}
		if i > 0 && string(k) <= string(prev) {
			sorted = false
		}
		prev = k
		fn(k, start[:len(start)-len(d.b)])
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return sorted, d.err
}

// lookupValue returns the encoding of key's value in encoded values b (the
// last one, as decodeValues keeps), checking all of b as decodeValues
// does. Reading one value this way builds nothing for the others.
func lookupValue(b []byte, key string) (raw []byte, ok bool, err error) {
	_, err = entries(b, func(k, r []byte) {
		if string(k) == key {
			raw, ok = r, true
		}
	})
	if err != nil {
		return nil, false, err
	}
	return raw, ok, nil
}

// decodeRaw decodes the encoding of one value, as lookupValue returns it.
func decodeRaw(raw []byte) (any, error) {
	d := decoder{b: raw}
	v := d.value(0)
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return v, d.err
}

// Typed readers of one value's encoding (checked by lookupValue already):
// each reports false for a value of another type.

func rawString(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != tagString {
		return "", false
	}
	d := decoder{b: raw[1:]}
	s := string(d.bytes())
	return s, d.err == nil
}

func rawInt64(raw []byte) (int64, bool) {
	if len(raw) == 0 || raw[0] != tagInt {
		return 0, false
	}
	d := decoder{b: raw[1:]}
	v := d.varint()
	return v, d.err == nil
}

func rawBool(raw []byte) (bool, bool) {
	if len(raw) == 1 && (raw[0] == tagTrue || raw[0] == tagFalse) {
		return raw[0] == tagTrue, true
	}
	return false, false
}

func rawTime(raw []byte) (time.Time, bool) {
	if len(raw) == 0 || raw[0] != tagTime {
		return time.Time{}, false
	}
	v, err := decodeRaw(raw)
	t, ok := v.(time.Time)
	return t, ok && err == nil
}

// mergeValues returns the encoding of b's values with changes applied,
// without decoding the values the changes leave alone: their bytes are
// copied as they are. b must be as encodeValues writes (keys strictly
// ascending); otherwise, or when b is corrupt, it reports an error and
// canonical false, and the caller decodes instead.
func mergeValues(b []byte, changes map[string]change) (out []byte, canonical bool, err error) {
	var arr [8]string
	keys := arr[:0]
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// One walk writes the entries after room for their count, which is
	// known only at the end; existing and changed entries in key order.
	const room = binary.MaxVarintLen64
	out = make([]byte, room, room+len(b)+16*len(keys))
	n, i := 0, 0
	putChanges := func(upTo []byte, all bool) {
		for ; i < len(keys) && (all || keys[i] < string(upTo)); i++ {
			if c := changes[keys[i]]; !c.del {
				out = appendValue(appendString(out, keys[i]), c.v)
				n++
			}
		}
	}
	sorted, err := entries(b, func(k, raw []byte) {
		putChanges(k, false)
		if _, ok := changes[string(k)]; ok {
			return // written from the change (or deleted) by putChanges
		}
		out = append(append(binary.AppendUvarint(out, uint64(len(k))), k...), raw...)
		n++
	})
	if err != nil || !sorted {
		return nil, false, err
	}
	putChanges(nil, true)
	if n == 0 {
		return nil, true, nil
	}
	var count [room]byte
	c := binary.PutUvarint(count[:], uint64(n))
	start := room - c
	copy(out[start:], count[:c])
	return out[start:], true, nil
}
