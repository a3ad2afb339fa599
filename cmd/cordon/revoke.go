package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/cordon-sec/cordon/proxy"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/storeurl"
)

// revokeUsage is printed by `cordon revoke -h`.
const revokeUsage = `usage: cordon revoke [-store URL] [-apply] SELECTOR...

Revokes sessions in the store: one or more by fingerprint, every session of
a user, or every session. Without -apply it only prints what it would
revoke and how many live sessions that is; with -apply it prints how many
live sessions the store revoked. It opens the store as it is and never
creates or migrates one: a missing SQLite file, a PostgreSQL database
without the cordon schema (a mistyped ?schema=) or a Redis server without
cordon keys under the prefix (a mistyped ?prefix=) is an error. When no
live session matches it warns on stderr.

Selectors (combine -session, -from and -user freely; -all stands alone):
  -session FP   a session fingerprint (32 lowercase hex digits); repeatable
  -from FILE    fingerprints one per line ("-" reads stdin); blank lines and
                # comments are ignored; e.g. the -sessions-out of cordon scan
  -user ID      every session of the user (principal) ID; repeatable
  -all          every session of everyone

With -proxy, -store names a cordon proxy's bindings store (sqlite:PATH or
redis://…) and the sessions are revoked at the edge: every proxy node that
reads the store strips them from requests and blocks them in responses
within its poll interval. The proxy knows sessions, not users: -user does
not apply there.

Flags:
`

// revokeRequest is a parsed `cordon revoke` command line.
type revokeRequest struct {
	storeURL string
	fps      []string // sorted, without repeats
	users    []string // sorted, without repeats
	all      bool
	apply    bool
	edge     bool // -proxy
}

func runRevoke(ctx context.Context, env *Env, args []string) error {
	r, err := parseRevoke(env, args)
	if err != nil {
		return err
	}
	return r.run(ctx, env)
}

// parseRevoke reads the flags and the fingerprint files; it opens no store.
func parseRevoke(env *Env, args []string) (*revokeRequest, error) {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, revokeUsage)
		fs.PrintDefaults()
	}
	var (
		sessions, users, files []string
		all                    = fs.Bool("all", false, "revoke every session of everyone")
		apply                  = fs.Bool("apply", false, "revoke; without it, only print what would be revoked")
		storeURL               = fs.String("store", storeurl.Default, "the session store: sqlite:PATH, postgres://… or redis://…")
		edge                   = fs.Bool("proxy", false, "-store is a cordon proxy's bindings store (sqlite:PATH or redis://…): revoke at the edge, on every proxy node")
	)
	fs.Func("session", "a session fingerprint to revoke (repeatable)", func(v string) error {
		sessions = append(sessions, v)
		return nil
	})
	fs.Func("user", "revoke every session of this user ID (repeatable)", func(v string) error {
		if v == "" {
			return errors.New("empty user ID")
		}
		users = append(users, v)
		return nil
	})
	fs.Func("from", `read fingerprints from FILE, one per line ("-" for stdin; repeatable)`, func(v string) error {
		files = append(files, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError("revoke: %v", err)
	}
	if fs.NArg() > 0 {
		return nil, usageError("revoke: unexpected argument %q", fs.Arg(0))
	}
	if !*all && len(sessions)+len(users)+len(files) == 0 {
		fs.Usage()
		return nil, usageError("revoke: say what to revoke: -session, -from, -user or -all")
	}
	if *all && len(sessions)+len(users)+len(files) > 0 {
		return nil, usageError("revoke: -all revokes everyone; it does not combine with -session, -from or -user")
	}
	if _, err := storeurl.Parse(*storeURL); err != nil {
		return nil, usageError("revoke: -store: %v", err)
	}
	r := &revokeRequest{storeURL: *storeURL, all: *all, apply: *apply, edge: *edge}
	for i, fp := range sessions {
		if err := checkFingerprint(fp); err != nil {
			return nil, usageError("revoke: -session #%d: %v", i+1, err)
		}
		r.fps = append(r.fps, fp)
	}
	for _, name := range files {
		got, err := readFingerprints(env, name)
		if err != nil {
			return nil, err
		}
		r.fps = append(r.fps, got...)
	}
	slices.Sort(r.fps)
	r.fps = slices.Compact(r.fps)
	slices.Sort(users)
	r.users = slices.Compact(users)
	return r, nil
}

// run opens the store as it is, never creating or migrating one, and
// revokes (or, without -apply, counts).
func (r *revokeRequest) run(ctx context.Context, env *Env) error {
	if r.edge {
		// Revoking never creates a store: a mistyped path is an error,
		// not an empty new database in which nothing is found.
		if path, ok := sqlitePath(r.storeURL); ok {
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("revoke: no store at %s: %w", r.storeURL, err)
			}
		}
		return revokeAtEdge(ctx, env, r.storeURL, r.fps, r.users, r.all, r.apply)
	}
	st, err := storeurl.Open(ctx, r.storeURL, storeurl.Options{ExistingOnly: true})
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer st.Close()
	where := storeurl.Redact(r.storeURL)
	if r.apply {
		return r.revoke(ctx, env, st, where)
	}
	return r.dryRun(ctx, env, st, where)
}

