package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/splicerlb/splicer/l4"
	"github.com/splicerlb/splicer/pkg/admin"
	"github.com/splicerlb/splicer/pkg/backend"
	"github.com/splicerlb/splicer/pkg/config"
	"github.com/splicerlb/splicer/pkg/logging"
)

// ReloadOutcome is what a reload did.
type ReloadOutcome struct {
	OK bool
	// File is the config file read ("" for a config built in code).
	File string
	// Problems lists every reason a reload was refused: the config's own
	// problems, settings that need a restart, an address another process
	// holds, a port that cannot be bound.
	Problems []config.Problem
	// Change is what the data plane changed.
	Change   l4.Change
	Duration time.Duration
}

// Reload reads the configuration again (Options.Load) and applies the
// difference; on any problem it changes nothing and the previous config
// serves on. Listeners of addresses that stay keep their sockets; backends
// are merged by identity (SetBackends); health checks keep their state
// where the checks and backends are unchanged; the admin port moves, and
// the log level and format change at once, and the connection log file is
// reopened (or moved). Reloads, upgrades and backend
// changes run one at a time. The outcome is logged and counted.
func (d *Daemon) Reload(ctx context.Context) ReloadOutcome {
	start := time.Now()
	d.ctl.Lock()
	defer d.ctl.Unlock()
	switch {
	case d.isHandedOver():
		return ReloadOutcome{Problems: []config.Problem{{Msg: fmt.Sprintf(
			"this process handed over to pid %d at an upgrade and is draining: reload that one", d.successor.Load())}}}
	case !d.serving.Load():
		return ReloadOutcome{Problems: []config.Problem{{Msg: errNotServing.Error()}}}
	}
	d.notify("RELOADING=1", "MONOTONIC_USEC="+monotonicUsec(), "STATUS=reloading the configuration")
	out := d.reload(ctx)
	out.Duration = time.Since(start)
	d.reloads.observe(out.OK, time.Now())
	cfg := d.config()
	if out.OK {
		d.log.Info().Str("config", out.File).Float64("took_seconds", out.Duration.Seconds()).Interface("changes", out.Change).
			Msg("configuration reloaded")
		logProblemList(d.log, zerolog.WarnLevel, cfg.Warnings, "config warning")
		d.notify("READY=1", "STATUS="+d.status(cfg))
		return out
	}
	logProblemList(d.log, zerolog.ErrorLevel, out.Problems, "reload refused")
	d.log.Warn().Str("config", out.File).Int("problems", len(out.Problems)).
		Msg("reload refused: the previous configuration serves on")
	d.notify("READY=1", fmt.Sprintf("STATUS=%s; the last reload failed with %d problem(s)", d.status(cfg), len(out.Problems)))
	return out
}

// reload loads the config and applies it.
func (d *Daemon) reload(ctx context.Context) ReloadOutcome {
	old := d.config()
	cfg, err := d.load()
	if err != nil {
		return ReloadOutcome{File: old.File, Problems: problemsOf(err, old.File)}
	}
	out := ReloadOutcome{File: cfg.File}
	if ps := restartOnly(old, cfg); len(ps) > 0 {
		out.Problems = ps
		return out
	}
	// Frontends fed by discovery take the backends their sources found;
	// a source whose settings changed is replaced.
	found, err := d.found.prepare(cfg)
	if err != nil {
		out.Problems = problemsOf(err, cfg.File)
		return out
	}
	change, err := d.apply(ctx, cfg)
	if err != nil {
		found.abort()
		out.Problems = problemsOf(err, cfg.File)
		return out
	}
	found.commit(d)
	out.OK, out.Change = true, change
	return out
}

// load reads the configuration for a reload.
func (d *Daemon) load() (*config.Config, error) {
	if d.opts.Load != nil {
		return d.opts.Load()
	}
	file := d.config().File
	if file == "" {
		return nil, errors.New("this daemon's configuration was built in code: there is no file to reload")
	}
	return config.LoadIn(file, HostEnvironment())
}

// problemsOf turns an error into problems: a config's own list, or one
// problem with the error's text.
func problemsOf(err error, file string) []config.Problem {
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.Problems
	}
	return []config.Problem{{File: file, Msg: err.Error()}}
}

