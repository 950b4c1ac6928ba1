// Command splicer is a Layer-4 TCP/UDP load balancer daemon.
//
// Usage:
//
//	splicer run     -c FILE [-log-level L] [-log-format F] [-demo]
//	splicer check   -c FILE
//	splicer version
//	splicer stats   [-admin ADDR] [-token-file FILE]
//	splicer backend [-admin ADDR] [-token-file FILE] drain|ready|maint|weight FRONTEND BACKEND [N]
//	splicer reload  [-admin ADDR] [-token-file FILE]
//	splicer upgrade [-admin ADDR] [-token-file FILE]
//	splicer user    add|rotate|remove|list [-file USERS | -c FILE] ...
//	splicer audit   verify|checkpoint ...
//
// Exit codes: 0 success; 1 the configuration is invalid or the daemon failed;
// 2 the command line is wrong.
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful shutdown, restore the
		// default handling so a second Ctrl-C ends the process at once.
		<-ctx.Done()
		stop()
	}()
	code := runWith(ctx, os.Args[1:], os.Stdout, os.Stderr, control)
	stop()
	os.Exit(code)
}

const usage = `splicer: a Layer-4 TCP/UDP load balancer

Usage:
  splicer run -c FILE      run the daemon
  splicer check -c FILE    validate a config and print its frontends and backends
  splicer version          print version, commit and Go version
  splicer stats [-admin ADDR] [-token-file FILE]
                           print the running daemon's frontends and backends
  splicer backend [-admin ADDR] [-token-file FILE] drain|ready|maint FRONTEND BACKEND
  splicer backend [-admin ADDR] [-token-file FILE] weight FRONTEND BACKEND N
                           change a backend of the running daemon
  splicer reload [-admin ADDR] [-token-file FILE]
                           reload the running daemon's config (or: kill -HUP)
  splicer upgrade [-admin ADDR] [-token-file FILE]
                           replace the running daemon by the binary now
                           installed, without dropping a connection
                           (or: kill -USR2)
  splicer user add|rotate|remove|list [-file USERS | -c FILE] ...
                           manage the admin users file (add prints a token)
  splicer audit verify [-c FILE | -key-file PATH] [FILE...]
                           check the audit log's chain
  splicer audit checkpoint print the audit log's last seq and hash

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
