package forensics

import (
	"bytes"
	"errors"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Record is one parsed request-log line (see logschema.md). String fields
// may share memory with the buffer the line was read into: a Record must
// not be kept beyond the scan, and anything the rules keep is copied.
type Record struct {
	TS      int64 // arrival time, Unix nanoseconds
	V       int64
	Req     string
	Host    string
	PID     int64
	Seq     int64
	IP      string
	UA      string
	Dev     string
	ASN     int64
	Cache   string
	Method  string
	Path    string
	Status  int64
	SidIn   string
	UidIn   string
	SidOut  string
	UidOut  string
	UidView string
	Event   string
	Detail  string

	// Line is the raw line, without its newline.
	Line string
	// Src indexes the scan's sources; LineNo is the 1-based line number in it.
	Src    int
	LineNo int64

	// Computed by the parsing workers so that the rules, which run on one
	// goroutine, do not have to.
	cl        client
	kIn, kOut fpKey
	nk        netKey
	v6, netOK bool
	ph        uint64 // hash of Host and PID
	// keyHash of kIn, kOut and cl.dev
	hIn, hOut, hDev uint64
}

// required fields of the schema, as bits of parseLine's seen mask.
const (
	seenV = 1 << iota
	seenTS
	seenReq
	seenHost
	seenPID
	seenSeq
	seenIP
	seenAll = seenV | seenTS | seenReq | seenHost | seenPID | seenSeq | seenIP
)

var errNotObject = errors.New("not a JSON object")

// bstr returns a string sharing b's memory. b must not change afterwards.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// parseLine decodes one JSON line into r. It reads the schema's fields with
// a hand-written scanner (no reflection, no allocation unless a string holds
// escapes), skips unknown fields, and reports the first problem it finds.
func parseLine(b []byte, r *Record) error {
	*r = Record{}
	r.Line = bstr(b)
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errNotObject
	}
	i++
	seen := 0
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return errors.New("unterminated object")
		}
		if b[i] == '}' {
			i++
			break
		}
		if b[i] != '"' {
			return errors.New("expected a field name at byte " + strconv.Itoa(i))
		}
		// Keys are short and plain: a byte loop beats IndexByte's call.
		j := i + 1
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		var key string
		var ni int
		if j < len(b) && b[j] == '"' {
			key, ni = bstr(b[i+1:j]), j+1
		} else {
			var err error
			if key, ni, err = parseString(b, i); err != nil {
				return err
			}
		}
		i = skipWS(b, ni)
		if i >= len(b) || b[i] != ':' {
			return errors.New("expected ':' after field " + strconv.Quote(key))
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return errors.New("missing value of field " + strconv.Quote(key))
		}
		var sp *string
		var ip *int64
		switch key {
		case "v":
			ip, seen = &r.V, seen|seenV
		case "ts":
			s, ni, err := parseStringOrNull(b, i)
			if err != nil {
				return err
			}
			if s != "" {
				ts, ok := parseTS(s)
				if !ok {
					return errors.New("ts is not an RFC 3339 time: " + strconv.Quote(clip(s, 40)))
				}
				r.TS = ts
				seen |= seenTS
			}
			i = ni
		case "req":
			sp = &r.Req
		case "host":
			sp = &r.Host
		case "pid":
			ip, seen = &r.PID, seen|seenPID
		case "seq":
			ip, seen = &r.Seq, seen|seenSeq
		case "ip":
			sp = &r.IP
		case "ua":
			sp = &r.UA
		case "dev":
			sp = &r.Dev
		case "asn":
			ip = &r.ASN
		case "cache":
			sp = &r.Cache
		case "method":
			sp = &r.Method
		case "path":
			sp = &r.Path
		case "status":
			ip = &r.Status
		case "sid_in":
			sp = &r.SidIn
		case "uid_in":
			sp = &r.UidIn
		case "sid_out":
			sp = &r.SidOut
		case "uid_out":
			sp = &r.UidOut
		case "uid_view":
			sp = &r.UidView
		case "event":
			sp = &r.Event
		case "detail":
			sp = &r.Detail
		default:
			ni, err := skipValue(b, i, 0)
			if err != nil {
				return err
			}
			i = ni
		}
		if sp != nil {
			s, ni, err := parseStringOrNull(b, i)
			if err != nil {
				return errors.New("field " + key + ": " + err.Error())
			}
			*sp, i = s, ni
		} else if ip != nil {
			n, ni, err := parseInt(b, i)
			if err != nil {
				return errors.New("field " + key + ": " + err.Error())
			}
			*ip, i = n, ni
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			i++
			break
		}
		return errors.New("expected ',' or '}' after field " + strconv.Quote(key))
	}
	if i = skipWS(b, i); i != len(b) {
		return errors.New("text after the object")
	}
	if r.Req != "" {
		seen |= seenReq
	}
	if r.Host != "" {
		seen |= seenHost
	}
	if r.IP != "" {
		seen |= seenIP
	}
	if seen != seenAll {
		return errors.New("missing required field " + missingField(seen))
	}
	return nil
}

func missingField(seen int) string {
	names := []string{"v", "ts", "req", "host", "pid", "seq", "ip"}
	for i, n := range names {
		if seen&(1<<i) == 0 {
			return n
		}
	}
	return "?"
}

// clip shortens s to at most n bytes (not splitting a UTF-8 sequence) and
// marks the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

