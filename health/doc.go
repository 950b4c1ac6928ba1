// Package health decides whether backends can take traffic: active probes
// run by a Scheduler, plus passive reports from the data plane.
//
// # Probes
//
// NewChecker builds a Checker from a frontend's [config.Health]; every
// probe dials its own connection, honours the ctx that carries the probe
// timeout (the conn's deadline is ctx's, and the conn is closed when ctx is
// done) and returns a Result whose message builds up the cause:
//
//	postgres probe 127.0.0.1:5432: connect: connection refused
//	redis probe 127.0.0.1:6379: reply "-LOADING Redis is loading the dataset in memory": server loading
//
// The kinds:
//
//   - tcp: the connection opens.
//   - send_expect: the request (send, or send_hex decoded) is written and
//     the reply must start with expect or match expect_regex; the probe reads
//     until it matches, cannot match any more, ends, reaches 64 KiB or times
//     out. NewUDPChecker sends it as one datagram and judges the first reply
//     datagram; an ICMP port unreachable reads as "connection refused".
//   - postgres: a StartupMessage (protocol 3.0, user and database) and the
//     first reply. Up: an authentication request of any kind (the probe
//     never answers it, so it needs no password; after AuthenticationOk it
//     sends Terminate), or an error about these credentials: SQLSTATE class
//     28, 3D000 (no such database) or 42501 (no CONNECT privilege), since
//     only a server running sessions gets that far. Down: any other error,
//     notably 57P03 (starting up, or in smart shutdown: TCP still accepts but
//     every session is refused) and 53300 (too many connections), and any
//     malformed reply. Up to four NoticeResponses before the verdict are
//     skipped. With a password or a role the probe logs in instead (trust,
//     cleartext, md5, SCRAM-SHA-256 with the server's signature checked),
//     reads the role and ends with Terminate; every error is then down.
//   - mysql: reads the protocol 10 greeting and logs in as user, with the
//     password when one is set (mysql_native_password; an auth switch to
//     caching_sha2_password is answered on its fast path) or an empty one.
//     OK is up, and the probe sends COM_QUIT before closing. Without a
//     password or role, access denied (1044, 1045, 1698) is up as well,
//     since the server is running sessions; the message asks for the
//     passwordless account. Any other ERR (1040 too many connections, 1129
//     host blocked, 1053 shutting down, ...) or a malformed packet is down.
//     The probe completes the handshake because MySQL counts an aborted one
//     toward max_connect_errors and then blocks the balancer's address.
//   - redis: PING must answer +PONG; with a password (health.password, read
//     by NewChecker and again by ReloadSecrets), AUTH goes first and must
//     answer +OK. Any error reply is
//     down with the reply in the message (-LOADING, -MASTERDOWN, -BUSY,
//     -NOAUTH, -WRONGPASS are explained). With a role, ROLE replaces PING
//     (INFO replication where ROLE is refused).
//   - http: GET path must answer status (no proxy from the environment,
//     redirects not followed). With http_keepalive, the Scheduler's probes
//     of a backend keep their connection from one check to the next: it is
//     reused only after a response read whole that did not ask to close,
//     and a connection the server closed while idle is replaced at once
//     by a new one, whose answer decides. Without it, or a Checker called
//     outside a Scheduler, each check sends "Connection: close" over a
//     connection of its own.
//
// When port is set, every probe targets it on the backend's address instead
// of the service port.
//
// A probe of one's own is any Checker: New runs it like the built-in ones,
// with the same timing, streaks and reports, as long as it keeps the
// contract (ctx bounds the probe, nothing outlives Check, a probe cut short
// is never OK). ExampleChecker shows one.
//
// # Roles
//
// With health.role the database probes read the server's role: postgres
// from in_hot_standby or pg_is_in_recovery(), with a primary's timeline
// and a replica's replay lag (max_lag); mysql from @@global.read_only and
// super_read_only; redis from ROLE, with a replica's offset against its
// master's (max_lag_bytes). A server of the wrong role fails the probe; a
// passing role probe reports the role and (postgres) timeline in Result.
// A role = "primary" Scheduler keeps one primary up: among the backends
// that answer as primary the highest timeline wins, then the one that
// turned primary last, then the first listed; the others are taken down at
// once and kept down, and a primary on a timeline below one seen is stale
// (see arbiter).
//
// # Scheduler
//
// A Scheduler (New, then Run in a goroutine the caller owns) watches one
// frontend's backends with one goroutine each. The first probe comes at a
// random point in [0, interval) so probes do not start as one herd; then
// one comes every interval while the verdict is settled, every fast_interval
// while a streak contradicts it, and every down_interval while the backend
// is down. Each probe gets timeout.
//
// Verdicts flip on full streaks only: fall consecutive failures take an up
// backend down, rise consecutive successes bring a down backend up. A
// backend starts with the verdict it carries: a new backend is up, so
// traffic flows from the start as in HAProxy, and a dead one is taken out
// after its first probe plus (fall-1) fast intervals; a backend kept across
// a reload keeps its verdict. Backends in Maint are not probed and keep
// their verdict.
//
// Only flips are reported: the Scheduler calls Backend.SetHealthy (which
// publishes a new snapshot and starts slow start on recovery), then the
// onChange callback, and logs one line (info "backend up", warn "backend
// down", with backend, backend_address, the probe's summary as check or its
// failure as error, check_seconds, backends_up and connections_closed).
// Every active probe is counted on the backend (Backend.ObserveCheck).
//
// Passive detection: the data plane calls ReportFailure for a failed
// connect or a reset before the backend's first byte, and ReportSuccess
// for a connection the backend served (its first byte, or a clean end);
// both are lock-free and allocation-free. The passive_fall-th consecutive
// failure takes the
// backend down at once (its probe goroutine applies it within
// microseconds); active probes bring it back with rise. passive_fall 0
// disables it. A frontend with check "none" but passive_fall set gets a
// passive-only Scheduler (NewPassive): no probes, and a backend taken down
// comes back on trial after down_interval.
//
// With probe_when_idle_only the data plane's reports also stand in for
// probes: a backend that is up, with no probe streak against it, that the
// data plane saw answer within half a timeout before a probe time and saw
// no failure of since the previous one is not probed at that time. Any
// failure, no traffic, or a backend down, and the probe runs. State counts
// the probes run and skipped and the connections they opened.
//
// SetBackends changes the backends a Scheduler watches while it runs (for
// discovery): kept backends keep their state, new ones start up.
//
// State returns a copy of a backend's health for stats: verdict, last
// result with its message and duration, the current streaks, and the times
// of the last check and the last flip.
//
// Cancelling Run's ctx stops every goroutine, cutting short probes in flight
// (their results are dropped), and Run returns once all have exited. The
// "none" check kind has no Checker: with passive_fall 0 build no Scheduler,
// and backends stay up.
package health
