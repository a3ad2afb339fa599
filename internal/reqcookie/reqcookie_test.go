package reqcookie

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		max   int
		want  []string
	}{
		{[]string{"sid=a; x=1"}, 0, []string{"a"}},
		{[]string{"x=1;sid=\"b\"; sid=c", " sid = d "}, 0, []string{"b", "c", "d"}},
		{[]string{"sid=a; sid=a", "sid=a"}, 0, []string{"a"}},
		{[]string{"sid=1; sid=2; sid=3"}, 2, []string{"1", "2"}},
		{[]string{"sid\t=\t\"e\"\t"}, 0, []string{"e"}},
		{[]string{"sid=; x=1"}, 0, []string{""}},
		{[]string{"sid", "sidx=1", "xsid=1", "SID=1", ";;;"}, 0, nil},
		{[]string{"sid=a=b"}, 0, []string{"a=b"}},
		{[]string{"sid=\u00a0f\u00a0"}, 0, []string{"\u00a0f\u00a0"}},
		{[]string{strings.Repeat("x", 70<<10) + "; sid=g"}, 0, []string{"g"}}, // a long line is read too
	} {
		got := Values(tc.lines, "sid", nil, tc.max)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Values(%.40q, %d) = %q, want %q", tc.lines, tc.max, got, tc.want)
		}
		v, ok := First(tc.lines, "sid")
		if ok != (len(tc.want) > 0) || ok && v != tc.want[0] {
			t.Errorf("First(%.40q) = %q %v", tc.lines, v, ok)
		}
	}
}

func TestRemove(t *testing.T) {
	in := []string{"a=1; sid=x;b=2", " sid = y ", "sid"}
	got := Remove(in, "sid")
	if !slices.Equal(got, []string{"a=1; b=2"}) {
		t.Fatalf("Remove = %q", got)
	}
	if in[0] != "a=1; sid=x;b=2" {
		t.Fatalf("Remove modified its input: %q", in)
	}
	if got := Remove([]string{"sid=1"}, "sid"); got != nil {
		t.Fatalf("Remove of the only cookie = %q, want nil", got)
	}
}

// FuzzCookieHeader: whatever non-empty value net/http reads as the cookie,
// Values finds too, trimmed (a guard reads at least what the app does), and
// after Remove neither finds the cookie at all.
func FuzzCookieHeader(f *testing.F) {
	for _, s := range []string{"sid=a; x=1", "x=1;sid=\"b\"; sid=c", " sid = d ", "sid", "a=b;;;sid=;", "sid=e\x00; y=2"} {
		f.Add(s, "z=1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		lines := []string{a, b}
		vals := Values(lines, "sid", nil, 0)
		r := &http.Request{Header: http.Header{"Cookie": lines}}
		for _, c := range r.CookiesNamed("sid") {
			// A quoted value keeps the blanks inside its quotes: either
			// reading names the same cookie.
			if c.Value != "" && !slices.Contains(vals, trimWS(c.Value)) && !slices.Contains(vals, c.Value) {
				t.Fatalf("net/http reads sid=%q from %q; Values reads %q", c.Value, lines, vals)
			}
		}
		if v, ok := First(lines, "sid"); ok != (len(vals) > 0) || ok && v != vals[0] {
			t.Fatalf("First = %q %v, Values %q", v, ok, vals)
		}
		rest := Remove(lines, "sid")
		if _, ok := First(rest, "sid"); ok {
			t.Fatalf("sid still there after removal: %q", rest)
		}
		if cs := (&http.Request{Header: http.Header{"Cookie": rest}}).CookiesNamed("sid"); len(cs) > 0 {
			t.Fatalf("net/http still reads sid=%q after removal: %q", cs[0].Value, rest)
		}
	})
}
