package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/cordon-sec/cordon/store/storeurl"
)

// migrateUsage is printed by `cordon migrate -h`.
const migrateUsage = `usage: cordon migrate -store URL

Creates cordon's session store where URL points, or brings its schema up
to date: the SQLite file and its tables, the PostgreSQL schema (?schema=,
default cordon) and its tables, or the marker key under the Redis prefix
(?prefix=, default cordon:). Running it again changes nothing.

An application opening its store does the same by itself; this is for
creating a store ahead of time, for example before the first
cordon revoke, which never creates one.

Flags:
`

func runMigrate(ctx context.Context, env *Env, args []string) error {
	raw, err := parseMigrate(env, args)
	if err != nil {
		return err
	}
	st, err := storeurl.Open(ctx, raw, storeurl.Options{})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintf(env.Stdout, "cordon session store at %s is ready (schema up to date)\n", storeurl.Redact(raw))
	return nil
}

// parseMigrate returns the -store URL of a `cordon migrate` command line.
func parseMigrate(env *Env, args []string) (string, error) {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, migrateUsage)
		fs.PrintDefaults()
	}
	raw := fs.String("store", "", "the session store to create or migrate: sqlite:PATH, postgres://… or redis://…")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", usageError("migrate: %v", err)
	}
	if fs.NArg() > 0 {
		return "", usageError("migrate: unexpected argument %q", fs.Arg(0))
	}
	if *raw == "" {
		fs.Usage()
		return "", usageError("migrate: say which store: -store URL")
	}
	if _, err := storeurl.Parse(*raw); err != nil {
		return "", usageError("migrate: -store: %v", err)
	}
	return *raw, nil
}
