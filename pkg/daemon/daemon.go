package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/history"
	"github.com/splicerlb/splicer/pkg/logging"
	"github.com/splicerlb/splicer/pkg/metrics"
)

// Daemon is one running splicer instance.
type Daemon struct {
	log     zerolog.Logger
	opts    Options
	cfg     atomic.Pointer[config.Config] // the config in force; a reload swaps it
	srv     *l4.Server
	checks  *checks
	reg     *prometheus.Registry // the process, Go and reload metrics
	reloads *reloadMetrics
	// collector is splicer's own series, served beside reg's.
	collector *metrics.Collector
	state     *stateFile
	history   *history.Recorder // the last minutes, sampled by Run
	locks     *locks            // set by Run
	started   time.Time
	// connFile is the connection log's file; nil when the connection
	// log goes to the daemon's log. Changed under ctl.
	connFile *logging.File

	// ctl lets one reload, upgrade or backend change run at a time.
	ctl sync.Mutex

	adminMu sync.Mutex
	admin   *adminPort // nil while the admin port is off
	// adminLn is the admin port's TCP listener (nil when it has none),
	// bound by Run before the data plane so that a taken port fails the
	// start.
	adminLn net.Listener
	// adminSock is the admin socket's listener (nil when it has none).
	adminSock net.Listener
	// security is the admin port's access control and audit log; nil
	// when the admin port is disabled.
	security *admin.Security
	// found runs the frontends' discovery sources (Redis Sentinel, DNS).
	found *discoveries
	// background holds goroutines Run waits for: an admin port retired
	// at an upgrade finishing its requests.
	background sync.WaitGroup

	handedOver chan struct{} // closed when an upgrade handed over
	handOnce   sync.Once
	successor  atomic.Int64 // the pid that took over
	// serving is set once Run serves and cleared when it begins to stop:
	// reloads, upgrades and backend changes need a serving daemon.
	serving atomic.Bool
}

// Options are what the daemon needs beyond the config. The zero value runs
// a daemon that reloads from Config.File and cannot upgrade.
type Options struct {
	// Version and Revision (the source revision built) are reported by
	// the admin API and metrics.
	Version  string
	Revision string
	// Load reads the configuration again for a reload; nil reads
	// Config.File. Command-line overrides belong in it, so that they
	// survive reloads.
	Load func() (*config.Config, error)
	// LogOutput is the output the daemon's logger writes through, if
	// any: a reload applies [log] level and format to it.
	LogOutput *logging.Output
	// Signals delivers SIGHUP (reload), SIGUSR1 (reopen the log files)
	// and SIGUSR2 (upgrade) and, once Run is shutting down, a further
	// SIGINT or SIGTERM, which closes the connections left at once
	// instead of waiting for them.
	Signals <-chan os.Signal
	// Notifier talks to the service manager; nil sends nothing.
	Notifier *Notifier
	// Args is the command line the new process of an upgrade starts with,
	// the binary being the one at this process's executable path; nil
	// makes Upgrade refuse.
	Args []string
	// Handover, when this process is the new one of an upgrade, holds
	// the sockets the old one handed over.
	Handover *Handover
}

// New builds the components for cfg without binding anything yet. It
// reads every secret the config names (failing when one cannot be read)
// and opens the audit log.
func New(cfg *config.Config, log zerolog.Logger, opts Options) (*Daemon, error) {
	logProblemList(log, zerolog.WarnLevel, cfg.Warnings, "config warning")
	sec, err := newSecurity(cfg, logging.Component(log, "admin"))
	if err != nil {
		return nil, err
	}
	// Frontends fed by discovery get their first backends before the
	// data plane is built on them.
	found, cfg, err := startDiscoveries(cfg, logging.Component(log, "discovery"))
	if err != nil {
		closeSecurity(sec)
		return nil, err
	}
	srv, err := l4.NewServer(cfg, logging.Component(log, "l4"))
	if err != nil {
		found.stop()
		closeSecurity(sec)
		return nil, err
	}
	connFile, err := openConnLog(cfg)
	if err != nil {
		srv.Close()
		found.stop()
		closeSecurity(sec)
		return nil, err
	}
	hc, err := newChecks(cfg, srv, logging.Component(log, "health"))
	if err != nil {
		if connFile != nil {
			connFile.Close()
		}
		srv.Close()
		found.stop()
		closeSecurity(sec)
		return nil, err
	}
	if n, raised := spareProc(cfg.Global.Workers); raised {
		log.Info().Int("gomaxprocs", n).Msg("GOMAXPROCS raised to keep one P spare beside the event loops")
	}
	d := &Daemon{
		log: log, opts: opts, srv: srv, checks: hc, security: sec, found: found,
		reg:        prometheus.NewRegistry(),
		state:      &stateFile{log: log, path: cfg.Global.StateFile},
		history:    newHistory(),
		handedOver: make(chan struct{}),
		connFile:   connFile,
	}
	srv.SetLogFormat(cfg.Log.Format)
	srv.SetLogOutput(d.connLogOutput(connFile))
	d.cfg.Store(cfg)
	d.reloads = newReloadMetrics(d.reg)
	src := &source{d: d}
	d.collector = metrics.NewCollector(src.Stats)
	// The process and Go runtime figures every exporter has (open fds,
	// memory, CPU, start time, goroutines, GC), beside splicer's own,
	// which the scrape writes straight from a snapshot (metricsHandler).
	d.reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		newDNSCollector(found),
	)
	return d, nil
}

