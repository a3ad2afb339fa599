package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-sec/cordon/store/sqlitestore"
)

func TestPasswordHashFormat(t *testing.T) {
	h, err := hashPassword(goodPassword, testHash, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Contains(h, goodPassword) {
		t.Fatalf("hash %q", h)
	}
	h2, _ := hashPassword(goodPassword, testHash, rand.Reader)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, c := range []struct {
		pw   string
		want bool
	}{{goodPassword, true}, {goodPassword + " ", false}, {"", false}} {
		ok, err := verifyPassword(c.pw, h)
		if err != nil || ok != c.want {
			t.Fatalf("verify(%q) = %v, %v", c.pw, ok, err)
		}
	}
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$",
	} {
		if _, err := verifyPassword(goodPassword, bad); err == nil {
			t.Fatalf("verify accepted the malformed hash %q", bad)
		}
	}
}

func TestUsersShareTheSessionFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "demo.db")
	u, err := OpenUsers(path, UsersOptions{Hash: testHash})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the database file holding password hashes is not private: %v %v", fi.Mode(), err)
	}
	st, err := sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		t.Fatalf("sqlitestore beside the users in one file: %v", err)
	}
	if err := u.Create(ctx, "alice", goodPassword); err != nil {
		t.Fatal(err)
	}
	if err := u.Create(ctx, "alice", goodPassword); !errors.Is(err, ErrUserExists) {
		t.Fatalf("second create: %v", err)
	}
	u.Close()
	st.Close()
	// Reopening applies no migration twice and keeps the users, in either
	// order of opening.
	st, err = sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err = OpenUsers(path, UsersOptions{Hash: testHash})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if err := u.Authenticate(ctx, "alice", goodPassword); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if err := u.Authenticate(ctx, "alice", "another password entirely"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password after reopen: %v", err)
	}
}

func TestOpenUsersRefusesBadInput(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if _, err := OpenUsers(p, UsersOptions{}); err == nil {
			t.Fatalf("OpenUsers(%q) succeeded", p)
		}
	}
	if _, err := OpenUsers(filepath.Join(t.TempDir(), "missing", "dir", "x.db"), UsersOptions{Hash: testHash}); err == nil {
		t.Fatal("OpenUsers in a missing directory succeeded")
	}
	if _, err := OpenUsers(filepath.Join(t.TempDir(), "x.db"), UsersOptions{Hash: HashParams{Time: 1}}); err == nil {
		t.Fatal("zero memory cost accepted")
	}
}

func TestValidatePassword(t *testing.T) {
	for pw, ok := range map[string]bool{
		strings.Repeat("x", MinPassword-1): false,
		strings.Repeat("x", MinPassword):   true,
		strings.Repeat("é", MinPassword):   true, // characters, not bytes
		strings.Repeat("x", MaxPassword):   true,
		strings.Repeat("x", MaxPassword+1): false,
		"\xff" + strings.Repeat("x", 20):   false,
	} {
		if err := ValidatePassword(pw); (err == nil) != ok {
			t.Errorf("ValidatePassword(%d bytes) = %v", len(pw), err)
		} else if err != nil && (!errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), pw)) {
			t.Errorf("error %v", err)
		}
	}
}
