package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/cordon-sec/cordon/store/storeurl"
)

// cordon migrate creates the store that cordon revoke refuses to create,
// in every backend; running it again changes nothing.
func TestMigrate(t *testing.T) {
	for backend, raw := range revokeStores(t) {
		t.Run(backend, func(t *testing.T) {
			if _, _, err := runCmd(t, "", "revoke", "-store", raw, "-all"); !errors.Is(err, storeurl.ErrNoStore) {
				t.Fatalf("revoke before migrate: %v, want ErrNoStore", err)
			}
			wantNothing(t, backend, raw)
			for i := 0; i < 2; i++ {
				out, _, err := runCmd(t, "", "migrate", "-store", raw)
				if err != nil || !strings.Contains(out, "is ready") {
					t.Fatalf("migrate #%d: %v\n%s", i+1, err, out)
				}
			}
			out, errOut, err := runCmd(t, "", "revoke", "-store", raw, "-all", "-apply")
			if err != nil || !strings.Contains(out, "0 live sessions") || !strings.Contains(errOut, "WARNING") {
				t.Fatalf("revoke after migrate: %v\n%s\n%s", err, out, errOut)
			}
			sd := seed(t, raw)
			if _, _, err := runCmd(t, "", "migrate", "-store", raw); err != nil {
				t.Fatal(err)
			}
			if got := liveCount(t, raw, sd); got["bob"] != 3 {
				t.Fatalf("migrating an up-to-date store lost sessions: %v", got)
			}
		})
	}
}

func TestMigrateBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate"}, "say which store"},
		{[]string{"migrate", "-store", "sqlite"}, "has no path"},
		{[]string{"migrate", "-store", "redis"}, "malformed store URL"},
		{[]string{"migrate", "-store", "nothing"}, "unknown store URL scheme"},
		{[]string{"migrate", "-store", "sqlite:x.db", "extra"}, "unexpected argument"},
		{[]string{"migrate", "-bogus"}, "flag provided but not defined"},
	} {
		_, _, err := runCmd(t, "", tc.args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error saying %q", tc.args, err, tc.want)
		}
	}
	if _, _, err := runCmd(t, "", "migrate", "-h"); err != nil {
		t.Errorf("migrate -h: %v", err)
	}
}
