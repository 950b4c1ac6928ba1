package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// errFailed marks a check that ran and found the code below the bar, as
// opposed to one that could not run.
var errFailed = errors.New("check failed")

// subcommands maps each subcommand to the function that runs it with its
// arguments, writing what it finds to stdout.
var subcommands = map[string]func(ctx context.Context, args []string, stdout io.Writer) error{
	"coverage":    runCoverage,
	"docs":        runDocs,
	"vulndb":      runVulnDB,
	"report":      runReport,
	"bench-check": runBenchCheck,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args to a subcommand and maps its error to an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || subcommands[args[0]] == nil {
		fmt.Fprintln(stderr, "usage: splicer-audit coverage|docs|vulndb|report|bench-check [flags]")
		return exitUsage
	}
	err := subcommands[args[0]](ctx, args[1:], stdout)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "splicer-audit %s: %v\n", args[0], err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "splicer-audit %s: %v\n", args[0], err)
		return exitFail
	}
}

// usageError is a wrong command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// newFlags returns a flag set for a subcommand that reports errors instead
// of exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("splicer-audit "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parseFlags parses args, turning a flag error into a usageError and
// refusing positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// parseFlagsArgs parses args, leaving positional arguments in fs.Args(),
// and turns a flag error into a usageError.
func parseFlagsArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
