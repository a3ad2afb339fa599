package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/lab"
	"github.com/cordon-sec/cordon/reqlog"
)

const labUsage = `usage: cordon lab <command> [flags]

  replay [-mitigations LIST] [-aftermath] [-svg FILE] [-format text|trace|json]
        run the eight steps of the 2021 incident under the deterministic
        scheduler and tell them in plain words, each with what the code did,
        marking where bob's response gets alice's session (trace: every
        event as it executes); -aftermath (always on with dbsc) adds steps
        9 to 11: the clock moves on by the bound cookie's TTL, bob's browser
        uses what it received, and alice's goes on
  matrix [-runs N] [-requests N] [-users N] [-seed N] [-format text|json]
        run the replay and a seeded randomized stress for every combination
        of mitigations and for dbsc, grouped by the link of the chain each
        breaks, with what the delivered session is worth after the TTL
  serve [-vulnerable] [-addr HOST:PORT] [-workers N] [-latency D] [-refresh D] [-fail-rate P] [-log FILE]
        serve the hardened (default) or vulnerable composition on loopback,
        and the story as a sequence diagram at /lab
  attack -url URL [-users N] [-requests N] [-concurrency N] [-duration D] [-seed N] [-format text|json]
        drive many users against a lab server and report the crossings

Mitigations: ` + "fresh-env, value-context, isolated-background, sealed-handles, egress-guard, dbsc" + `
(LIST is comma-separated, or "none" or "all"; "all" is the five that break
the chain, "all,dbsc" adds device-bound sessions).
`

// runLab is the lab subcommand: the 2021 session mix-up, modelled.
func runLab(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, labUsage)
		return usageError("lab: no command given")
	}
	switch args[0] {
	case "replay":
		return labReplay(ctx, env, args[1:])
	case "matrix":
		return labMatrix(ctx, env, args[1:])
	case "serve":
		return labServe(ctx, env, args[1:])
	case "attack":
		return labAttack(ctx, env, args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.Stderr, labUsage)
		return nil
	}
	fmt.Fprint(env.Stderr, labUsage)
	return usageError("lab: unknown command %q", args[0])
}

