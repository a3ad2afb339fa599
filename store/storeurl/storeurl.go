// Package storeurl opens a cordon session store from a URL, so that every
// command picks its backend the same way:
//
//	sqlite:PATH                         a SQLite file (the default backend)
//	postgres://user:pass@host/db?schema=cordon
//	redis://[user:pass@]host:port/db?prefix=cordon:
//
// The optional schema (PostgreSQL) and prefix (Redis) parameters select the
// store's namespace; every other parameter goes to the driver.
package storeurl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/pgstore"
	"github.com/cordon-sec/cordon/store/redisstore"
	"github.com/cordon-sec/cordon/store/sqlitestore"
)

// Default is the URL of the store the demo and the tools use when given
// none.
const Default = "sqlite:./cordon-demo.db"

// Store is an open store; Close releases its connections or file.
type Store interface {
	store.Full
	Close() error
}

// Options are passed to the backend.
type Options struct {
	// Now is the store's clock; default time.Now.
	Now func() time.Time
	// Logger receives the backend's notes; default slog.Default().
	Logger *slog.Logger
}

// ErrUnknownScheme is returned for a URL of no supported backend.
var ErrUnknownScheme = errors.New("storeurl: unknown store URL scheme (want sqlite:PATH, postgres://… or redis://…)")

// Open opens the store named by raw.
func Open(ctx context.Context, raw string, opt Options) (Store, error) {
	scheme, _, _ := strings.Cut(raw, ":")
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		path := strings.TrimPrefix(raw[len(scheme)+1:], "//")
		if path == "" {
			return nil, errors.New("storeurl: sqlite URL without a path (want sqlite:PATH)")
		}
		st, err := sqlitestore.Open(path, sqlitestore.Options{Now: opt.Now})
		if err != nil {
			return nil, fmt.Errorf("storeurl: %w", err)
		}
		return st, nil
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("storeurl: malformed postgres URL %s", Redact(raw))
		}
		q := u.Query()
		schema := q.Get("schema")
		q.Del("schema")
		u.RawQuery = q.Encode()
		st, err := pgstore.Open(ctx, u.String(), pgstore.Options{Schema: schema, Now: opt.Now, Logger: opt.Logger})
		if err != nil {
			return nil, fmt.Errorf("storeurl: %s: %w", Redact(raw), err)
		}
		return st, nil
	case "redis", "rediss":
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("storeurl: malformed redis URL %s", Redact(raw))
		}
		q := u.Query()
		prefix := q.Get("prefix")
		q.Del("prefix")
		u.RawQuery = q.Encode()
		st, err := redisstore.Open(ctx, u.String(), redisstore.Options{Prefix: prefix, Now: opt.Now, Logger: opt.Logger})
		if err != nil {
			return nil, fmt.Errorf("storeurl: %s: %w", Redact(raw), err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownScheme, Redact(raw))
}

// Redact returns raw with any password replaced by "xxxxx", for messages.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if err != nil && strings.Contains(raw, "@") {
			return "(unparsable URL)"
		}
		return raw
	}
	return u.Redacted()
}
