// Package daemon wires a validated config into running components and owns
// their life: start, wait for the stop signal, graceful shutdown bounded by
// global.shutdown_timeout.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/logging"
)

// Daemon is one running splicer instance.
type Daemon struct {
	cfg    *config.Config
	log    zerolog.Logger
	opts   Options
	srv    *l4.Server
	checks *checks
	found  *discoveries
	// adminLn is the admin port's listener, bound by Run before anything
	// else so that a taken port fails the start.
	adminLn net.Listener
}

// Options are what the daemon needs beyond the config.
type Options struct {
	// Version is reported by the admin API and metrics.
	Version string
}

// New builds the components for cfg without binding anything yet.
func New(cfg *config.Config, log zerolog.Logger, opts Options) (*Daemon, error) {
	srv, err := l4.NewServer(cfg, logging.Component(log, "l4"))
	if err != nil {
		return nil, err
	}
	hc, err := newChecks(cfg, srv, logging.Component(log, "health"))
	if err != nil {
		srv.Close()
		return nil, err
	}
	found, err := newDiscoveries(cfg, srv, hc.byFrontend, logging.Component(log, "discovery"))
	if err != nil {
		srv.Close()
		return nil, err
	}
	if n, raised := spareProc(cfg.Global.Workers); raised {
		log.Info().Int("gomaxprocs", n).Msg("GOMAXPROCS raised to keep one P spare beside the event loops")
	}
	return &Daemon{cfg: cfg, log: log, opts: opts, srv: srv, checks: hc, found: found}, nil
}

// spareProc makes GOMAXPROCS at least workers+1 unless the operator set
// GOMAXPROCS in the environment. Each event loop spends its idle moments in
// a blocking epoll_wait, which the Go scheduler sees as a syscall holding a
// P. With no P idle, sysmon wakes every 20 µs to take such Ps back and hand
// them off, and the loop must find a P again when epoll_wait returns: on a
// request/response load that measured 15-30% more CPU per request. One
// spare P lets sysmon back off to its long sleep.
func spareProc(workers int) (int, bool) {
	cur := runtime.GOMAXPROCS(0)
	if _, set := os.LookupEnv("GOMAXPROCS"); set || cur > workers {
		return cur, false
	}
	runtime.GOMAXPROCS(workers + 1)
	return workers + 1, true
}

// Run starts serving and blocks until ctx ends, then shuts down gracefully:
// listeners close at once and open connections get up to
// global.shutdown_timeout to finish before they are closed. Connections cut
// at the deadline are logged, not treated as a failure of Run.
func (d *Daemon) Run(ctx context.Context) error {
	stopAdmin, err := d.startAdmin()
	if err != nil {
		return err
	}
	defer stopAdmin()
	// Discovered backends first, so the first clients find them.
	d.found.start()
	defer d.found.stop()
	if err := d.srv.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	d.checks.start()
	defer d.checks.stop()
	d.log.Info().Str("config", d.cfg.File).Int("workers", d.cfg.Global.Workers).
		Int("frontends", len(d.cfg.Frontends)).Msg("splicer started")
	<-ctx.Done()

	timeout := d.cfg.Global.ShutdownTimeout
	d.log.Info().Int64("connections", d.srv.ActiveConnections()).Dur("timeout", timeout).
		Msg("shutting down: stopped accepting, waiting for connections")
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch err := d.srv.Shutdown(sctx); {
	case errors.Is(err, context.DeadlineExceeded):
		d.log.Warn().Err(err).Msg("shutdown timeout reached; remaining connections closed")
	case err != nil:
		return fmt.Errorf("shutdown: %w", err)
	}
	d.log.Info().Msg("splicer stopped")
	return nil
}
