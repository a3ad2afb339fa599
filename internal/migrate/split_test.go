package migrate

import "testing"

// split is unexported; the runner's other tests run on SQLite in
// internal/integration/migrate.

func TestSplit(t *testing.T) {
	got := split("-- c\nCREATE TABLE a (x);\n  -- d\nINSERT INTO a VALUES (1);\n\n")
	if len(got) != 2 || got[0] != "CREATE TABLE a (x)" || got[1] != "INSERT INTO a VALUES (1)" {
		t.Fatalf("split = %q", got)
	}
}