// metricsHandler serves a scrape: splicer's series, then reg's.
func (d *Daemon) metricsHandler(log zerolog.Logger) http.Handler {
	return metrics.Handler(d.collector, d.reg, log)
}

// config is the configuration in force.
func (d *Daemon) config() *config.Config { return d.cfg.Load() }

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

// Run starts serving and blocks until ctx ends or an upgrade hands over,
// then shuts down gracefully: listeners close at once (after an upgrade the
// new process has them already) and open connections get up to
// global.shutdown_timeout to finish before they are closed. Connections
// cut at the deadline are logged, not treated as a failure of Run. Meanwhile
// it reloads on SIGHUP, reopens the connection log on SIGUSR1 and upgrades
// on SIGUSR2.
//
// Everything that can fail happens before the first client is accepted:
// the listener locks, the admin port, the state file, the binds. When this
// process is the new one of an upgrade, a failure there is reported to the
// old one, which serves on.
func (d *Daemon) Run(ctx context.Context) (err error) {
	h := d.opts.Handover
	defer func() {
		if err != nil {
			h.Fail(err)
			// A start that failed leaves nothing open, the connection
			// log's file included (after a shutdown this is a no-op).
			_ = d.srv.Close()
		}
	}()
	defer closeSecurity(d.security)
	defer d.found.stop()
	d.started = time.Now()
	cfg := d.config()
	if err := d.startLocks(cfg, h); err != nil {
		return err
	}
	defer d.locks.releaseAll()
	if err := d.startAdmin(cfg, h); err != nil {
		return err
	}
	defer d.stopAdmin()
	loadState(cfg.Global.StateFile, cfg, d.srv, d.log)
	if h != nil {
		socks := h.sockets
		h.sockets = nil
		if err := d.srv.Inherit(socks); err != nil {
			return err
		}
		d.srv.ReserveIDs(h.nextID)
	}
	if err := d.srv.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	d.checks.start()
	defer d.checks.stop()
	hctx, stopHistory := context.WithCancel(context.Background())
	historyDone := make(chan struct{})
	go func() {
		defer close(historyDone)
		d.recordHistory(hctx)
	}()
	defer func() { stopHistory(); <-historyDone }() // after shutdown: the drain is sampled too
	if h != nil {
		st, err := h.ready(d.srv.Adopt)
		if err != nil {
			d.log.Warn().Err(err).Msg("upgrade: the old process did not confirm the hand-over; serving anyway")
		} else {
			d.log.Info().Int("old_pid", h.parentPID).Msg("upgrade: took over from the old process")
		}
		if st != (l4.HandoffStats{}) {
			d.log.Info().Int("tcp", st.TCP).Int("clients", st.Clients).Int("udp_flows", st.Flows).
				Int("refused", st.Refused).Msg("upgrade: adopted the old process's connections")
		}
		if err := d.bindAdminSocket(cfg); err != nil {
			d.log.Error().Err(err).Msg("upgrade: the admin socket could not be bound; the admin port serves on without it")
		}
	}
	d.notify("READY=1", "STATUS="+d.status(cfg))
	wctx, stopWatchdog := context.WithCancel(context.Background())
	defer stopWatchdog()
	if n := d.opts.Notifier; n != nil && n.Watchdog > 0 {
		go watchdog(wctx, n, n.Watchdog, d.srv, d.log)
	}
	d.serving.Store(true)
	d.log.Info().Str("config", cfg.File).Int("workers", cfg.Global.Workers).
		Int("frontends", len(cfg.Frontends)).Int("pid", os.Getpid()).Msg("splicer started")
	d.found.goLive(d)

	d.serve(ctx)
	stopWatchdog()
	// A reload or upgrade in progress finishes first; later ones are
	// refused.
	d.ctl.Lock()
	d.serving.Store(false)
	d.ctl.Unlock()
	return d.shutdown()
}

