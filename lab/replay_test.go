package lab

import (
	"context"
	"os"
	"testing"
)

func TestReplayBaselineLeaks(t *testing.T) {
	var out = os.Stdout
	if !testing.Verbose() {
		out = nil
	}
	res, err := Replay(context.Background(), ReplayOptions{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Leaked {
		t.Fatalf("baseline replay did not leak: %+v", res.Responses)
	}
}
