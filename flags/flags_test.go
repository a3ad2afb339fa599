package flags

import (
	"hash/crc32"
	"testing"
)

// The tests that run flags against SQLite and PostgreSQL live in the
// module internal/integration (package flags there), which requires the
// drivers; the root module requires nothing outside the standard library.

func TestPercentageHashIsCRC32(t *testing.T) {
	for _, pair := range [][2]string{{"", ""}, {"search", "u_1"}, {"new_ui", "8f14e45f"}, {"ü", "ß"}} {
		want := crc32.ChecksumIEEE([]byte(pair[0] + pair[1]))
		if got := crcString(crcString(0, pair[0]), pair[1]); got != want {
			t.Fatalf("crc(%q+%q) = %08x, want %08x", pair[0], pair[1], got, want)
		}
	}
}

func TestRebind(t *testing.T) {
	q := `DELETE FROM cordon_flag_gates WHERE flag = ? AND gate = ? AND value = ?`
	if got := Postgres.rebind(q); got != `DELETE FROM cordon_flag_gates WHERE flag = $1 AND gate = $2 AND value = $3` {
		t.Fatalf("rebind = %s", got)
	}
	if SQLite.rebind(q) != q {
		t.Fatal("sqlite rebind changed the query")
	}
}
