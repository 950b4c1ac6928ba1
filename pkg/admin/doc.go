// Package admin serves splicer's admin port: stats as JSON, Prometheus
// metrics, an HTML status page, health and readiness probes, and runtime
// control of backends and connections. It also holds the client side: the
// Client the CLI commands use and the commands themselves.
//
// # Server side
//
// New builds a Server over a Source, the interface through which it reads
// and controls the daemon (pkg/daemon implements it; an embedder may
// implement it over its own l4.Server). Lifecycle (reload, upgrade) and
// HistorySource (per-second history) are optional Options. One Server
// serves any number of listeners: Serve for plain TCP, ServeTLS, and the
// admin unix socket made by ListenUnix. Shutdown stops them all.
//
// Every request goes through one pipeline (routes.go): the method, the
// in-flight cap, browser safety (browser.go: Host, cross-site changes,
// JSON content type), the failed-login limiter, authentication (a bearer
// token, a browser session cookie, a client certificate, or the socket
// peer's uid), then the permission (Perm) that the route table names for
// every route. A Security holds who may do what: the users file (Users,
// AddUser, RotateUser; only SHA-256 digests of tokens are kept), the TLS
// setup, and the audit log (Audit), where every change is recorded, in a
// chain of HMACs that VerifyAudit checks, before it applies. Without users, New's
// default (ReadOnly) serves reads to loopback and refuses every change.
//
// # Client side
//
// NewClient and NewClientWith reach the admin port over TCP, HTTPS or the
// unix socket; Client's methods map one to one onto the API (Stats,
// History, Connections, SetState, SetWeight, CloseConnection, Reload,
// Upgrade, AuditCheckpoint) and return an *APIError for an error answer.
// The Run* functions are the `splicer` subcommands built on it (stats,
// top, conns, backend, reload, upgrade, user, audit), with the -admin,
// -token-file and -cacert flags they share; WriteStatsTable renders the
// table `splicer stats` prints.
//
// The stats documents themselves are package stats' types, shared with
// pkg/metrics, so this package and the Prometheus collector never import
// each other. docs/operations.md describes the API for operators and
// docs/security.md its users, roles and audit log.
package admin
