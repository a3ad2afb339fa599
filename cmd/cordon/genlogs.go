package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cordon-sec/cordon/forensics/synth"
)

// runGenLogs is `cordon gen-logs`: it writes a synthetic request log with
// injected incidents, and their ground truth.
func runGenLogs(ctx context.Context, env *Env, args []string) error {
	def := synth.DefaultConfig()
	fs := flag.NewFlagSet("gen-logs", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	n := fs.Int("n", def.Requests, "number of requests (lines) to write")
	seed := fs.Uint64("seed", def.Seed, "random seed: one seed, one log")
	incidents := fs.Int("incidents", def.Incidents, "incidents of each kind to inject (nine kinds; ten with -dbsc-share)")
	out := fs.String("o", "-", "write the log to `FILE` (- for stdout)")
	truthOut := fs.String("truth", "", "write the ground truth (JSON) to `FILE`")
	gz := fs.Bool("gzip", false, "gzip the log")
	start := fs.String("start", def.Start.Format(time.RFC3339), "simulated time of the first request (RFC 3339)")
	hosts := fs.Int("hosts", def.Hosts, "number of server hosts")
	workers := fs.Int("workers", def.Workers, "worker processes per host")
	rate := fs.Float64("rate", 0, "mean requests per simulated second (0: each device visits every ~20 minutes)")
	noASN := fs.Bool("no-asn", false, "leave out the asn field (a writer without an ASN lookup)")
	dbscShare := fs.Float64("dbsc-share", 0, "fraction (0 to 1) of sessions that are device-bound (DBSC), with refreshes, benign lapses and injected dbsc-copy incidents; 0 writes no DBSC lines")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: cordon gen-logs [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError("gen-logs: %v", err)
	}
	if fs.NArg() > 0 {
		return usageError("gen-logs: unexpected arguments %q", fs.Args())
	}
	st, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		return usageError("gen-logs: -start: %v", err)
	}
	if !(*dbscShare >= 0 && *dbscShare <= 1) {
		return usageError("gen-logs: -dbsc-share must be between 0 and 1")
	}
	if *n <= 0 || *incidents < 0 || *hosts <= 0 || *workers <= 0 || *rate < 0 {
		return usageError("gen-logs: -n, -hosts and -workers must be positive, -incidents and -rate not negative")
	}
	cfg := synth.Config{Requests: *n, Seed: *seed, Start: st.UTC(), Incidents: *incidents, Hosts: *hosts, Workers: *workers, Rate: *rate, NoASN: *noASN, DBSCShare: *dbscShare}

	var w io.Writer = env.Stdout
	var f *os.File
	if *out != "-" {
		if f, err = os.Create(*out); err != nil {
			return fmt.Errorf("gen-logs: %w", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	w = bw
	var zw *gzip.Writer
	if *gz {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	truth, err := synth.Generate(cfg, w)
	if err != nil {
		return fmt.Errorf("gen-logs: %w", err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("gen-logs: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gen-logs: %w", err)
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return fmt.Errorf("gen-logs: %w", err)
		}
	}
	if *truthOut != "" {
		b, err := json.MarshalIndent(truth, "", "  ")
		if err != nil {
			return fmt.Errorf("gen-logs: %w", err)
		}
		if err := os.WriteFile(*truthOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("gen-logs: %w", err)
		}
	}
	fmt.Fprintf(env.Stderr, "gen-logs: %d requests, %d sessions, %d incidents\n", truth.Requests, truth.Sessions, len(truth.Incidents))
	return nil
}
