package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/proxy"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/pgstore"
	"github.com/cordon-sec/cordon/store/redisstore"
	"github.com/cordon-sec/cordon/store/storeurl"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// revokeStores returns, per backend, the URL of a fresh, empty store.
func revokeStores(t *testing.T) map[string]string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	urls := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "revoke.db")}
	for backend, env := range map[string]string{"postgres": "CORDON_TEST_POSTGRES", "redis": "CORDON_TEST_REDIS"} {
		raw := os.Getenv(env)
		if raw == "" {
			t.Fatalf("%s is not set: run the tests with ./test.sh, which starts PostgreSQL and Redis", env)
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if backend == "postgres" {
			q.Set("schema", name)
		} else {
			q.Set("prefix", name+":")
		}
		u.RawQuery = q.Encode()
		urls[backend] = u.String()
	}
	t.Cleanup(func() {
		ctx := context.Background()
		st, err := storeurl.Open(ctx, urls["postgres"], storeurl.Options{})
		if err == nil {
			st.(*pgstore.Store).Pool().Exec(ctx, "DROP SCHEMA "+name+" CASCADE")
			st.Close()
		}
		st, err = storeurl.Open(ctx, urls["redis"], storeurl.Options{})
		if err == nil {
			rdb := st.(*redisstore.Store).Client()
			if keys, _ := rdb.Keys(ctx, name+":*").Result(); len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
			st.Close()
		}
	})
	return urls
}

func runCmd(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb}
	err := Run(context.Background(), env, args)
	return out.String(), errb.String(), err
}

type seeded struct {
	tokens map[string][]string // principal -> cookie values
	hashes map[string][]store.Hash
}

