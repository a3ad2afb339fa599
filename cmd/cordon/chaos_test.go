package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cordon-sec/cordon/chaos"
)

func TestChaosCommand(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	if err := Run(context.Background(), env, []string{"chaos", "-clients", "16", "-requests", "1500", "-format", "json"}); err != nil {
		t.Fatalf("chaos: %v\n%s", err, errb.String())
	}
	var res chaos.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if res.Requests < 1500 || res.Crossings != 0 || res.StaleActed != 0 || res.StaleRefused == 0 || res.GuardBlocks == 0 || res.StaleWritesActed != 0 {
		t.Fatalf("chaos result %s", out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Stdout: &out, Stderr: &errb}
	for _, args := range [][]string{nil, {"no-such-command"}, {"chaos", "-clients", "0"}, {"chaos", "-format", "xml"}} {
		if err := Run(context.Background(), env, args); !errors.Is(err, errUsage) {
			t.Errorf("cordon %q: %v, want a usage error", args, err)
		}
	}
	if err := Run(context.Background(), env, []string{"help"}); err != nil {
		t.Errorf("cordon help: %v", err)
	}
}