// restartOnly reports the settings a reload cannot change, and how to
// apply them: an upgrade starts a new process on the same sockets, so it
// applies any config without losing a connection.
func restartOnly(old, cfg *config.Config) []config.Problem {
	var ps []config.Problem
	check := func(path string, was, is any) {
		if was != is {
			ps = append(ps, config.Problem{File: cfg.File, Path: path, Msg: fmt.Sprintf(
				"changed from %v to %v, which a reload cannot apply; run \"splicer upgrade\" (no connection is lost) or restart",
				was, is)})
		}
	}
	check("global.workers", old.Global.Workers, cfg.Global.Workers)
	check("global.cpu_affinity", fmt.Sprintf("%q", old.Global.CPUAffinity), fmt.Sprintf("%q", cfg.Global.CPUAffinity))
	check("global.max_pipes", old.Global.MaxPipes, cfg.Global.MaxPipes)
	check("global.pipe_size", old.Global.PipeSize, cfg.Global.PipeSize)
	check("global.buffer_size", old.Global.BufferSize, cfg.Global.BufferSize)
	check("global.runtime_dir", old.Global.RuntimeDir, cfg.Global.RuntimeDir)
	check("log.connections_buffer", old.Log.ConnectionsBuffer, cfg.Log.ConnectionsBuffer)
	// The admin port's files and listeners other than its TCP address:
	// what the audit log appends to, and what the admin socket is.
	check("admin enabled", adminEnabled(old), adminEnabled(cfg))
	check("admin.audit_log", old.Admin.AuditLog, cfg.Admin.AuditLog)
	check("admin TLS", old.Admin.TLSCert != "", cfg.Admin.TLSCert != "")
	check("admin.socket", old.Admin.Socket, cfg.Admin.Socket)
	check("admin.socket_mode", old.Admin.SocketMode, cfg.Admin.SocketMode)
	check("admin.socket_group", old.Admin.SocketGroup, cfg.Admin.SocketGroup)
	return ps
}

// SetBackends replaces frontend name's backends with specs, merged by
// identity (backend.Merge): a backend of the same name and address keeps
// its connections, counters, health state and admin state; its weight,
// max_connections and backup flag follow the spec (the weight only when
// the spec changes it); the others are added, or retired and drained. The
// frontend's health checks restart for the new list, keeping the state of
// the backends that stay.
//
// A config reload changes every frontend's backends this way, and so does
// runtime discovery (DNS, Redis Sentinel): whatever finds backends
// produces specs and calls SetBackends, so counters, drains and open
// connections survive whichever source changes the list.
func (d *Daemon) SetBackends(ctx context.Context, name string, specs []backend.Spec) (l4.BackendChange, error) {
	d.ctl.Lock()
	defer d.ctl.Unlock()
	var prev []config.Backend
	if fc := frontendOf(d.config(), name); fc != nil {
		prev = fc.Backends
	}
	list := make([]config.Backend, len(specs))
	for i, s := range specs {
		if s.Name == "" {
			s.Name = s.Address.String()
		}
		list[i] = config.Backend{Name: s.Name, Address: s.Address, Weight: s.Weight,
			MaxConnections: s.MaxConnections, Backup: s.Backup, SendProxy: sendProxyOf(prev, s)}
	}
	return d.setBackends(ctx, name, list)
}

// setBackends makes list the backends of frontend name, for a caller
// holding d.ctl. Discovery calls it with the backends its sources found,
// which carry their settings (a host-name backend's own send_proxy).
func (d *Daemon) setBackends(ctx context.Context, name string, list []config.Backend) (l4.BackendChange, error) {
	switch {
	case d.isHandedOver():
		return l4.BackendChange{}, errors.New("this process handed over at an upgrade and is draining")
	case !d.serving.Load():
		return l4.BackendChange{}, errNotServing
	}
	old := d.config()
	cfg := *old
	cfg.Frontends = append([]config.Frontend(nil), old.Frontends...)
	fc := frontendOf(&cfg, name)
	if fc == nil {
		return l4.BackendChange{}, fmt.Errorf("frontend %q: %w", name, l4.ErrUnknownFrontend)
	}
	fc.Backends = list
	change, err := d.apply(ctx, &cfg)
	if err != nil {
		return l4.BackendChange{}, err
	}
	d.log.Info().Str("frontend", name).Interface("backends", change.Backends[name]).Msg("backends changed")
	return change.Backends[name], nil
}

// sendProxyOf is the send_proxy a backend of spec s keeps: its own when
// the same backend (name and address) was configured with one, else ""
// (the frontend's). Specs do not carry it: the admin API knows nothing
// of it.
func sendProxyOf(prev []config.Backend, s backend.Spec) string {
	for _, b := range prev {
		if b.Name == s.Name && b.Address == s.Address {
			return b.SendProxy
		}
	}
	return ""
}

func frontendOf(cfg *config.Config, name string) *config.Frontend {
	for i := range cfg.Frontends {
		if cfg.Frontends[i].Name == name {
			return &cfg.Frontends[i]
		}
	}
	return nil
}

