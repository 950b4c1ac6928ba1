package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// options are the command-line settings of a run.
type options struct {
	splicer     string
	suites      []suite // the test suites to run, in run order
	rounds      int
	duration    time.Duration
	idle        int
	splicerIdle int
	only        map[string]bool
	out         string
	run         *regexp.Regexp // nil runs every test of the suites
	json        string         // the results file, "" for none
	gobench     string         // go test -bench output to fold into it
	svg         string         // directory for the plots, "" for none
	// splicerAffinity is splicer's global.cpu_affinity, "" for none.
	splicerAffinity string
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "echo":
			os.Exit(subcommandExit(runEcho(os.Args[2:])))
		case "udpecho":
			os.Exit(subcommandExit(runUDPEcho(os.Args[2:])))
		case "iocopy":
			os.Exit(subcommandExit(runIOCopy(os.Args[2:])))
		case "sink":
			os.Exit(subcommandExit(runSink(os.Args[2:])))
		case "plot":
			os.Exit(subcommandExit(runPlot(os.Args[2:])))
		}
	}
	// SIGHUP and SIGPIPE (the terminal or the pipe reading the report went
	// away) would otherwise end the harness before it stops its children
	// and removes its temporary directory.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		// The first signal starts the cleanup; a second Ctrl-C ends the
		// harness at once (Pdeathsig then takes the children down). A
		// broken pipe stays ignored, so that the cleanup's own writes to
		// it fail instead of killing the harness.
		<-ctx.Done()
		signal.Ignore(syscall.SIGPIPE)
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// subcommandExit reports a hidden subcommand's error and returns its exit
// code.
func subcommandExit(err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, err)
	if errors.Is(err, flag.ErrHelp) {
		return exitUsage
	}
	return exitFail
}

// parseOptions parses and checks the command line.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("splicer-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.splicer, "splicer", "bin/splicer", "splicer `binary` to measure")
	tests := fs.String("tests", "all", "test `suites` to run: all, or a comma-separated list of tcp, udp, app, health")
	run := fs.String("run", "", "run only the tests whose name matches this `regexp`")
	fs.StringVar(&o.json, "json", "", "also write the results, every round's values, to this JSON `file`")
	fs.StringVar(&o.gobench, "gobench", "", "fold the Pick costs of this `go test -bench` output into the results file")
	fs.StringVar(&o.splicerAffinity, "splicer-cpu-affinity", "", "run splicer with this global.cpu_affinity (auto or a CPU `list`), to measure the pinning")
	fs.StringVar(&o.svg, "svg", "", "draw the plots from the results file into this `directory` (needs -json)")
	fs.IntVar(&o.rounds, "rounds", 3, "`rounds` of every test; the report shows medians")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each iperf3, connection-rate, request/response and UDP test")
	fs.IntVar(&o.idle, "idle", 8000, "idle connections held in the idle test")
	fs.IntVar(&o.splicerIdle, "splicer-idle", 9000, "idle connections for the extra splicer capacity check (0 skips it)")
	only := fs.String("only", "", "comma-separated `targets` to run, of "+strings.Join(targetNames(), ","))
	fs.StringVar(&o.out, "out", "", "also write the report, with machine details, to this markdown `file`")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.rounds < 1:
		return o, errors.New("-rounds must be at least 1")
	case o.duration < time.Second:
		return o, errors.New("-duration must be at least 1s (iperf3 counts whole seconds)")
	case o.idle < 1:
		return o, errors.New("-idle must be at least 1")
	case o.splicerIdle < 0:
		return o, errors.New("-splicer-idle must not be negative")
	}
	if o.svg != "" && o.json == "" {
		return o, errors.New("-svg draws from the results file: give -json too")
	}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			return o, fmt.Errorf("-run: %w", err)
		}
		o.run = re
	}
	var err error
	if o.suites, err = parseSuites(*tests); err != nil {
		return o, err
	}
	o.only = make(map[string]bool)
	for name := range strings.SplitSeq(*only, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !slices.Contains(targetNames(), name) {
			return o, fmt.Errorf("-only: unknown target %q (want %s)", name, strings.Join(targetNames(), ","))
		}
		o.only[name] = true
	}
	return o, nil
}

