package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/daemon"
	"github.com/splicerlb/splicer/pkg/demo"
	"github.com/splicerlb/splicer/pkg/logging"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, signals <-chan os.Signal) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	file := fs.String("c", "/etc/splicer/config.toml", "config `file`")
	level := fs.String("log-level", "", "log `level` (debug|info|warn|error); overrides [log] level, also at reloads")
	format := fs.String("log-format", "", "log `format` (json|console); overrides [log] format, also at reloads")
	withDemo := fs.Bool("demo", false, "also start a demo echo backend on every loopback backend address (for trying splicer out)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: splicer run -c FILE [flags]\n\n"+
			"Runs the daemon until SIGINT or SIGTERM, then shuts down gracefully.\n"+
			"SIGHUP reloads the config; SIGUSR1 reopens the connection log file (log rotation);\n"+
			"SIGUSR2 upgrades to the binary now at this one's path.\n")
		fs.PrintDefaults()
	}
	if code, stop := parseFlags(fs, args, stdout, stderr); stop {
		return code
	}
	// The new process of an upgrade first takes the sockets the old one
	// hands over; any failure from here on goes back to it too.
	handover, err := daemon.HandoverFromEnv()
	if err != nil {
		fmt.Fprintf(stderr, "splicer run: %v\n", err)
		return exitFail
	}
	load := func() (*config.Config, error) {
		cfg, err := config.LoadIn(*file, daemon.HostEnvironment())
		if err != nil {
			return nil, err
		}
		if *level != "" {
			cfg.Log.Level = *level
		}
		if *format != "" {
			cfg.Log.Format = *format
		}
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		reportConfigError(stderr, err, *format, *file)
		handover.Fail(err)
		return exitFail
	}
	out, err := logging.NewOutput(logging.Options{Level: cfg.Log.Level, Format: cfg.Log.Format, Out: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "splicer run: %v\n", err)
		handover.Fail(err)
		return exitUsage
	}
	log := out.Logger()
	if *withDemo {
		addrs := demoAddrs(cfg)
		stopDemo, err := demo.StartAll(ctx, addrs)
		if err != nil {
			log.Error().Err(err).Msg("demo backends failed to start")
			handover.Fail(err)
			return exitFail
		}
		defer stopDemo()
		log.Info().Int("count", len(addrs)).Msg("demo backends started")
	}
	d, err := daemon.New(cfg, log, daemon.Options{
		Version: version, Revision: commit, Load: load, LogOutput: out, Signals: signals,
		Notifier: daemon.NotifierFromEnv(), Args: os.Args, Handover: handover,
	})
	if err != nil {
		log.Error().Err(err).Msg("startup failed")
		handover.Fail(err)
		return exitFail
	}
	if err := d.Run(ctx); err != nil {
		log.Error().Err(err).Msg("daemon stopped with an error")
		return exitFail
	}
	return exitOK
}

// demoAddrs lists the distinct loopback TCP backend addresses of cfg: the
// only ones a demo backend may be started on.
func demoAddrs(cfg *config.Config) []netip.AddrPort {
	seen := make(map[netip.AddrPort]bool)
	var out []netip.AddrPort
	for _, fe := range cfg.Frontends {
		if fe.Protocol != config.ProtocolTCP {
			continue
		}
		for _, b := range fe.Backends {
			if b.Address.Addr().IsLoopback() && !seen[b.Address] {
				seen[b.Address] = true
				out = append(out, b.Address)
			}
		}
	}
	return out
}

// reportConfigError prints why the config did not load, in the log format
// the operator asked for (-log-format, else the file's [log] format if it
// can be read that far, else the default json): one JSON line per problem
// with its file, line and field apart, or for console the problems as
// "FILE:LINE: FIELD: MESSAGE" lines, as splicer check prints them.
func reportConfigError(stderr io.Writer, err error, format, file string) {
	if format == "" {
		format = config.PeekLogFormat(file)
	}
	if format == logging.FormatConsole {
		fmt.Fprintln(stderr, err)
		return
	}
	log, lerr := logging.New(logging.Options{Format: logging.FormatJSON, Out: stderr})
	if lerr != nil {
		fmt.Fprintln(stderr, err)
		return
	}
	daemon.LogProblems(log, zerolog.ErrorLevel, err, "configuration problem: not started")
}
