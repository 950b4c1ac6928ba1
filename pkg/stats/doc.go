// Package stats holds the snapshot types that the daemon fills and the admin
// API and the Prometheus collector read. It is a leaf package of plain data so
// that pkg/admin and pkg/metrics can share it without importing each other.
//
// The documents, each with its JSON form:
//
//   - Stats, GET /api/v1/stats: the whole daemon at one instant, with a
//     FrontendStats per frontend and a BackendStats (its HealthStats
//     included) per backend. Counters are cumulative; histograms are in
//     Prometheus form (Bucket), and Quantile estimates from them.
//   - History, GET /api/v1/history: the last HistorySeconds of per-second
//     samples (pkg/history records them).
//   - Conn, a page of GET /api/v1/connections: one live connection.
//   - RuntimeState, the state file and GET /api/v1/state: what an operator
//     changed at runtime and must survive a restart or an upgrade.
//
// The names that appear as map keys and label values (States,
// ConnectFailureReasons, RefusalReasons, DropReasons, the error kinds) are
// listed by functions here, so that every reader (the JSON API, the
// metrics, the status page, `splicer stats` and `top`) shows every key,
// zero or not.
package stats