// reloadTx is one config change on its way in. Its steps prepare, each
// able to fail without having changed anything that serves; abort undoes
// what the steps prepared, commit makes it all live and cannot fail.
type reloadTx struct {
	d        *Daemon
	old, cfg *config.Config
	locks    *lockUpdate
	adminLn  net.Listener // the admin port's new TCP listener, when it moves
	moveAdm  bool
	access   *admin.Access // the admin port's users, grants and TLS; nil when it is off
	plan     *l4.Plan
	health   *healthPlan
	// connFile is the connections_file opened for a config that moves
	// it (nil: the daemon's log); moveConnLog says it moves.
	connFile    *logging.File
	moveConnLog bool
}

// apply prepares cfg in every component, then commits it. The caller
// holds d.ctl.
func (d *Daemon) apply(_ context.Context, cfg *config.Config) (l4.Change, error) {
	tx := &reloadTx{d: d, old: d.config(), cfg: cfg}
	steps := []func() error{
		tx.prepareLocks,
		tx.prepareAdmin,
		// Before the data plane: a secret that cannot be read fails the
		// reload, and nothing changed.
		tx.prepareSecrets,
		tx.prepareConnLog,
		tx.prepareDataPlane,
		tx.prepareHealth,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			tx.abort()
			return l4.Change{}, err
		}
	}
	return tx.commit(), nil
}

// prepareLocks takes the listener locks of addresses cfg adds.
func (tx *reloadTx) prepareLocks() error {
	u, err := tx.d.locks.update(wantLocks(tx.cfg))
	if err != nil {
		return err
	}
	tx.locks = u
	return nil
}

// prepareAdmin binds the admin port's new address when it moves.
func (tx *reloadTx) prepareAdmin() error {
	if tx.cfg.Admin.Listen == tx.old.Admin.Listen {
		return nil
	}
	tx.moveAdm = true
	if tx.cfg.Admin.Listen == "" {
		return nil
	}
	ln, err := listenAdmin(tx.cfg.Admin.Listen, nil)
	if err != nil {
		return err
	}
	tx.adminLn = ln
	return nil
}

// prepareSecrets reads everything the new config's admin port
// authenticates against (users file, socket grants, TLS files, audit key)
// and every health check password: a reload is how secrets rotate.
func (tx *reloadTx) prepareSecrets() error {
	if adminEnabled(tx.cfg) {
		a, err := admin.LoadAccess(tx.cfg)
		if err != nil {
			return err
		}
		tx.access = a
	}
	return errors.Join(healthSecretErrors(tx.cfg)...)
}

// prepareDataPlane binds new addresses and merges the backends.
func (tx *reloadTx) prepareDataPlane() error {
	p, err := tx.d.srv.Prepare(tx.cfg)
	if err != nil {
		return err
	}
	tx.plan = p
	return nil
}

// prepareHealth builds the schedulers of frontends whose checks or
// backends change, on the backends they will have.
func (tx *reloadTx) prepareHealth() error {
	hp, err := tx.d.checks.prepare(tx.cfg, tx.plan.Backends, tx.plan.Observe)
	if err != nil {
		return err
	}
	tx.health = hp
	return nil
}

func (tx *reloadTx) abort() {
	tx.abortConnLog()
	if tx.plan != nil {
		tx.plan.Abort()
	}
	if tx.adminLn != nil {
		tx.adminLn.Close()
	}
	if tx.locks != nil {
		tx.locks.abort()
	}
}

// commit makes the prepared change live.
func (tx *reloadTx) commit() l4.Change {
	d, cfg := tx.d, tx.cfg
	// The replaced schedulers stop first, so that their successors take
	// over a state no probe changes any more.
	tx.health.stopOld()
	change := tx.plan.Commit()
	tx.health.startNew()
	if tx.moveAdm {
		d.moveTCP(tx.adminLn)
	}
	d.reloadSecrets(cfg, tx.access)
	tx.locks.commit()
	if out := d.opts.LogOutput; out != nil {
		// Validated by the config: Set cannot fail.
		if err := out.Set(cfg.Log.Level, cfg.Log.Format); err != nil {
			d.log.Error().Err(err).Msg("log settings")
		}
	}
	tx.commitConnLog()
	d.cfg.Store(cfg)
	d.state.setPath(cfg.Global.StateFile)
	d.state.save(runtimeState(cfg, d.srv))
	return change
}

// saveState records the runtime state after a change made through the
// admin API.
func (d *Daemon) saveState() {
	d.state.save(runtimeState(d.config(), d.srv))
}
