package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/forensics"
)

// runScan is `cordon scan`: it reads request logs and reports every session
// that went to the wrong person.
func runScan(ctx context.Context, env *Env, args []string) error {
	def := forensics.DefaultConfig()
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	format := fs.String("format", "text", "output on stdout: text or json")
	listRules := fs.Bool("rules", false, "list the rules with their ids, severities and known false positives, and exit")
	skew := fs.Duration("skew", def.Skew, "how far out of time order lines may be (hosts' lines interleave late)")
	handoff := fs.Int("handoff-window", def.HandoffWindow, "rule 2: how many requests (by seq) of one process to look across")
	netWindow := fs.Duration("net-window", def.NetWindow, "rule 5: window for use of one session from two networks")
	grace := fs.Duration("grace", def.Grace, "rule 7: how long a session may still authenticate after its revoke/logout/expire (propagation)")
	clockSkew := fs.Duration("clock-skew", def.ClockSkew, "rules 5 and 6: how far apart the hosts' clocks may be (orderings closer than this across hosts raise nothing)")
	ttl := fs.Duration("session-ttl", def.SessionTTL, "how long a session's state is kept after its last use")
	authPaths := fs.String("auth-paths", strings.Join(def.AuthPaths, ","), "rule 1: comma-separated path suffixes of login and signup endpoints")
	minSev := fs.String("min-severity", def.MinSeverity.String(), "list findings at or above this severity; those below are counted per rule with examples (low shows one device flapping between networks, info IPv4/IPv6 switches)")
	revokeSev := fs.String("revoke-severity", "high", "-sessions-out lists the sessions of incidents at or above this severity")
	failSev := fs.String("fail-severity", "high", "exit 1 when an incident is at or above this severity (0 otherwise; 2 for usage or input errors)")
	sessionsOut := fs.String("sessions-out", "", "write the fingerprints of the sessions to revoke to `FILE`, one per line")
	htmlOut := fs.String("html", "", "write a self-contained HTML report (incidents, people affected, the revoke command, timelines) to `FILE`")
	top := fs.Int("top", 20, "text output: how many incidents to show in full")
	maxBad := fs.Int("max-malformed", def.MaxMalformed, "how many malformed lines to report by file:line")
	workers := fs.Int("workers", 0, "parsing goroutines (0: one per CPU but one, left to the rules)")
	progress := fs.Bool("progress", true, "show a progress bar on stderr when it is a terminal")
	memLimit := fs.Int("mem-limit-mb", 460, "soft memory limit for the garbage collector in MiB (0: Go's default; GOMEMLIMIT wins when set)")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: cordon scan [flags] [FILE...]   (no FILE or - reads stdin; plain or gzip)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError("scan: %v", err)
	}
	if *listRules {
		return forensics.WriteRules(env.Stdout)
	}
	if *format != "text" && *format != "json" {
		return usageError("scan: -format must be text or json, not %q", *format)
	}
	cfg := def
	cfg.Skew, cfg.HandoffWindow, cfg.NetWindow, cfg.Grace, cfg.SessionTTL = *skew, *handoff, *netWindow, *grace, *ttl
	cfg.AuthPaths = strings.Split(*authPaths, ",")
	cfg.ClockSkew = *clockSkew
	cfg.MaxMalformed, cfg.Workers = *maxBad, *workers
	var err error
	if cfg.MinSeverity, err = forensics.ParseSeverity(*minSev); err != nil {
		return usageError("scan: -min-severity: %v", err)
	}
	rsev, err := forensics.ParseSeverity(*revokeSev)
	if err != nil {
		return usageError("scan: -revoke-severity: %v", err)
	}
	fsev, err := forensics.ParseSeverity(*failSev)
	if err != nil {
		return usageError("scan: -fail-severity: %v", err)
	}
	if *skew < 0 || *handoff < 1 || *netWindow <= 0 || *grace < 0 || *ttl <= 0 || *clockSkew < 0 {
		return usageError("scan: windows must be positive (-handoff-window at least 1)")
	}

	if *memLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// A batch scan keeps a window of lines and the sessions' state live;
		// letting the collector use the room up to the limit (rather than
		// doubling the live heap) keeps peak RSS near it.
		old := debug.SetMemoryLimit(int64(*memLimit) << 20)
		defer debug.SetMemoryLimit(old)
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	var srcs []forensics.Source
	var total int64
	for _, name := range files {
		if name == "-" {
			srcs = append(srcs, forensics.Source{Name: "stdin", R: env.Stdin})
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return scanInputError{fmt.Errorf("scan: %w", err)}
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			total += st.Size()
		}
		srcs = append(srcs, forensics.Source{Name: name, R: f})
	}
	var bar *scanProgress
	if *progress && scanIsTerminal(env.Stderr) {
		bar = newScanProgress(env.Stderr, total)
		cfg.Progress = bar.update
	}
	rep, err := forensics.Scan(ctx, cfg, srcs)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	for _, e := range rep.Stats.Errors {
		fmt.Fprintln(env.Stderr, "cordon scan: read error:", e)
	}
	rep.SessionsFile, rep.RevokeSeverity = *sessionsOut, rsev
	if *sessionsOut != "" {
		if err := scanWriteFile(*sessionsOut, func(w io.Writer) error { return rep.WriteSessions(w, rsev) }); err != nil {
			return fmt.Errorf("scan: -sessions-out: %w", err)
		}
	}
	if *htmlOut != "" {
		if err := scanWriteFile(*htmlOut, rep.WriteHTML); err != nil {
			return fmt.Errorf("scan: -html: %w", err)
		}
	}
	if *format == "json" {
		err = rep.WriteJSON(env.Stdout)
	} else {
		err = rep.WriteText(env.Stdout, *top)
	}
	if err != nil {
		return err
	}
	// Exit status, like a linter's: 2 when an input could not be read to
	// its end (the report covers what was read), 1 when there is an
	// incident at or above -fail-severity, else 0.
	if len(rep.Stats.Errors) > 0 {
		return scanInputError{fmt.Errorf("scan: %d input(s) could not be read to the end: %s", len(rep.Stats.Errors), rep.Stats.Errors[0])}
	}
	if n := rep.IncidentsAtOrAbove(fsev); n > 0 {
		return fmt.Errorf("scan: %d incident(s) at or above %s: %w", n, fsev, errIncidents)
	}
	return nil
}