func seed(t *testing.T, raw string) seeded {
	t.Helper()
	ctx := context.Background()
	st, err := storeurl.Open(ctx, raw, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sd := seeded{map[string][]string{}, map[string][]store.Hash{}}
	now := time.Now()
	for _, p := range []string{"alice", "alice", "bob", "bob", "bob", "carol"} {
		var b [32]byte
		rand.Read(b[:])
		tok := base64.RawURLEncoding.EncodeToString(b[:])
		s := &store.Session{Hash: store.HashToken(tok), Principal: p, Data: []byte("d"), Created: now,
			LastSeen: now, IdleDeadline: now.Add(time.Hour), Expires: now.Add(time.Hour)}
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		sd.tokens[p] = append(sd.tokens[p], tok)
		sd.hashes[p] = append(sd.hashes[p], s.Hash)
	}
	return sd
}

// liveCount returns how many of the seeded sessions of each principal are
// still live.
func liveCount(t *testing.T, raw string, sd seeded) map[string]int {
	t.Helper()
	ctx := context.Background()
	st, err := storeurl.Open(ctx, raw, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := map[string]int{}
	for p, hs := range sd.hashes {
		for _, h := range hs {
			_, err := st.Find(ctx, h)
			switch {
			case err == nil:
				out[p]++
			case !errors.Is(err, store.ErrNotFound):
				t.Fatal(err)
			}
		}
	}
	return out
}

func TestRevoke(t *testing.T) {
	for backend, raw := range revokeStores(t) {
		t.Run(backend, func(t *testing.T) {
			sd := seed(t, raw)
			a0 := sd.hashes["alice"][0].Fingerprint()
			unknown := store.HashToken("never issued").Fingerprint()
			list := filepath.Join(t.TempDir(), "fps.txt")
			os.WriteFile(list, []byte("# from cordon scan\n\n"+a0+"  # rule 2\n"+unknown+"\n"), 0o600)

			// Dry run: prints, counts, changes nothing.
			out, _, err := runCmd(t, "", "revoke", "-store", raw, "-from", list, "-user", "bob")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"dry run", a0 + "  live, user \"alice\"", unknown + "  not live", `user "bob"  3 live sessions`, "total: 4 live sessions", "-apply"} {
				if !strings.Contains(out, want) {
					t.Errorf("dry run output lacks %q:\n%s", want, out)
				}
			}
			if got := liveCount(t, raw, sd); got["alice"] != 2 || got["bob"] != 3 || got["carol"] != 1 {
				t.Fatalf("dry run revoked something: %v", got)
			}

			// Apply: exactly those.
			out, _, err = runCmd(t, "", "revoke", "-store", raw, "-from", list, "-user", "bob", "-apply")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "revoked 1 live sessions of 2 fingerprints") || !strings.Contains(out, `revoked every session of user "bob" on `) ||
				!strings.Contains(out, ": 3 live sessions") {
				t.Errorf("apply output:\n%s", out)
			}
			if got := liveCount(t, raw, sd); got["alice"] != 1 || got["bob"] != 0 || got["carol"] != 1 {
				t.Fatalf("after -apply live sessions are %v, want alice 1, bob 0, carol 1", got)
			}

			// One session by -session, from stdin too.
			a1 := sd.hashes["alice"][1].Fingerprint()
			if _, _, err := runCmd(t, a1+"\n", "revoke", "-store", raw, "-from", "-", "-apply"); err != nil {
				t.Fatal(err)
			}
			if got := liveCount(t, raw, sd); got["alice"] != 0 || got["carol"] != 1 {
				t.Fatalf("after revoking from stdin: %v", got)
			}

			// Everyone.
			out, _, err = runCmd(t, "", "revoke", "-store", raw, "-all")
			if err != nil || !strings.Contains(out, "every session of everyone: 1 live sessions") {
				t.Fatalf("dry run -all: %v\n%s", err, out)
			}
			if got := liveCount(t, raw, sd); got["carol"] != 1 {
				t.Fatal("dry run -all revoked")
			}
			if _, _, err := runCmd(t, "", "revoke", "-store", raw, "-all", "-apply"); err != nil {
				t.Fatal(err)
			}
			if got := liveCount(t, raw, sd); got["carol"] != 0 {
				t.Fatalf("after -all -apply: %v", got)
			}
			// No output ever carries a cookie value.
			for _, toks := range sd.tokens {
				for _, tok := range toks {
					if strings.Contains(out, tok) {
						t.Fatal("output contains a cookie value")
					}
				}
			}
		})
	}
}

func TestRevokeBadInput(t *testing.T) {
	dir := t.TempDir()
	raw := "sqlite:" + filepath.Join(dir, "bad.db")
	if st, err := storeurl.Open(context.Background(), raw, storeurl.Options{}); err != nil {
		t.Fatal(err)
	} else {
		st.Close()
	}
	secret := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	good := store.HashToken("x").Fingerprint()
	bad := filepath.Join(dir, "bad.txt")
	os.WriteFile(bad, []byte("# ok\n"+good+"\n\n"+secret+"\n"), 0o600)
	upper := filepath.Join(dir, "upper.txt")
	os.WriteFile(upper, []byte(strings.ToUpper(good)+"\n"), 0o600)
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"revoke", "-store", raw}, true, "say what to revoke"},
		{[]string{"revoke", "-store", raw, "-all", "-user", "bob"}, true, "does not combine"},
		{[]string{"revoke", "-store", raw, "-session", secret}, true, "not a session fingerprint"},
		{[]string{"revoke", "-store", raw, "-from", bad}, false, bad + ":4: not a session fingerprint (43 characters"},
		{[]string{"revoke", "-store", raw, "-from", upper}, false, upper + ":1: fingerprint has upper-case"},
		{[]string{"revoke", "-store", raw, "-from", filepath.Join(dir, "missing")}, false, "no such file"},
		{[]string{"revoke", "-store", "mysql://x", "-all"}, true, "unknown store URL scheme"},
		{[]string{"revoke", "-store", "sqlite", "-all"}, true, "has no path"},
		{[]string{"revoke", "-store", "sqlite:", "-all"}, true, "without a path"},
		{[]string{"revoke", "-store", "postgres://u:" + secret + "@h:port/db", "-all"}, true, "malformed store URL"},
		{[]string{"revoke", "-store", "sqlite:" + filepath.Join(dir, "typo.db"), "-all"}, false, "no cordon session store"},
		{[]string{"revoke", "-proxy", "-store", "sqlite:" + filepath.Join(dir, "typo.db"), "-all"}, false, "no store at"},
		{[]string{"revoke", "-bogus"}, true, "flag provided but not defined"},
		{[]string{"revoke", "-user", ""}, true, "empty user ID"},
		{[]string{"revoke", "-all", "extra"}, true, "unexpected argument"},
	} {
		_, _, err := runCmd(t, "", tc.args...)
		if err == nil {
			t.Errorf("%v: no error", tc.args)
			continue
		}
		if errors.Is(err, errUsage) != tc.usage {
			t.Errorf("%v: usage error %v, want %v: %v", tc.args, errors.Is(err, errUsage), tc.usage, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %q lacks %q", tc.args, err, tc.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%v: error repeats the malformed value, which could be a cookie", tc.args)
		}
	}
	if _, _, err := runCmd(t, "", "revoke", "-h"); err != nil {
		t.Errorf("revoke -h: %v", err)
	}
}

