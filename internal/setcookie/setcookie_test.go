package setcookie

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	names := []string{"__Host-session", "session"}
	for _, tc := range []struct {
		line  string
		kind  Kind
		value string
	}{
		{"session=T; Path=/", Primary, "T"},
		{"  SESSION = \"T\" ; Path=/", Primary, "T"},
		{"__Host-session=T; Secure", Primary, "T"},
		{"__host-SESSION=T", Primary, "T"},
		{"session=; Max-Age=0", Primary, ""},
		{"x=1, session=T", Smuggled, "T"},
		{"session=T, x=1", Smuggled, "T"},
		{"=session=T", Smuggled, "T"},
		{"x=1; Path=/; session=T", Smuggled, "T"},
		{"x=session=T", Smuggled, "T"},
		{`x="session=T"`, Smuggled, "T"},
		{"x=1 Set-Cookie: session=T", Smuggled, "T"},
		{"session=T; session=U", Smuggled, "U"},
		{"x=1; session=", None, ""},
		{"xsession=T", None, ""},
		{"session-id=T", None, ""},
		{"my_session=T", None, ""},
		{"x=1; Path=/", None, ""},
		{"", None, ""},
		{"session", None, ""},
	} {
		k, v := Classify(tc.line, names...)
		if k != tc.kind || v != tc.value {
			t.Errorf("Classify(%q) = %v %q, want %v %q", tc.line, k, v, tc.kind, tc.value)
		}
	}
}

func TestDeletes(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for line, want := range map[string]bool{
		"session=; Path=/":                                             true,
		`session=""`:                                                   true,
		"session=x; Max-Age=0":                                         true,
		"session=x; max-age=-1":                                        true,
		"session=x; Max-Age=0; Max-Age=3600":                           false, // the last one counts
		"session=x; Max-Age=3600; Max-Age=0":                           true,
		"session=x; Max-Age=+5":                                        false, // not a valid Max-Age: ignored
		"session=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT":             true,
		"session=x; Expires=Thu, 01 Jan 2099 00:00:00 GMT":             false,
		"session=x; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT": false, // Max-Age wins
		"session=x":  false,
		"session":    true,
		"session=x;": false,
	} {
		if got := Deletes(line, now); got != want {
			t.Errorf("Deletes(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestKeys(t *testing.T) {
	for k, want := range map[string]bool{"Set-Cookie": true, "set-cookie": true, "SET-COOKIE": true, "Set-Cookie2": false, "Cookie": false} {
		if IsSetCookieKey(k) != want {
			t.Errorf("IsSetCookieKey(%q) != %v", k, want)
		}
	}
	for k, want := range map[string]bool{"Trailer:Set-Cookie": true, "Trailer:set-cookie": true, "trailer:Set-Cookie": false, "Set-Cookie": false} {
		if IsSetCookieTrailerKey(k) != want {
			t.Errorf("IsSetCookieTrailerKey(%q) != %v", k, want)
		}
	}
	if rest, ok := DeclaresSetCookie("X-A, set-cookie ,X-B"); !ok || rest != "X-A, X-B" {
		t.Errorf("DeclaresSetCookie = %q %v", rest, ok)
	}
}

// reference is a deliberately different, simpler reading: close up white
// space around '=', split the line at every separator a client might use,
// and look for the name followed by '=' and a non-empty value.
func reference(line, name string) bool {
	line = spaceAroundEq.ReplaceAllString(line, "=")
	pieces := strings.FieldsFunc(line, func(r rune) bool { return r == ';' || r == ',' || r == ' ' || r == '\t' || r == '"' })
	for _, p := range pieces {
		parts := strings.Split(p, "=")
		for j := 0; j+1 < len(parts); j++ {
			if asciiEqualFold(parts[j], name) && parts[j+1] != "" {
				return true
			}
		}
	}
	return false
}

// asciiEqualFold compares as browsers compare cookie-name prefixes: ASCII
// letters case-insensitively, every other byte exactly.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

var spaceAroundEq = regexp.MustCompile(`[ \t]*=[ \t]*`)

// FuzzClassify: Classify never panics, finds the name wherever the
// reference reading does, and its value is part of the line.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"session=T", "x=1, session=T", "=session=T", "x=1; session = T", "x=session=T", `x="session=T"`, "SESSION=T;Max-Age=0", "session"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		k, v := Classify(line, "session")
		_ = Deletes(line, time.Now())
		if reference(line, "session") && k == None {
			t.Fatalf("Classify(%q) = none; the reference reading finds the session cookie", line)
		}
		if v != "" && !strings.Contains(line, v) {
			t.Fatalf("Classify(%q) value %q is not in the line", line, v)
		}
	})
}
