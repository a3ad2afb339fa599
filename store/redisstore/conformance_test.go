package redisstore

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Full {
		return openTest(t, Options{})
	}, storetest.WithRawBytes(dump), storetest.WithCount(count), storetest.WithIndex(index),
		// A session key's TTL is its deadline plus a second.
		storetest.WithExpiryLag(1200*time.Millisecond))
}

// index returns the members of the principal's sorted set.
func index(t *testing.T, s store.Full, principal string) []string {
	t.Helper()
	st := s.(*Store)
	m, err := st.Client().ZRange(context.Background(), st.prefix+"u:"+principal, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dump returns every key and value under the store's prefix.
func dump(t *testing.T, s store.Full) []byte {
	t.Helper()
	st := s.(*Store)
	ctx := context.Background()
	rdb := st.Client()
	var buf bytes.Buffer
	iter := rdb.Scan(ctx, 0, st.prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		buf.WriteString(key)
		buf.WriteByte(0)
		typ, err := rdb.Type(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		var vals []string
		switch typ {
		case "hash":
			m, err := rdb.HGetAll(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range m {
				vals = append(vals, k, v)
			}
		case "zset":
			vals, err = rdb.ZRange(ctx, key, 0, -1).Result()
		case "string":
			var v string
			v, err = rdb.Get(ctx, key).Result()
			vals = []string{v}
		default:
			t.Fatalf("unexpected key %s of type %s", key, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			buf.WriteString(v)
			buf.WriteByte(0)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// count returns how many session keys the store holds, live or not.
func count(t *testing.T, s store.Full) int {
	t.Helper()
	st := s.(*Store)
	ctx := context.Background()
	n := 0
	iter := st.Client().Scan(ctx, 0, st.prefix+"s:*", 1000).Iterator()
	for iter.Next(ctx) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// BenchmarkStore runs the shared store benchmarks against Redis.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Full { return openTest(b, Options{}) })
}
