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

	"github.com/splicerlb/splicer/pkg/admin"
)

// Exit codes, documented in docs/operations.md.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	// SIGHUP, SIGUSR1 and SIGUSR2 are caught first thing: by default they
	// end the process, and one sent while the daemon starts must not.
	control := make(chan os.Signal, 4)
	signal.Notify(control, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	stops := make(chan os.Signal, 2)
	signal.Notify(stops, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	go forwardStops(stops, cancel, control)
	code := runWith(ctx, os.Args[1:], os.Stdout, os.Stderr, control)
	cancel()
	os.Exit(code)
}

// forwardStops turns the first SIGINT or SIGTERM into cancel, a graceful
// stop; passes the second to the daemon on control, which then closes the
// connections left at once and exits 0 (so that `make run` does not
// report a failure when its own Ctrl-C and the one it forwards both
// arrive); and leaves the third to the default action, which ends the
// process whatever it is doing.
func forwardStops(stops chan os.Signal, cancel context.CancelFunc, control chan<- os.Signal) {
	<-stops
	cancel()
	sig := <-stops
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	select {
	case control <- sig:
	default:
	}
}

const usage = `splicer: a Layer-4 TCP/UDP load balancer

Usage:
  splicer run [-c FILE]    run the daemon (default config /etc/splicer/config.toml)
  splicer check -c FILE    validate a config, print its frontends and backends
                           and warn of what would go wrong
  splicer version          print version, commit and Go version
  splicer stats [-json]    print the running daemon's frontends and backends
  splicer top              a live view of them; keys drain, ready, maint
  splicer conns [-frontend F] [-limit N] [-json]
                           list the live connections
  splicer conns kill ID... close connections (both peers get a reset)
  splicer backend drain|ready|maint FRONTEND BACKEND
  splicer backend weight FRONTEND BACKEND N
                           change a backend of the running daemon
  splicer reload           reload the running daemon's config (or: kill -HUP)
  splicer upgrade          replace the running daemon by the binary now
                           installed, without dropping a connection
                           (or: kill -USR2)
  splicer user add|rotate|remove|list [-file USERS | -c FILE] ...
                           manage the admin users file (add prints a token)
  splicer audit verify [-c FILE | -key-file PATH] [FILE...]
                           check the audit log's chain
  splicer audit checkpoint print the audit log's last seq and hash

The commands that call the daemon take -admin ADDR (default $SPLICER_ADMIN,
else 127.0.0.1:9090), -token-file FILE (default $SPLICER_TOKEN_FILE) and
-cacert FILE, anywhere on the command line.

Exit codes: 0 success; 1 invalid config, daemon failure, or a request the
daemon refused or that could not reach it; 2 a wrong command line.

Run 'splicer COMMAND -h' for a command's flags.
`

// run dispatches a subcommand and returns the process exit code. It is main
// without the process: tests call it with their own context and writers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, nil)
}

// runWith is run with the reload and upgrade signals delivered on signals.
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, signals <-chan os.Signal) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr, signals)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "version":
		return cmdVersion(args[1:], stdout, stderr)
	case "stats":
		return cmdAdmin(ctx, "stats", admin.RunStats, args[1:], stdout, stderr)
	case "top":
		top := func(ctx context.Context, args []string, stdout io.Writer) error {
			return admin.RunTop(ctx, args, os.Stdin, stdout)
		}
		return cmdAdmin(ctx, "top", top, args[1:], stdout, stderr)
	case "conns":
		return cmdAdmin(ctx, "conns", admin.RunConns, args[1:], stdout, stderr)
	case "backend":
		return cmdAdmin(ctx, "backend", admin.RunBackend, args[1:], stdout, stderr)
	case "reload":
		return cmdAdmin(ctx, "reload", admin.RunReload, args[1:], stdout, stderr)
	case "upgrade":
		return cmdAdmin(ctx, "upgrade", admin.RunUpgrade, args[1:], stdout, stderr)
	case "user":
		return cmdAdmin(ctx, "user", admin.RunUser, args[1:], stdout, stderr)
	case "audit":
		return cmdAdmin(ctx, "audit", admin.RunAudit, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "splicer: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// parseFlags parses a subcommand's flags; it returns the exit code to use
// when the caller must stop (help asked, or a usage error).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (stopCode int, stop bool) {
	fs.SetOutput(stderr)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	case err != nil:
		return exitUsage, true
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "splicer %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, true
	}
	return 0, false
}
