package setcookie

import (
	"net/http"
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
		if got := Deletes(line); got != want {
			t.Errorf("Deletes(%q) = %v, want %v", line, got, want)
		}
	}
}

// TestExpiredStrict: only a date no browser clock can be behind, read the
// same way by browsers and by Go, deletes.
func TestExpiredStrict(t *testing.T) {
	yesterday := time.Now().Add(-24 * time.Hour).UTC().Format(http.TimeFormat)
	for line, want := range map[string]bool{
		"s=x; Expires=" + yesterday:                                false, // a slow browser clock installs it
		"s=x; Expires=Thu, 31 Dec 1999 23:59:59 GMT":               true,
		"s=x; Expires=Sat, 01 Jan 2000 00:00:00 GMT":               false,
		"s=x; Expires=Thursday, 01-Jan-70 00:00:00 GMT":            true,
		"s=x; Expires=Wednesday, 01-Jan-69 00:00:00 GMT":           false, // 2069 to a browser
		"s=x; Expires=Mon, 01 Jan 1500 00:00:00 GMT":               false, // a browser ignores it
		"s=x; Expires=Thu Jan  1 00:00:00 1970":                    true,
		"s=x; Expires=Thu, 01 Jan 1970 garbage":                    false,
		"s=x; Max-Age=\u00a00":                                     false, // not a digit to a browser
		"s=x; Max-Age=\t0 ":                                        true,
		"s=x; Max-Age=0abc":                                        false,
		"s=x; Max-Age=000":                                         true,
		"s=x; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT":   false,
		"s=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=junk": true,
		"s=max-age=0; Path=/":                                      false,
	} {
		if got := Expired(line); got != want {
			t.Errorf("Expired(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestCookie(t *testing.T) {
	for line, want := range map[string]string{
		"sid=T; Path=/":       "sid T",
		" sid = T ; Path=/":   "sid T",
		"sid=\"T\"":           "sid T",
		"sid=\"":              "sid \"",
		"=sid=T":              "sid T",
		" = sid=T; HttpOnly":  "sid T",
		"sid\t=\tT":           "sid T",
		"x=1, sid=T":          "x 1, sid=T", // browsers do not split on commas
		"x=sid=T":             "x sid=T",
		"==sid=T":             " sid=T",
		"sid":                 "-",
		"=sid":                "-",
		"; sid=T":             "-",
		"sid=T=U; Max-Age=10": "sid T=U",
		"sid=T\u00a0":         "sid T\u00a0",
	} {
		k, v, ok := Cookie(line)
		got := k + " " + v
		if !ok {
			got = "-"
		}
		if got != want {
			t.Errorf("Cookie(%q) = %q, want %q", line, got, want)
		}
	}
	for line, want := range map[string]string{"SID=T": "T", "=Sid=T": "T", "sidx=T": "-", "x=sid=T": "-", "sid": "-"} {
		v, ok := Value(line, "", "sid")
		if !ok {
			v = "-"
		}
		if v != want {
			t.Errorf("Value(%q) = %q, want %q", line, v, want)
		}
	}
}

func TestSmuggles(t *testing.T) {
	for line, want := range map[string]bool{
		"sid=T; Path=/":        false,
		"=sid=T":               false, // the browser's own cookie: read by Cookie
		" = sid=T; HttpOnly":   false,
		"x=1; Path=/":          false,
		"sidx=T":               false,
		"x=1, sid=T":           true,
		"sid=T, x=1":           true,
		"x=sid=T":              true,
		"==sid=T":              true,
		"sid=T; Path=/; SID=U": true,
		"=sid=T; x=1, sid=U":   true,
		"x=/?sid=abc":          true,
		"=x=1, sid=T":          true,
		"x=1; sid=":            false,
		"":                     false,
	} {
		if got := Smuggles(line, "sid"); got != want {
			t.Errorf("Smuggles(%q) = %v, want %v", line, got, want)
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
		_ = Deletes(line)
		if reference(line, "session") && k == None {
			t.Fatalf("Classify(%q) = none; the reference reading finds the session cookie", line)
		}
		if v != "" && !strings.Contains(line, v) {
			t.Fatalf("Classify(%q) value %q is not in the line", line, v)
		}
	})
}
