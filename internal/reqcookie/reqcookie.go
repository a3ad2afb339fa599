// Package reqcookie reads and removes cookies in Cookie request headers
// the way cordon's guards must: finding a cookie wherever a server might
// read it, so that the session middleware and the proxy see the same
// cookies.
//
// A Cookie header is pairs separated by ';'. A pair's name ends at its
// first '='; the name and the value are trimmed of spaces and tabs (and CR
// and LF, as net/http trims) on their own, so " sid = v" is the cookie sid
// (some servers read it so, and net/http does not: a guard that reads less
// than the app behind it would miss a cookie the app takes). A value of one
// pair of double quotes is unquoted. Names compare exactly. Every Cookie
// line counts, however long.
//
// The package imports only the standard library.
package reqcookie

import (
	"slices"
	"strings"
)

// Values appends to buf the distinct values of the cookie name in the
// Cookie header lines, in the order they arrive (across every line), at
// most max of them (no bound when max <= 0).
func Values(lines []string, name string, buf []string, max int) []string {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			v, ok := value(part, name)
			if !ok || slices.Contains(buf, v) {
				continue
			}
			if max > 0 && len(buf) >= max {
				return buf
			}
			buf = append(buf, v)
		}
	}
	return buf
}

// First returns the first value of the cookie name in the Cookie header
// lines and whether there was one.
func First(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			if v, ok := value(part, name); ok {
				return v, true
			}
		}
	}
	return "", false
}

// Remove returns the Cookie header lines without any cookie of the name
// (as Values reads them), each remaining pair trimmed and joined with "; ";
// nil when no pair is left. It does not modify lines.
func Remove(lines []string, name string) []string {
	var out []string
	for _, line := range lines {
		var keep []string
		for part := range strings.SplitSeq(line, ";") {
			k, _, _ := strings.Cut(part, "=")
			if trimWS(k) == name {
				continue
			}
			if part = trimWS(part); part != "" {
				keep = append(keep, part)
			}
		}
		if len(keep) > 0 {
			out = append(out, strings.Join(keep, "; "))
		}
	}
	return out
}

// value returns the value of one pair if it is the cookie name.
func value(part, name string) (string, bool) {
	k, v, ok := strings.Cut(part, "=")
	if !ok || trimWS(k) != name {
		return "", false
	}
	v = trimWS(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v, true
}

// trimWS trims spaces and horizontal tabs (and CR and LF, which a header
// value cannot hold on the wire), as net/http does; not the other Unicode
// spaces strings.TrimSpace removes.
func trimWS(s string) string { return strings.Trim(s, " \t\r\n") }
