// Package discovery finds a frontend's backends at runtime, outside the
// config file. Each finder is a Source: Run reports the complete list of
// backends (as config.Backend values) every time it changes, and Ready is
// closed after the first report. NewSource picks the one a frontend's
// config asks for, or returns nil when its backend list is static.
//
//   - DNS follows the records of a [frontend.discovery] table (SRV, A or
//     AAAA), and the host names of backends written as host:port. It asks
//     the configured servers itself (dnsclient.go: UDP with EDNS(0), TCP
//     when truncated), since it must read the TTLs: each name is asked
//     again when its TTL runs out, within the min and max intervals. A
//     failed lookup or an empty answer keeps the last good backends, so a
//     DNS outage never empties a frontend; Stats counts the lookups.
//   - Sentinel follows the master (or the replicas) of a Redis master set
//     through Redis Sentinel, so a failover Sentinel decides moves traffic
//     at once.
//
// A source only reports addresses; the daemon turns them into backends,
// merged by identity with the frontend's current ones, as a reload would
// (pkg/daemon's SetBackends), so a backend that stays keeps its
// connections, counters and health.
package discovery