func labFlags(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("cordon lab "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parseFlags parses args and rejects stray arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usageError("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

func checkFormat(fs *flag.FlagSet, format string) error {
	if format != "text" && format != "json" {
		return usageError("%s: -format must be text or json, not %q", fs.Name(), format)
	}
	return nil
}

func labReplay(ctx context.Context, env *Env, args []string) error {
	fs := labFlags(env, "replay")
	mit := fs.String("mitigations", "none", "mitigations to switch on (comma-separated, none or all)")
	after := fs.Bool("aftermath", false, "also replay steps 9 to 11: what bob's browser can do with what it received once the bound cookie's TTL has passed (always on with dbsc)")
	svg := fs.String("svg", "", "also write the executed trace as an SVG sequence diagram to `FILE`")
	format := fs.String("format", "text", "text (the eight steps told in plain words, with what the code did at each), trace (every event as it executes) or json (story, trace and outcome)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "trace" {
		if err := checkFormat(fs, *format); err != nil {
			return usageError("replay: -format must be text, trace or json, not %q", *format)
		}
	}
	m, err := lab.ParseMitigations(*mit)
	if err != nil {
		return usageError("%v", err)
	}
	var out io.Writer
	if *format == "trace" {
		out = env.Stdout
	}
	res, err := lab.Replay(ctx, lab.ReplayOptions{Mitigations: m, Out: out, Aftermath: *after})
	if err != nil {
		return err
	}
	if *format == "text" {
		if err := lab.WriteStory(env.Stdout, res); err != nil {
			return err
		}
	}
	if *format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Mitigations []string        `json:"mitigations"`
			Leaked      bool            `json:"leaked"`
			Blocked     int64           `json:"blocked"`
			Responses   []lab.Observed  `json:"responses"`
			Reports     []lab.Report    `json:"reports"`
			Events      []lab.Event     `json:"events"`
			Story       []lab.StoryStep `json:"story"`
			Break       lab.Break       `json:"break"`
			Aftermath   *lab.Aftermath  `json:"aftermath,omitempty"`
		}{m.Names(), res.Leaked, res.Blocked, res.Responses, res.Reports, res.Events, lab.Story(res), lab.ChainBreak(res), res.Aftermath}); err != nil {
			return err
		}
	}
	if *svg != "" {
		f, err := os.Create(*svg)
		if err != nil {
			return fmt.Errorf("lab replay: %w", err)
		}
		title := "cordon lab replay — mitigations: " + m.String()
		if err := lab.WriteStorySVG(f, title, res, nil); err != nil {
			f.Close()
			return fmt.Errorf("lab replay: svg: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("lab replay: svg: %w", err)
		}
		fmt.Fprintf(env.Stderr, "wrote the sequence diagram to %s\n", *svg)
	}
	return nil
}

func labMatrix(ctx context.Context, env *Env, args []string) error {
	fs := labFlags(env, "matrix")
	runs := fs.Int("runs", 40, "stress runs per combination")
	requests := fs.Int("requests", 12, "requests per stress run")
	users := fs.Int("users", 4, "signed-in users in the stress")
	seed := fs.Uint64("seed", 1, "seed of the stress's interleavings")
	mit := fs.String("mitigations", "", "run only this combination (default: all 32, then dbsc alone)")
	format := fs.String("format", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkFormat(fs, *format); err != nil {
		return err
	}
	if *runs < 1 || *runs > 100000 || *requests < 1 || *requests > 10000 || *users < 1 || *users > 1000 {
		return usageError("lab matrix: -runs must be 1..100000, -requests 1..10000, -users 1..1000")
	}
	if *seed == 0 {
		return usageError("lab matrix: -seed must not be 0")
	}
	o := lab.MatrixOptions{StressOptions: lab.StressOptions{Runs: *runs, Requests: *requests, Users: *users, Seed: *seed}}
	if *mit != "" {
		m, err := lab.ParseMitigations(*mit)
		if err != nil {
			return usageError("%v", err)
		}
		o.Combinations = []lab.Mitigations{m}
	}
	mx, err := lab.RunMatrix(ctx, o)
	if err != nil {
		return err
	}
	if *format == "json" {
		return mx.WriteJSON(env.Stdout)
	}
	fmt.Fprintf(env.Stdout, "replay: the eight steps; stress: %d runs × %d requests, %d users, seed %d\n\n", *runs, *requests, *users, *seed)
	return mx.WriteText(env.Stdout)
}

func labServe(ctx context.Context, env *Env, args []string) error {
	fs := labFlags(env, "serve")
	vulnerable := fs.Bool("vulnerable", false, "serve the vulnerable composition (default: the hardened one)")
	addr := fs.String("addr", "127.0.0.1:8080", "loopback `host:port` to listen on")
	workers := fs.Int("workers", 1, "Unicorn-like workers")
	latency := fs.Duration("latency", time.Millisecond, "time authentication and rendering take")
	refresh := fs.Duration("refresh", 2*time.Millisecond, "background refresher interval")
	failRate := fs.Float64("fail-rate", 0.5, "probability that a background refresh fails")
	logPath := fs.String("log", "", "append the request log (cordon's log schema) to `FILE`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *workers < 1 || *workers > 64 {
		return usageError("lab serve: -workers must be 1..64")
	}
	if *latency < 0 || *latency > 10*time.Second || *refresh <= 0 || *refresh > time.Minute {
		return usageError("lab serve: -latency must be 0..10s and -refresh in (0, 1m]")
	}
	if *failRate < 0 || *failRate > 1 {
		return usageError("lab serve: -fail-rate must be in [0, 1]")
	}
	if err := lab.CheckLoopback(*addr); err != nil {
		return usageError("%v", err)
	}
	m := lab.AllMitigations()
	kind := "hardened"
	if *vulnerable {
		m, kind = lab.Mitigations{}, "VULNERABLE"
	}
	fr := *failRate
	if fr == 0 {
		fr = -1 // Options treats 0 as "default"
	}
	var log *reqlog.Writer
	if *logPath != "" {
		w, err := reqlog.Open(*logPath, reqlog.WriterOptions{})
		if err != nil {
			return fmt.Errorf("lab serve: %w", err)
		}
		defer w.Close()
		log = w
	}
	return lab.Serve(ctx, lab.ServeOptions{
		Addr: *addr, Mitigations: m, Workers: *workers, Latency: *latency, RefreshEvery: *refresh, FailRate: fr, Log: log,
		Ready: func(u string) {
			fmt.Fprintf(env.Stdout, "cordon lab: serving the %s composition (mitigations: %s) on %s\n", kind, m, u)
			fmt.Fprintf(env.Stdout, "  GET /page, GET /account, POST /login (user=NAME password=%s)\n", lab.Password)
			fmt.Fprintf(env.Stdout, "  the story of the incident, as a sequence diagram: %s/lab\n", u)
			if env.Ready != nil {
				env.Ready(u)
			}
		},
	})
}

func labAttack(ctx context.Context, env *Env, args []string) error {
	fs := labFlags(env, "attack")
	u := fs.String("url", "", "base `URL` of a lab server (required)")
	users := fs.Int("users", 8, "users that log in")
	requests := fs.Int("requests", 2000, "requests to send after the logins")
	conc := fs.Int("concurrency", 8, "clients in parallel")
	dur := fs.Duration("duration", 30*time.Second, "give up after this long")
	seed := fs.Uint64("seed", 1, "seed of the clients' choices")
	format := fs.String("format", "text", "text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkFormat(fs, *format); err != nil {
		return err
	}
	if *u == "" {
		return usageError("lab attack: -url is required")
	}
	if *users < 1 || *users > 1000 || *requests < 1 || *requests > 1000000 || *conc < 1 || *conc > 256 || *dur <= 0 || *dur > time.Hour {
		return usageError("lab attack: -users 1..1000, -requests 1..1000000, -concurrency 1..256, -duration (0, 1h]")
	}
	if *seed == 0 {
		return usageError("lab attack: -seed must not be 0")
	}
	res, err := lab.Attack(ctx, lab.AttackOptions{URL: *u, Users: *users, Requests: *requests, Concurrency: *conc, Duration: *dur, Seed: *seed})
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(env.Stdout, "requests %d, crossings %d, failed closed (5xx) %d, errors %d, in %s\n", res.Requests, res.Crossings, res.Blocked, res.Errors, res.Elapsed)
	for _, c := range res.Examples {
		fmt.Fprintf(env.Stdout, "  crossing: request #%d %s as %s, body user %q, Set-Cookie session %s of %s\n",
			c.Request, c.Path, orAnonymous(c.As), c.BodyUser, c.CookieFP[:8], c.CookieUser)
	}
	if res.Crossings > 0 {
		fmt.Fprintln(env.Stdout, "crossings seen: clients received other users' sessions")
	} else {
		fmt.Fprintln(env.Stdout, "no crossings seen")
	}
	return nil
}

func orAnonymous(s string) string {
	if s == "" {
		return "anonymous"
	}
	return strings.TrimSpace(s)
}