// errIncidents marks the scan's "found incidents" result (exit status 1).
var errIncidents = errors.New("sessions went to the wrong person")

// scanInputError is an input that cannot be opened or read: exit status 2,
// like a usage error, but worded as itself.
type scanInputError struct{ err error }

func (e scanInputError) Error() string   { return e.err.Error() }
func (e scanInputError) Unwrap() []error { return []error{errUsage, e.err} }

func scanWriteFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// isTerminal reports whether w is a character device (a terminal).
func scanIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// scanProgress draws bytes read, lines per second and time left on one
// terminal line, at most a few times a second.
type scanProgress struct {
	w     io.Writer
	total int64
	start time.Time
	last  time.Time
}

func newScanProgress(w io.Writer, total int64) *scanProgress {
	now := time.Now()
	return &scanProgress{w: w, total: total, start: now, last: now}
}

func (p *scanProgress) update(read int64) {
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	rate := float64(read) / el
	s := fmt.Sprintf("\r%7.1f MB  %6.1f MB/s", float64(read)/1e6, rate/1e6)
	if p.total > 0 {
		frac := min(1, float64(read)/float64(p.total))
		const width = 30
		n := int(frac * width)
		left := "?"
		if rate > 0 {
			left = (time.Duration(float64(p.total-read)/rate) * time.Second).Round(time.Second).String()
		}
		s = fmt.Sprintf("\r[%s%s] %3.0f%% %s  left %s ", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, s[1:], left)
	}
	fmt.Fprint(p.w, s)
}

func (p *scanProgress) finish() { fmt.Fprint(p.w, "\r\033[K") }
