// Package parse parses cordon store URLs. It lives apart from storeurl,
// which imports every backend, so that its fuzz target runs on a small
// binary; storeurl re-exports it.
package parse

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrUnknownScheme is returned for a URL of no supported backend.
var ErrUnknownScheme = errors.New("storeurl: unknown store URL scheme (want sqlite:PATH, postgres://… or redis://…)")

// ErrMalformed is returned for a URL of a known backend that cannot be
// used as it is written.
var ErrMalformed = errors.New("storeurl: malformed store URL")

// Backends named by URL.Backend.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
	Redis    = "redis"
)

// URL is a parsed store URL.
type URL struct {
	// Backend is SQLite, Postgres or Redis.
	Backend string
	// Path is the SQLite file.
	Path string
	// DSN is the PostgreSQL or Redis URL for the driver, without the
	// schema and prefix parameters.
	DSN string
	// Schema (PostgreSQL) and Prefix (Redis) select the store's namespace;
	// empty means the backend's default.
	Schema, Prefix string
}

// Parse parses a store URL. It never panics; every error matches
// ErrUnknownScheme or ErrMalformed and never repeats a password.
func Parse(raw string) (URL, error) {
	scheme, rest, ok := strings.Cut(raw, ":")
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		if !ok {
			return URL{}, fmt.Errorf("%w: %q has no path (want sqlite:PATH, for example sqlite:./cordon.db)", ErrMalformed, raw)
		}
		path := strings.TrimPrefix(rest, "//")
		if path == "" {
			return URL{}, fmt.Errorf("%w: sqlite URL without a path (want sqlite:PATH)", ErrMalformed)
		}
		if strings.ContainsFunc(path, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return URL{}, fmt.Errorf("%w: sqlite path with a control character", ErrMalformed)
		}
		return URL{Backend: SQLite, Path: path}, nil
	case "postgres", "postgresql":
		u, q, err := parseNet(raw, ok, "postgres://user:pass@host/db?schema=cordon")
		if err != nil {
			return URL{}, err
		}
		schema, err := one(q, "schema", raw)
		if err != nil {
			return URL{}, err
		}
		u.RawQuery = q.Encode()
		return URL{Backend: Postgres, DSN: u.String(), Schema: schema}, nil
	case "redis", "rediss":
		u, q, err := parseNet(raw, ok, "redis://[user:pass@]host:port/db?prefix=cordon:")
		if err != nil {
			return URL{}, err
		}
		prefix, err := one(q, "prefix", raw)
		if err != nil {
			return URL{}, err
		}
		u.RawQuery = q.Encode()
		return URL{Backend: Redis, DSN: u.String(), Prefix: prefix}, nil
	}
	return URL{}, fmt.Errorf("%w: %q", ErrUnknownScheme, Redact(raw))
}

// parseNet parses the URL of a networked backend.
func parseNet(raw string, hasColon bool, want string) (*url.URL, url.Values, error) {
	bad := func(why string) (*url.URL, url.Values, error) {
		return nil, nil, fmt.Errorf("%w: %s: %s (want %s)", ErrMalformed, Redact(raw), why, want)
	}
	if !hasColon {
		return bad("no address")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL")
	}
	if u.Opaque != "" || u.Host == "" {
		return bad("no host")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("malformed query")
	}
	return u, q, nil
}

// one takes the parameter k out of q; it may be given at most once.
func one(q url.Values, k, raw string) (string, error) {
	vs := q[k]
	q.Del(k)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", fmt.Errorf("%w: %s: ?%s= given %d times", ErrMalformed, Redact(raw), k, len(vs))
}

// Redact returns raw with any password (in the user information or a
// password parameter) replaced by "xxxxx", for messages. A URL it cannot
// take apart that might hold a password comes back as "(unparsable URL)".
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") || strings.Contains(strings.ToLower(raw), "password") {
			return "(unparsable URL)"
		}
		return raw
	}
	if u.Opaque != "" {
		// scheme:rest without "//": a SQLite path, or a mistyped URL whose
		// user information the parser cannot see.
		scheme := strings.ToLower(u.Scheme)
		if scheme != "sqlite" && scheme != "sqlite3" && strings.Contains(u.Opaque, "@") {
			return "(unparsable URL)"
		}
		return raw
	}
	if q, err := url.ParseQuery(u.RawQuery); err == nil {
		changed := false
		for k := range q {
			if strings.EqualFold(k, "password") {
				q[k] = []string{"xxxxx"}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	} else if strings.Contains(strings.ToLower(u.RawQuery), "password") {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
