// Command cordon is cordon's one binary: the reference app (demo), the
// incident lab, the log scanner, revocation, the guard proxy and friends, each
// a subcommand in a file of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Env is what a subcommand may touch of the outside world. Tests fill it
// with buffers and pipes.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Ready, if set, is called by long-running servers with their listening
	// URL once they accept connections (tests use it to find port 0).
	Ready func(url string)
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// commands lists the subcommands. Each lives in a file named after it.
func commands() []command {
	cmds := []command{
		// one line per subcommand, kept sorted by name
		{"chaos", "drive a cordon app with hostile code and prove no session crosses", runChaos},
		{"demo", "serve the reference app (sign-up, log-in, sessions, admin revocation)", runDemo},
		{"gen-logs", "write synthetic request logs with injected incidents and their truth", runGenLogs},
		{"lab", "the 2021 session mix-up, modelled: replay, matrix, serve, attack", runLab},
		{"migrate", "create a session store, or bring its schema up to date", runMigrate},
		{"proxy", "guard proxy in front of an app in any language", runProxy},
		{"revoke", "revoke sessions by fingerprint, user or everyone (dry run unless -apply)", runRevoke},
		{"scan", "find the sessions that went to the wrong person in request logs", runScan},
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	return cmds
}

// errUsage marks an error caused by the command line; main exits 2 for it.
var errUsage = errors.New("usage")

// usageError wraps a message about bad arguments so that main exits with 2.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// Run runs the subcommand named by args[0].
func Run(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		printUsage(env.Stderr)
		if len(args) == 0 {
			return usageError("no subcommand given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, env, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	printUsage(env.Stderr)
	return usageError("unknown subcommand %q", args[0])
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: cordon <subcommand> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cordon <subcommand> -h' for a subcommand's flags.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	err := Run(ctx, env, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cordon:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