// serve waits for the end, reloading and upgrading on signals meanwhile.
func (d *Daemon) serve(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.handedOver:
			return
		case sig := <-d.opts.Signals:
			switch sig {
			case syscall.SIGHUP:
				out := d.Reload(context.Background())
				result := "ok"
				if !out.OK {
					result = fmt.Sprintf("error: %d problems", len(out.Problems))
				}
				d.auditReload(result)
			case syscall.SIGUSR1:
				d.ReopenLogs()
			case syscall.SIGUSR2:
				d.Upgrade(context.Background())
			}
		}
	}
}

// shutdown drains the connections until shutdown_timeout.
func (d *Daemon) shutdown() error {
	cfg := d.config()
	timeout := cfg.Global.ShutdownTimeout
	if d.isHandedOver() {
		// No longer the service's main process: systemd takes no
		// notification from it.
		d.log.Info().Int64("successor_pid", d.successor.Load()).Int64("connections", d.srv.ActiveConnections()).
			Float64("timeout_seconds", timeout.Seconds()).Msg("handed over: draining this process's connections, then exiting")
	} else {
		d.notify("STOPPING=1", fmt.Sprintf("STATUS=stopping: draining %d connections", d.srv.ActiveConnections()))
		d.log.Info().Int64("connections", d.srv.ActiveConnections()).Float64("timeout_seconds", timeout.Seconds()).
			Msg("shutting down: stopped accepting, waiting for connections")
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hurried := make(chan struct{})
	go d.hurryOnSignal(sctx, cancel, hurried)
	switch err := d.srv.Shutdown(sctx); {
	case errors.Is(err, context.DeadlineExceeded):
		d.log.Warn().Err(err).Msg("shutdown timeout reached; remaining connections closed")
	case errors.Is(err, context.Canceled) && isClosed(hurried):
		d.log.Info().Err(err).Msg("second stop signal: remaining connections closed")
	case err != nil:
		return fmt.Errorf("shutdown: %w", err)
	}
	d.log.Info().Msg("splicer stopped")
	return nil
}

// hurryOnSignal cancels the shutdown's wait when a SIGINT or SIGTERM
// arrives during it (the operator pressing Ctrl-C again), closing hurried
// first; it returns when ctx ends.
func (d *Daemon) hurryOnSignal(ctx context.Context, cancel context.CancelFunc, hurried chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-d.opts.Signals:
			if sig == syscall.SIGINT || sig == syscall.SIGTERM {
				close(hurried)
				cancel()
				return
			}
		}
	}
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// status is the STATUS= line while serving.
func (d *Daemon) status(cfg *config.Config) string {
	return fmt.Sprintf("serving %d frontends (config %s)", len(cfg.Frontends), cfg.File)
}

// startLocks takes the listener locks of cfg's addresses, or adopts those
// the old process handed over.
func (d *Daemon) startLocks(cfg *config.Config, h *Handover) error {
	lk, err := newLocks(cfg.Global.RuntimeDir, cfg.File)
	if err != nil {
		return err
	}
	d.locks = lk
	if h != nil {
		lk.adopt(h.locks)
		h.locks = nil
	}
	u, err := lk.update(wantLocks(cfg))
	if err != nil {
		lk.releaseAll()
		return err
	}
	u.commit()
	return nil
}

// errNotServing refuses a change to a daemon that is not serving.
var errNotServing = errors.New("the daemon is not serving (starting, or stopping)")

// isHandedOver reports whether an upgrade handed over to another process.
func (d *Daemon) isHandedOver() bool {
	select {
	case <-d.handedOver:
		return true
	default:
		return false
	}
}
