package memstore

import (
	"bytes"
	"testing"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/storetest"
)

// dump writes everything the store holds as raw bytes: keys, every field of
// every session, and the epochs.
func dump(t *testing.T, s store.Full) []byte {
	st := s.(*Store)
	st.mu.RLock()
	defer st.mu.RUnlock()
	var b bytes.Buffer
	for h, s := range st.sessions {
		b.Write(h[:])
		b.Write(s.Hash[:])
		b.WriteString(s.Principal)
		b.Write(s.Data)
		b.WriteString(s.LastIP)
		b.WriteString(s.UserAgent)
	}
	for p := range st.principals {
		b.WriteString(p)
	}
	return b.Bytes()
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Full { return New(Options{}) },
		storetest.WithRawBytes(dump),
		storetest.WithCount(func(t *testing.T, s store.Full) int { return s.(*Store).Len() }))
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Full { return New(Options{}) })
}
