package lab

import (
	"context"
	"testing"
)

func TestStressQuick(t *testing.T) {
	for _, m := range []Mitigations{{}, {EgressGuard: true}, {SealedHandles: true}, {FreshEnv: true}, {ValueContext: true}, {IsolatedBackground: true}, AllMitigations()} {
		r, err := Stress(context.Background(), m, StressOptions{Runs: 40})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%-30s %+v", m, r)
	}
}