func parseStringOrNull(b []byte, i int) (string, int, error) {
	if b[i] == 'n' {
		if bytes.HasPrefix(b[i:], []byte("null")) {
			return "", i + 4, nil
		}
		return "", i, errors.New("bad literal")
	}
	if b[i] != '"' {
		return "", i, errors.New("not a string")
	}
	return parseString(b, i)
}

// parseString reads the JSON string starting at b[i] == '"'. Without
// escapes the result shares b's memory.
func parseString(b []byte, i int) (string, int, error) {
	start := i + 1
	end := bytes.IndexByte(b[start:], '"')
	if end < 0 {
		return "", i, errors.New("unterminated string")
	}
	end += start
	if bytes.IndexByte(b[start:end], '\\') < 0 {
		return bstr(b[start:end]), end + 1, nil
	}
	return unescape(b, start)
}

// unescape decodes a string with escapes starting after its opening quote.
func unescape(b []byte, i int) (string, int, error) {
	out := make([]byte, 0, 64)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			return string(out), i + 1, nil
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		e := b[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(b, i)
			if !ok {
				return "", i, errors.New("bad \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' {
					r2, ok = hex4(b, i+2)
				}
				if ok {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", i, errors.New("bad escape")
		}
	}
	return "", i, errors.New("unterminated string")
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// parseInt reads an integer; null reads as 0. A number with a fraction or
// exponent is accepted when its value is integral (1.0, 1e3).
func parseInt(b []byte, i int) (int64, int, error) {
	if b[i] == 'n' {
		if bytes.HasPrefix(b[i:], []byte("null")) {
			return 0, i + 4, nil
		}
		return 0, i, errors.New("bad literal")
	}
	start := i
	neg := false
	if b[i] == '-' {
		neg = true
		i++
	}
	var n int64
	digits := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if n > (1<<62)/10 {
			return 0, i, errors.New("number out of range")
		}
		n = n*10 + int64(b[i]-'0')
		i++
		digits++
	}
	if digits == 0 {
		return 0, i, errors.New("not a number")
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		j := i
		for j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		f, err := strconv.ParseFloat(string(b[start:j]), 64)
		if err != nil || f != float64(int64(f)) {
			return 0, j, errors.New("not an integer")
		}
		return int64(f), j, nil
	}
	if neg {
		n = -n
	}
	return n, i, nil
}

// skipValue skips any JSON value (for unknown fields).
func skipValue(b []byte, i, depth int) (int, error) {
	if depth > 64 {
		return i, errors.New("value nested too deeply")
	}
	i = skipWS(b, i)
	if i >= len(b) {
		return i, errors.New("missing value")
	}
	switch c := b[i]; {
	case c == '"':
		_, ni, err := parseString(b, i)
		return ni, err
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			if c == '{' {
				i = skipWS(b, i)
				if i >= len(b) || b[i] != '"' {
					return i, errors.New("expected a field name")
				}
				_, ni, err := parseString(b, i)
				if err != nil {
					return ni, err
				}
				i = skipWS(b, ni)
				if i >= len(b) || b[i] != ':' {
					return i, errors.New("expected ':'")
				}
				i++
			}
			ni, err := skipValue(b, i, depth+1)
			if err != nil {
				return ni, err
			}
			i = skipWS(b, ni)
			if i < len(b) && b[i] == ',' {
				i++
				continue
			}
			if i < len(b) && b[i] == closer {
				return i + 1, nil
			}
			return i, errors.New("unterminated " + string(c))
		}
	case c == 't' && bytes.HasPrefix(b[i:], []byte("true")):
		return i + 4, nil
	case c == 'f' && bytes.HasPrefix(b[i:], []byte("false")):
		return i + 5, nil
	case c == 'n' && bytes.HasPrefix(b[i:], []byte("null")):
		return i + 4, nil
	case c == '-' || (c >= '0' && c <= '9'):
		j := i + 1
		for j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		return j, nil
	}
	return i, errors.New("bad value")
}

// parseTS parses an RFC 3339 time. The common form
// 2006-01-02T15:04:05.999999Z is decoded by hand; others go to time.Parse.
func parseTS(s string) (int64, bool) {
	if len(s) >= 20 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't') && s[13] == ':' && s[16] == ':' && (s[len(s)-1] == 'Z' || s[len(s)-1] == 'z') {
		year, ok1 := digitsN(s[0:4])
		mon, ok2 := digitsN(s[5:7])
		day, ok3 := digitsN(s[8:10])
		hh, ok4 := digitsN(s[11:13])
		mm, ok5 := digitsN(s[14:16])
		ss, ok6 := digitsN(s[17:19])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && mon >= 1 && mon <= 12 && day >= 1 && day <= daysIn(mon, year) && hh < 24 && mm < 60 && ss < 61 {
			var nanos int64
			rest := s[19 : len(s)-1]
			if len(rest) > 0 {
				if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
					goto slow
				}
				scale := int64(1e9)
				for k := 1; k < len(rest); k++ {
					c := rest[k]
					if c < '0' || c > '9' {
						goto slow
					}
					scale /= 10
					nanos += int64(c-'0') * scale
				}
			}
			days := daysFromCivil(year, mon, day)
			return (days*86400+int64(hh)*3600+int64(mm)*60+int64(ss))*1e9 + nanos, true
		}
	}
slow:
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, false
	}
	return t.UnixNano(), true
}

func digitsN(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns days since 1970-01-01 (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