// warnNothing says loudly, on stderr, that no live session matched: the
// usual cause is a store other than the one meant.
func warnNothing(env *Env, where string, applied bool) {
	what := "nothing would be revoked"
	if applied {
		what = "nothing was revoked"
	}
	fmt.Fprintf(env.Stderr, "cordon revoke: WARNING: %s: no live session matched on %s.\n"+
		"cordon revoke: WARNING: if sessions were expected, check -store (the file, ?schema= or ?prefix=) and the selectors.\n", what, where)
}

// dryRun prints what r would revoke and how many live sessions that is.
func (r *revokeRequest) dryRun(ctx context.Context, env *Env, st storeurl.Store, where string) error {
	out := env.Stdout
	if r.all {
		live, err := st.List(ctx, store.ListOptions{})
		if err != nil {
			return fmt.Errorf("revoke: count sessions: %w", err)
		}
		fmt.Fprintf(out, "dry run on %s: would revoke every session of everyone: %d live sessions\n", where, len(live))
		fmt.Fprintln(out, "run again with -apply to revoke")
		if len(live) == 0 {
			warnNothing(env, where, false)
		}
		return nil
	}
	// Look the fingerprints up among the live sessions.
	byFP := map[string]*store.Session{}
	if len(r.fps) > 0 {
		live, err := st.List(ctx, store.ListOptions{})
		if err != nil {
			return fmt.Errorf("revoke: list sessions: %w", err)
		}
		for _, s := range live {
			byFP[s.Fingerprint()] = s
		}
	}
	userCount := map[string]int{}
	for _, u := range r.users {
		l, err := st.List(ctx, store.ListOptions{Principal: u})
		if err != nil {
			return fmt.Errorf("revoke: list sessions of a user: %w", err)
		}
		userCount[u] = len(l)
	}
	// A session listed by fingerprint and also covered by -user counts once.
	covered := map[string]bool{}
	for _, u := range r.users {
		covered[u] = true
	}
	total, known := 0, 0
	for _, fp := range r.fps {
		if s, ok := byFP[fp]; ok {
			known++
			if !covered[s.Principal] {
				total++
			}
		}
	}
	for _, u := range r.users {
		total += userCount[u]
	}
	fmt.Fprintf(out, "dry run on %s: would revoke\n", where)
	for _, fp := range r.fps {
		if s, ok := byFP[fp]; ok {
			fmt.Fprintf(out, "  session %s  live, user %q, last seen %s\n", fp, s.Principal, s.LastSeen.UTC().Format("2006-01-02T15:04:05Z"))
		} else {
			fmt.Fprintf(out, "  session %s  not live (unknown, expired or already revoked)\n", fp)
		}
	}
	for _, u := range r.users {
		fmt.Fprintf(out, "  user %q  %d live sessions\n", u, userCount[u])
	}
	fmt.Fprintf(out, "total: %d live sessions", total)
	if len(r.fps) > 0 {
		fmt.Fprintf(out, " (%d of %d fingerprints live)", known, len(r.fps))
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "run again with -apply to revoke")
	if total == 0 {
		warnNothing(env, where, false)
	}
	return nil
}