// TestRevokeAtTheEdge revokes in a cordon proxy's bindings file, the way an
// operator stops leaked sessions at every proxy node.
func TestRevokeAtTheEdge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bindings.db")
	b, err := proxy.OpenBindings(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fpA, fpB := strings.Repeat("a", 32), strings.Repeat("b", 32)
	for _, fp := range []string{fpA, fpB} {
		if _, _, err := b.Bind(ctx, fp, proxy.Binding{Device: "dev-" + fp[:1], Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	out, _, err := runCmd(t, "", "revoke", "-proxy", "-store", "sqlite:"+path, "-session", fpA)
	if err != nil || !strings.Contains(out, "dry run") || !strings.Contains(out, "1 of them bound") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if _, _, err := runCmd(t, "", "revoke", "-proxy", "-store", "sqlite:"+path, "-user", "alice"); !errors.Is(err, errUsage) {
		t.Fatalf("-user with -proxy: %v, want a usage error", err)
	}
	if out, _, err := runCmd(t, "", "revoke", "-proxy", "-store", "sqlite:"+path, "-session", fpA, "-apply"); err != nil || !strings.Contains(out, "revoked at the edge") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	b, err = proxy.OpenBindings(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, st := b.Get(fpA); st != proxy.Revoked {
		t.Fatalf("revoked fingerprint is %v at the edge", st)
	}
	if _, st := b.Get(fpB); st != proxy.Bound {
		t.Fatalf("the other session is %v, want still bound", st)
	}
}

// TestRevokeNeverCreates runs cordon revoke, dry and with -apply, against
// stores that do not exist: a SQLite path with no file, a PostgreSQL schema
// and a Redis prefix cordon never used (what a typo in ?schema= or
// ?prefix= gives). Each is an error saying so, and nothing is created.
func TestRevokeNeverCreates(t *testing.T) {
	ctx := context.Background()
	for backend, raw := range revokeStores(t) {
		t.Run(backend, func(t *testing.T) {
			for _, args := range [][]string{{"-user", "alice"}, {"-user", "alice", "-apply"}, {"-all", "-apply"},
				{"-session", store.HashToken("x").Fingerprint(), "-apply"}} {
				out, _, err := runCmd(t, "", append([]string{"revoke", "-store", raw}, args...)...)
				if err == nil || !errors.Is(err, storeurl.ErrNoStore) || !strings.Contains(err.Error(), "no cordon") {
					t.Fatalf("revoke %v on a store that does not exist: %v, want an error saying there is no cordon store\n%s", args, err, out)
				}
				if strings.Contains(out, "revoked") {
					t.Fatalf("revoke %v printed %q", args, out)
				}
			}
			// main exits non-zero for every error Run returns.
			if err := Run(ctx, &Env{Stdout: io.Discard, Stderr: io.Discard}, []string{"revoke", "-store", raw, "-all"}); err == nil {
				t.Fatalf("no error (exit code 0) for a store that does not exist")
			}
			wantNothing(t, backend, raw)
		})
	}
}

// wantNothing fails if a store exists at raw.
func wantNothing(t *testing.T, backend, raw string) {
	t.Helper()
	ctx := context.Background()
	u, err := storeurl.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	switch backend {
	case "sqlite":
		if _, err := os.Stat(u.Path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a file exists at %s: %v", u.Path, err)
		}
	case "postgres":
		conn, err := pgx.Connect(ctx, u.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", u.Schema).Scan(&n); err != nil || n != 0 {
			t.Fatalf("schema %q exists (%d, %v)", u.Schema, n, err)
		}
	case "redis":
		o, err := redis.ParseURL(u.DSN)
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(o)
		defer rdb.Close()
		if keys, err := rdb.Keys(ctx, u.Prefix+"*").Result(); err != nil || len(keys) != 0 {
			t.Fatalf("keys under %q: %v, %v", u.Prefix, keys, err)
		}
	}
}

// A SQLite file that holds no session store (another application's
// database, the demo's users alone) is refused and left byte for byte as
// it was.
func TestRevokeSQLiteWithoutSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE unrelated (x INTEGER); INSERT INTO unrelated VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCmd(t, "", "revoke", "-store", "sqlite:"+path, "-all", "-apply")
	if !errors.Is(err, storeurl.ErrNoStore) || !strings.Contains(err.Error(), "cordon migrate") {
		t.Fatalf("revoke on a SQLite file without the schema: %v, want ErrNoStore naming cordon migrate", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the file changed (%d bytes before, %d after, %v)", len(before), len(after), err)
	}
	for _, side := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + side); err == nil {
			t.Fatalf("revoke created %s%s", path, side)
		}
	}
}

// With -apply, cordon revoke prints what the store reports and warns on
// stderr when nothing matched.
func TestRevokeApplyCountsAndWarns(t *testing.T) {
	for backend, raw := range revokeStores(t) {
		t.Run(backend, func(t *testing.T) {
			sd := seed(t, raw)
			_, errOut, err := runCmd(t, "", "revoke", "-store", raw, "-user", "nobody", "-apply")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(errOut, "WARNING: nothing was revoked") {
				t.Fatalf("no warning when nothing matched; stderr:\n%s", errOut)
			}
			_, errOut, err = runCmd(t, "", "revoke", "-store", raw, "-session", store.HashToken("never").Fingerprint())
			if err != nil || !strings.Contains(errOut, "WARNING: nothing would be revoked") {
				t.Fatalf("dry run matching nothing: %v, stderr:\n%s", err, errOut)
			}
			out, errOut, err := runCmd(t, "", "revoke", "-store", raw, "-user", "bob", "-user", "alice", "-apply")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{`user "alice" on ` + storeurl.Redact(raw) + `: 2 live sessions`, `user "bob" on ` + storeurl.Redact(raw) + `: 3 live sessions`} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(errOut, "WARNING") {
				t.Errorf("warned although sessions were revoked:\n%s", errOut)
			}
			out, _, err = runCmd(t, "", "revoke", "-store", raw, "-all", "-apply")
			if err != nil || !strings.Contains(out, "everyone on "+storeurl.Redact(raw)+": 1 live sessions") {
				t.Fatalf("-all -apply: %v\n%s", err, out)
			}
			if got := liveCount(t, raw, sd); got["alice"]+got["bob"]+got["carol"] != 0 {
				t.Fatalf("live after revoking everyone: %v", got)
			}
		})
	}
}
