package parse

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzParse feeds Parse and Redact arbitrary strings: neither may panic,
// every error is one of the package's, a parsed URL is usable as it says,
// and a password never reaches Redact's output or an error. The seed corpus
// in testdata/fuzz/FuzzParse runs as an ordinary test.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"sqlite:./cordon-demo.db", "sqlite", "sqlite:", "sqlite://", "sqlite3:///tmp/x.db",
		"postgres://u:hunter2@127.0.0.1:5432/db?schema=cordon&sslmode=disable",
		"postgres://h/db?schema=a&schema=b", "postgres:u:pw@h", "postgresql://h/db?password=pw",
		"redis://:pw@127.0.0.1:6379/0?prefix=cordon:", "rediss://h", "redis", "redis://h/0?%zz",
		"", ":", "mysql://u@h/db", "./file.db",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		red := Redact(raw)
		u, err := Parse(raw)
		if pw := password(raw); pw != "" {
			if strings.Contains(red, pw) {
				t.Fatalf("Redact(%q) = %q keeps the password", raw, red)
			}
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Fatalf("Parse(%q) error %q repeats the password", raw, err)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownScheme) {
				t.Fatalf("Parse(%q) = %v, neither ErrMalformed nor ErrUnknownScheme", raw, err)
			}
			return
		}
		switch u.Backend {
		case SQLite:
			if u.Path == "" || u.DSN != "" {
				t.Fatalf("Parse(%q) = %+v", raw, u)
			}
		case Postgres, Redis:
			if u.Path != "" {
				t.Fatalf("Parse(%q) = %+v", raw, u)
			}
			// The driver's URL parses again to the same backend, without
			// the namespace parameter.
			again, err := Parse(u.DSN)
			if err != nil || again.Backend != u.Backend || again.Schema != "" || again.Prefix != "" {
				t.Fatalf("Parse(%q).DSN = %q parses to %+v, %v", raw, u.DSN, again, err)
			}
		default:
			t.Fatalf("Parse(%q) = backend %q", raw, u.Backend)
		}
	})
}

// password returns the password the URL parser sees in raw, if it is long
// enough to look for and appears in raw exactly once.
func password(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	pw, ok := u.User.Password()
	if !ok || len(pw) < 4 || strings.Count(raw, pw) != 1 {
		return ""
	}
	return pw
}
