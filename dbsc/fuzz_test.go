package dbsc_test

import (
	"errors"
	"testing"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/dbsc/dbsctest"
)

// FuzzVerify feeds arbitrary bytes to the proof parsers and header readers:
// they must return ErrProof or ErrHeader, never panic, and never verify a
// proof the registered key did not sign.
func FuzzVerify(f *testing.F) {
	c := dbsctest.NewES256()
	f.Add(c.RegistrationProof("c", "a"))
	f.Add(c.RefreshProof("c"))
	f.Add(dbsctest.NewRS256(2048).RegistrationProof("c", ""))
	f.Add(`"eyJhbGciOiJFUzI1NiJ9.e30.c2ln";x=1`)
	f.Add("a.b.c")
	registered := dbsctest.NewES256().Key()
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := dbsc.HeaderString(s); err != nil && !errors.Is(err, dbsc.ErrHeader) {
			t.Fatalf("HeaderString error %v is not ErrHeader", err)
		} else if err == nil && v == "" {
			t.Fatal("HeaderString returned an empty value without error")
		}
		if p, err := dbsc.VerifyRegistration(s); err != nil && (!errors.Is(err, dbsc.ErrProof) || p != nil) {
			t.Fatalf("VerifyRegistration = %+v, %v", p, err)
		}
		// Only the holder of registered's private key could sign: nothing
		// the fuzzer makes may verify against it.
		if p, err := dbsc.VerifyRefresh(s, registered); err == nil {
			t.Fatalf("VerifyRefresh accepted %q: %+v", s, p)
		}
	})
}