// revoke revokes and prints the counts the store reports.
func (r *revokeRequest) revoke(ctx context.Context, env *Env, st storeurl.Store, where string) error {
	out := env.Stdout
	cr, counting := st.(store.CountingRevoker)
	total := 0
	if r.all {
		var n int
		var err error
		if counting {
			n, err = cr.RevokeAllCount(ctx)
		} else {
			err = st.RevokeAll(ctx)
		}
		if err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		fmt.Fprintf(out, "revoked every session of everyone on %s: %d live sessions\n", where, n)
		total += n
	}
	if len(r.fps) > 0 {
		n, err := st.RevokeFingerprints(ctx, r.fps)
		if err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		fmt.Fprintf(out, "revoked %d live sessions of %d fingerprints on %s (%d unknown, expired or already revoked)\n",
			n, len(r.fps), where, len(r.fps)-n)
		total += n
	}
	for _, u := range r.users {
		var n int
		var err error
		if counting {
			n, err = cr.RevokePrincipalCount(ctx, u)
		} else {
			err = st.RevokePrincipal(ctx, u)
		}
		if err != nil {
			return fmt.Errorf("revoke: user %q: %w", u, err)
		}
		fmt.Fprintf(out, "revoked every session of user %q on %s: %d live sessions\n", u, where, n)
		total += n
	}
	if total == 0 {
		warnNothing(env, where, true)
	}
	return nil
}

// checkFingerprint explains why fp is not a fingerprint. It never repeats
// fp: a mistaken paste could be a live cookie value.
func checkFingerprint(fp string) error {
	if store.ValidFingerprint(fp) {
		return nil
	}
	if len(fp) == 32 && store.ValidFingerprint(strings.ToLower(fp)) {
		return errors.New("fingerprint has upper-case hex digits; fingerprints are lower-case")
	}
	return fmt.Errorf("not a session fingerprint (%d characters; want 32 lowercase hex digits)", len(fp))
}

// readFingerprints reads a file of fingerprints, one per line, ignoring
// blank lines and # comments (whole-line or trailing).
func readFingerprints(env *Env, name string) ([]string, error) {
	var r io.Reader
	if name == "-" {
		r = env.Stdin
		name = "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("revoke: %w", err)
		}
		defer f.Close()
		r = f
	}
	var fps []string
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if err := checkFingerprint(text); err != nil {
			return nil, fmt.Errorf("revoke: %s:%d: %v", name, line, err)
		}
		fps = append(fps, text)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("revoke: %s:%d: %w", name, line+1, err)
	}
	return fps, nil
}

// sqlitePath returns the file of a sqlite: store URL.
func sqlitePath(raw string) (string, bool) {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || (!strings.EqualFold(scheme, "sqlite") && !strings.EqualFold(scheme, "sqlite3")) {
		return "", false
	}
	return strings.TrimPrefix(rest, "//"), true
}

// revokeAtEdge revokes sessions in a cordon proxy's bindings store, which
// every proxy node reading it strips from then on (within its poll
// interval). The proxy knows sessions by fingerprint only, so it revokes by
// fingerprint or everything; a user is the app's business.
func revokeAtEdge(ctx context.Context, env *Env, storeURL string, fps, users []string, all, apply bool) error {
	if len(users) > 0 {
		return usageError("revoke: -user does not apply with -proxy: the proxy knows sessions, not users; revoke by -session, -from or -all")
	}
	where := storeurl.Redact(storeURL)
	out := env.Stdout
	path, isSQLite := sqlitePath(storeURL)
	if !isSQLite && !strings.HasPrefix(storeURL, "redis://") && !strings.HasPrefix(storeURL, "rediss://") {
		return usageError("revoke: -proxy takes -store sqlite:PATH or redis://…")
	}
	what := fmt.Sprintf("%d sessions by fingerprint", len(fps))
	if all {
		what = "every session bound so far"
	}
	if !apply {
		if isSQLite {
			bound, known, err := proxy.CountInFile(path, fps)
			if err != nil {
				return fmt.Errorf("revoke: %w", err)
			}
			if all {
				what = fmt.Sprintf("every session bound so far: %d", bound)
			} else {
				what = fmt.Sprintf("%d sessions by fingerprint, %d of them bound at the edge", len(fps), len(known))
			}
		}
		fmt.Fprintf(out, "dry run on the proxy store %s: would revoke %s\n", where, what)
		fmt.Fprintln(out, "run again with -apply to revoke")
		return nil
	}
	var err error
	if isSQLite {
		err = proxy.RevokeInFile(ctx, path, fps, all)
	} else {
		err = proxy.RevokeRedis(ctx, storeURL, fps, all)
	}
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	fmt.Fprintf(out, "revoked at the edge on %s: %s\n", where, what)
	return nil
}
