package pgstore

import (
	"bytes"
	"context"
	"testing"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Full {
		return openTest(t, Options{})
	}, storetest.WithRawBytes(dump), storetest.WithCount(count))
}

// dump returns every byte the store's tables hold.
func dump(t *testing.T, s store.Full) []byte {
	t.Helper()
	st := s.(*Store)
	ctx := context.Background()
	var buf bytes.Buffer
	for _, q := range []string{
		`SELECT hash, principal::bytea, data, last_ip::bytea, user_agent::bytea, created::text::bytea FROM ` + st.schema + `.sessions`,
		`SELECT principal::bytea, epoch::text::bytea, ''::bytea, ''::bytea, ''::bytea, ''::bytea FROM ` + st.schema + `.principal_epochs`,
		`SELECT global_epoch::text::bytea, revocation_seq::text::bytea, ''::bytea, ''::bytea, ''::bytea, ''::bytea FROM ` + st.schema + `.meta`,
	} {
		rows, err := st.Pool().Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var cols [6][]byte
			if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5]); err != nil {
				t.Fatal(err)
			}
			for _, c := range cols {
				buf.Write(c)
				buf.WriteByte(0)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// count returns how many rows the sessions table holds, live or not.
func count(t *testing.T, s store.Full) int {
	t.Helper()
	var n int
	st := s.(*Store)
	if err := st.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+st.schema+".sessions").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkStore runs the shared store benchmarks against PostgreSQL.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Full { return openTest(b, Options{}) })
}
