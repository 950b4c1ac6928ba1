// Package daemon wires a validated config into running components and owns
// their life: start, reload, binary upgrade, and the graceful shutdown
// bounded by global.shutdown_timeout. It is the one composition root: the
// other packages define the interfaces they need, and only this one
// imports them all.
//
// # The pieces it wires
//
// For a *config.Config, New builds, without binding anything: the data
// plane (an l4.Server with a backend.Set and a balance strategy per
// frontend), one health.Scheduler per frontend with an active or passive
// check (health.go), the discovery sources that feed a frontend's backends
// at runtime (discovery.go: DNS and Redis Sentinel), the admin server over
// the daemon seen as an admin.Source (adminport.go, source.go), the
// Prometheus series written from the stats snapshot (pkg/metrics) and the
// per-second history (history.go). It reads every secret the config names
// and opens the audit log, so a missing secret fails the start.
//
// Run then does everything that can fail before the first client is
// accepted (the listener locks of lock.go, the admin port, the state file
// of state.go, the binds), serves until its ctx ends, and shuts down
// gracefully. Meanwhile signals (Options.Signals) reload, reopen the logs
// and upgrade, and the service manager hears of each step through a
// Notifier (sd_notify).
//
// # Changes at runtime
//
// Every change of backends goes through SetBackends, one transaction:
// prepare steps that may fail, then a commit that cannot. A config reload
// (Reload), a discovery source and the admin API all use it, so a failed
// change leaves the old backends serving. Reload applies a whole new
// config the same way: on any problem nothing changes and the previous
// config serves on. Upgrade starts the new binary and hands it the
// listening sockets and the open connections (handover.go), so no
// connection attempt is refused. Reloads, upgrades and backend changes run
// one at a time. docs/architecture.md describes reload and upgrade in
// full; docs/operations.md how an operator drives them.
package daemon