// parseSuites reads -tests: "all", or suite names separated by commas,
// returned in run order.
func parseSuites(spec string) ([]suite, error) {
	if spec == "all" {
		return allSuites(), nil
	}
	var names []string
	for _, s := range allSuites() {
		names = append(names, string(s))
	}
	want := map[suite]bool{}
	for name := range strings.SplitSeq(spec, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("-tests: unknown suite %q (want all, or some of %s)", name, strings.Join(names, ", "))
		}
		want[suite(name)] = true
	}
	var suites []suite
	for _, s := range allSuites() {
		if want[s] {
			suites = append(suites, s)
		}
	}
	return suites, nil
}

// run is the harness without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "splicer-bench: %v\n", err)
		return exitUsage
	}
	if err := bench(ctx, opts, args, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "splicer-bench: %v\n", err)
		return exitFail
	}
	return exitOK
}

// bench runs every test and writes the report.
func bench(ctx context.Context, opts options, args []string, stdout, stderr io.Writer) error {
	tcp := slices.Contains(opts.suites, suiteTCP)
	tl, err := findTools(opts.splicer, tcp)
	if err != nil {
		return err
	}
	fds, err := fdLimit()
	if err != nil {
		return err
	}
	targets, skipped := buildTargets(tl, opts.only, opts.suites, fds, opts.splicerAffinity)
	for _, name := range targetNames() {
		if why, ok := skipped[name]; ok {
			fmt.Fprintf(stderr, "skipping %s: %s\n", name, why)
		}
	}
	if len(targets) == 0 {
		return errors.New("no target left to measure")
	}
	res := newResults()
	res.skipped = skipped
	cols := make([]string, len(targets))
	var splicer *target
	var tcpOnly []string
	for i, t := range targets {
		cols[i] = t.name
		if tcp && t.maxIdle > 0 && t.maxIdle < opts.idle {
			res.notes = append(res.notes, t.capNote)
		}
		if t.name == targetSplicer {
			splicer = t
		}
		if !t.serves(suiteUDP) {
			tcpOnly = append(tcpOnly, t.name)
		}
	}
	if slices.Contains(opts.suites, suiteUDP) && len(tcpOnly) > 0 {
		res.notes = append(res.notes, strings.Join(tcpOnly, " and ")+" relay TCP only: their UDP rows are -")
	}
	r, err := newRunner(ctx, tl, opts, stderr)
	if err != nil {
		return err
	}
	defer r.close()
	tests := r.runnable(testsOf(opts.suites), res)
	if len(tests) == 0 {
		return errors.New("no test left to run")
	}
	fmt.Fprintf(stderr, "measuring %s: %d rounds of %d tests, %v each\n",
		strings.Join(cols, ", "), opts.rounds, len(tests), opts.duration)
	r.run(ctx, tests, targets, res)
	if _, failed := res.failed[startKey{targetSplicer, suiteTCP}]; tcp && splicer != nil && !failed && opts.splicerIdle > 0 && ctx.Err() == nil {
		res.capacity = r.capacity(ctx, splicer, opts.splicerIdle, fds)
		fmt.Fprintln(stderr, res.capacity)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted, no report: %w", err)
	}
	rows := rowsOfTests(tests)
	fmt.Fprintln(stdout)
	writeReport(stdout, cols, rows, res)
	if opts.out != "" {
		if err := writeOut(opts.out, tl, fds, args, cols, rows, res); err != nil {
			return err
		}
	}
	if opts.json == "" {
		return nil
	}
	if err := writeResultsFile(opts.json, opts.gobench, tl, args, cols, rows, res); err != nil {
		return err
	}
	if opts.svg == "" {
		return nil
	}
	return plotFile(opts.json, opts.svg)
}

// writeOut writes the report with the machine details to path.
func writeOut(path string, tl *tools, fds int, args, cols []string, rows []metric, res *results) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	writeHeader(f, tl, fds, args)
	writeReport(f, cols, rows, res)
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
