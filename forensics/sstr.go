package forensics

// sstr holds a short string (a principal) inside the struct that owns it,
// so that comparing it with a line's field reads no other cache line: with
// hundreds of thousands of sessions and devices in the rules' state, a
// heap string's bytes are a cache miss of their own on every line.
// Strings longer than the inline room live on the heap as usual.
type sstr struct {
	n    uint8 // length when inline; sstrLong when the string is in long
	b    [sstrMax]byte
	long string
}

const (
	sstrMax  = 23
	sstrLong = 255
)

func (s *sstr) set(v string) {
	if len(v) <= sstrMax {
		s.n = uint8(copy(s.b[:], v))
		s.long = ""
		return
	}
	s.n, s.long = sstrLong, clone(v)
}

func (s *sstr) empty() bool { return s.n == 0 }

// eq reports whether s holds v.
func (s *sstr) eq(v string) bool {
	if s.n == sstrLong {
		return s.long == v
	}
	return int(s.n) == len(v) && string(s.b[:s.n]) == v
}

func (s *sstr) String() string {
	if s.n == sstrLong {
		return s.long
	}
	return string(s.b[:s.n])
}
