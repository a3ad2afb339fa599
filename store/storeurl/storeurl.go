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
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/pgstore"
	"github.com/cordon-sec/cordon/store/redisstore"
	"github.com/cordon-sec/cordon/store/sqlitestore"
	"github.com/cordon-sec/cordon/store/storeurl/internal/parse"
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
	// ExistingOnly opens only a store that already exists, and creates,
	// migrates and writes nothing: no SQLite file, no cordon schema in the
	// PostgreSQL database, or no cordon keys under the Redis prefix is an
	// error matching ErrNoStore. Tools that act on a store an application
	// made (`cordon revoke`) set it.
	ExistingOnly bool
}

// ErrUnknownScheme is returned for a URL of no supported backend.
var ErrUnknownScheme = parse.ErrUnknownScheme

// ErrMalformed is returned for a URL of a known backend that cannot be
// used as it is written.
var ErrMalformed = parse.ErrMalformed

// ErrNoStore is returned, with Options.ExistingOnly, when no cordon store
// exists where the URL points.
var ErrNoStore = errors.New("storeurl: no cordon session store")

// Backends named by URL.Backend.
const (
	SQLite   = parse.SQLite
	Postgres = parse.Postgres
	Redis    = parse.Redis
)

// URL is a parsed store URL: its Backend (SQLite, Postgres or Redis), the
// SQLite Path, or the DSN for the PostgreSQL or Redis driver without the
// Schema and Prefix parameters, which select the store's namespace.
type URL = parse.URL

// Parse parses a store URL. It never panics; every error matches
// ErrUnknownScheme or ErrMalformed and never repeats a password.
func Parse(raw string) (URL, error) { return parse.Parse(raw) }

// Open opens the store named by raw.
func Open(ctx context.Context, raw string, opt Options) (Store, error) {
	u, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	noStore := func(err error, sentinel error) error {
		if errors.Is(err, sentinel) {
			return fmt.Errorf("%w at %s: %w", ErrNoStore, Redact(raw), err)
		}
		return fmt.Errorf("storeurl: %s: %w", Redact(raw), err)
	}
	switch u.Backend {
	case SQLite:
		st, err := sqlitestore.Open(u.Path, sqlitestore.Options{Now: opt.Now, ExistingOnly: opt.ExistingOnly})
		if err != nil {
			return nil, noStore(err, sqlitestore.ErrNoStore)
		}
		return st, nil
	case Postgres:
		st, err := pgstore.Open(ctx, u.DSN, pgstore.Options{Schema: u.Schema, Now: opt.Now, Logger: opt.Logger, ExistingOnly: opt.ExistingOnly})
		if err != nil {
			return nil, noStore(err, pgstore.ErrNoStore)
		}
		return st, nil
	default:
		st, err := redisstore.Open(ctx, u.DSN, redisstore.Options{Prefix: u.Prefix, Now: opt.Now, Logger: opt.Logger, ExistingOnly: opt.ExistingOnly})
		if err != nil {
			return nil, noStore(err, redisstore.ErrNoStore)
		}
		return st, nil
	}
}

// Redact returns raw with any password (in the user information or a
// password parameter) replaced by "xxxxx", for messages. A URL it cannot
// take apart that might hold a password comes back as "(unparsable URL)".
func Redact(raw string) string { return parse.Redact(raw) }
