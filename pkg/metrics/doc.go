// Package metrics exposes splicer's counters to Prometheus. It reads a
// stats snapshot at scrape time, so the data plane does no work for metrics
// beyond the atomic counters it keeps anyway.
//
// docs/operations.md ("Metrics") lists every series with its meaning. The
// names follow Prometheus' conventions (promlint, in the tests): a counter
// ends in _total, a unit is a suffix in base units, and no figure is
// exported under two names. How a connection ended is counted once, under
// splicer_frontend_connections_closed_total{cause} (and the backend's), so
// there is no separate "rejected" or "refused" counter to add up wrongly.
//
// A scrape is written straight from the snapshot in the text format
// (Handler): with a thousand backends that is tens of thousands of series,
// which client_golang's registry would build, sort and encode one object at
// a time. Collector emits the same series as a prometheus.Collector.
package metrics
