package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/cordon-sec/cordon/chaos"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

// runChaos drives the chaos harness: many signed-in clients against hostile
// code, and reports whether any session reached the wrong person.
func runChaos(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	clients := fs.Int("clients", 64, "concurrent clients, each signed in as its own user")
	requests := fs.Int("requests", 1_000_000, "total requests")
	seed := fs.Uint64("seed", 1, "seed for the clients' choices")
	capture := fs.Float64("capture", 0.25, "fraction of requests whose handle hostile code keeps")
	work := fs.Duration("work", 200*time.Microsecond, "how long each handler works before answering")
	format := fs.String("format", "text", "output: text or json")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: cordon chaos [flags]\n\nServes a cordon app on loopback and drives it with signed-in clients while\nhostile code keeps session handles and response writers past their requests,\nwrites other requests' cookies into responses in every shape, and tosses\nother users' cookies into requests. Exits non-zero if any client ever saw\nanother user's session.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clients < 1 || *requests < 1 || *capture < 0 || *capture > 1 {
		return usageError("chaos: -clients and -requests must be positive and -capture in [0,1]")
	}
	if *format != "text" && *format != "json" {
		return usageError("chaos: -format is text or json")
	}
	cfg := chaos.Config{Clients: *clients, Requests: *requests, Seed: *seed, CaptureRate: *capture, Work: *work}
	if *format == "text" {
		cfg.Progress = func(r chaos.Result) {
			fmt.Fprintf(env.Stderr, "\r%d requests, %d crossings, %d stale uses refused, %d injected cookies blocked   ",
				r.Requests, r.Crossings, r.StaleRefused, r.GuardBlocks)
		}
	}
	res, err := chaos.Run(ctx, memstore.New(memstore.Options{}), session.Options{}, cfg)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(env.Stderr)
		fmt.Fprintf(env.Stdout, "requests            %d in %s (%.0f/s)\n", res.Requests, res.Elapsed.Round(time.Millisecond), float64(res.Requests)/res.Elapsed.Seconds())
		fmt.Fprintf(env.Stdout, "crossings           %d\n", res.Crossings)
		fmt.Fprintf(env.Stdout, "stale uses refused  %d (not refused: %d)\n", res.StaleRefused, res.StaleActed)
		fmt.Fprintf(env.Stdout, "cookies injected    %d, guard blocks %d, responses failed closed %d\n", res.Injected, res.GuardBlocks, res.Blocked500)
		for _, shape := range chaos.Shapes {
			fmt.Fprintf(env.Stdout, "  as %-18s %d\n", shape, res.InjectedByShape[shape])
		}
		fmt.Fprintf(env.Stdout, "kept writers        %d writes refused (not refused: %d)\n", res.StaleWritesRefused, res.StaleWritesActed)
		fmt.Fprintf(env.Stdout, "cookies tossed      %d, refused as ambiguous %d\n", res.Tossed, res.Ambiguous)
		fmt.Fprintf(env.Stdout, "other errors        %d\n", res.Errors)
	}
	if res.Crossings > 0 {
		return fmt.Errorf("chaos: %d crossings; first: %s", res.Crossings, res.FirstCrossing)
	}
	if res.StaleActed > 0 {
		return fmt.Errorf("chaos: %d uses of sealed handles were not refused", res.StaleActed)
	}
	if res.StaleWritesActed > 0 {
		return fmt.Errorf("chaos: %d writes through kept response writers were not refused", res.StaleWritesActed)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("chaos: interrupted after %d requests", res.Requests)
	}
	return nil
}
