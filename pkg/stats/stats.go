package stats

import "time"

// The administrative states a backend reports in BackendStats.State.
const (
	StateReady = "ready" // takes new connections when healthy
	StateDrain = "drain" // takes no new connections; existing ones run on
	StateMaint = "maint" // takes no new connections and is not health checked
)

// States returns the administrative states in display order, as a fresh
// slice the caller may keep.
func States() []string { return []string{StateReady, StateDrain, StateMaint} }

// ConnectFailureReasons returns the keys every BackendStats.ConnectFailures
// map carries, in display order, as a fresh slice the caller may keep.
func ConnectFailureReasons() []string {
	return []string{"refused", "timeout", "unreachable", "reset", "other"}
}

// RefusalReasons returns the keys of FrontendStats.Refused in display order,
// each the name of the cause the client's connection ended with: no
// backend could take the client, every try to connect failed, the wait
// queue was full, the client waited past queue_timeout, the access list,
// max_connections_per_client, connection_rate_per_client.
func RefusalReasons() []string {
	return []string{"no_backend", "connect_failed", "queue_full", "queue_timeout", "access_list", "per_client", "rate_limit"}
}

// DropReasons returns the keys of FrontendStats.Drops in display order, as a
// fresh slice the caller may keep: why UDP datagrams were dropped. New
// flows refused at max_flows, for want of a backend, by the access list,
// by the two per-client limits, during shutdown, or for want of a local
// socket; datagrams the kernel would not send; ICMP errors from a backend
// (each one a datagram it did not get); replies from an address other
// than the flow's backend; replies where none is expected (responses = 0);
// datagrams the kernel dropped because a frontend socket's receive buffer
// was full, before splicer could read them; on an accept_proxy frontend,
// datagrams from a trusted sender without a valid v2 PROXY header, and
// datagrams from a sender outside accept_proxy_from.
func DropReasons() []string {
	return []string{"max_flows", "no_backend", "access_list", "per_client", "rate_limit", "shutdown",
		"local_error", "send_error", "refused", "foreign_source", "unsolicited", "receive_buffer",
		"proxy_header", "proxy_untrusted"}
}

// Stats is a snapshot of the whole daemon. Each counter is read atomically on
// its own, so counters of one snapshot may be a few events apart; no reader
// should expect sums across backends to equal a frontend figure exactly while
// traffic flows.
type Stats struct {
	Version string `json:"version"`
	// Revision is the source revision the binary was built from;
	// GoVersion the Go release that built it.
	Revision   string    `json:"revision"`
	GoVersion  string    `json:"go_version"`
	StartedAt  time.Time `json:"started_at"`
	Uptime     float64   `json:"uptime_seconds"`
	PipesInUse int       `json:"pipes_in_use"`
	PipesMax   int       `json:"pipes_max"`
	// PipesSmall counts pipes the kernel granted below pipe_size (see
	// docs/operations.md: a user past fs.pipe-user-pages-soft).
	PipesSmall uint64 `json:"pipes_small"`
	FDs        int    `json:"fds"` // open file descriptors of the process
	// Connections and MaxConnections are the global level of the pool:
	// client connections now (with slots being taken), and the cap.
	Connections    int64 `json:"connections"`
	MaxConnections int   `json:"max_connections"`
	// ConnLog is the connection log's figures.
	ConnLog   ConnLogStats    `json:"connection_log"`
	Frontends []FrontendStats `json:"frontends"`
}

// ConnLogStats counts the connection log's lines: written, dropped because
// the writer fell behind (a loop's buffer was full), and lost to a failed
// write.
type ConnLogStats struct {
	Lines              uint64 `json:"lines"`
	DroppedBufferFull  uint64 `json:"dropped_buffer_full"`
	DroppedWriteFailed uint64 `json:"dropped_write_failed"`
}

// FrontendStats describes one frontend and its backends. "In" is the
// client-to-backend direction, "out" the backend-to-client one. On a UDP
// frontend Active and Total count flows; the queue and refusal fields stay
// zero, and Datagrams and Drops say what happened to each datagram.
type FrontendStats struct {
	Name     string   `json:"name"`
	Listen   []string `json:"listen"`
	Protocol string   `json:"protocol"`
	Strategy string   `json:"strategy"`
	Active   int64    `json:"active"`
	Peak     int64    `json:"peak"` // the most Active ever, since the frontend was added
	Total    uint64   `json:"total"`
	// Rejected counts clients that asked for a backend and got none: no
	// backend could take them, every try failed, the queue was full, or
	// they waited past queue_timeout (the closed causes no_backend,
	// connect_failed, queue_full, queue_timeout). Clients refused at
	// accept (access list, per-client limits) are not in it.
	Rejected uint64 `json:"rejected"`
	Queued   uint64 `json:"queued"` // ever made to wait for a slot
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
	// MaxConnections is the frontend's cap (0: only the global one).
	MaxConnections int `json:"max_connections"`
	// QueuedNow is the number of clients waiting for a backend slot.
	QueuedNow     int    `json:"queued_now"`
	QueueTimeouts uint64 `json:"queue_timeouts"`
	// Refused counts clients turned away, by reason: every key of
	// RefusalReasons is present.
	Refused map[string]uint64 `json:"refused"`
	// QueueWaitBuckets, QueueWaitCount and QueueWaitSum are the histogram
	// of the time waiters spent queued before a slot, in Prometheus form.
	QueueWaitBuckets []Bucket `json:"queue_wait_buckets"`
	QueueWaitCount   uint64   `json:"queue_wait_count"`
	QueueWaitSum     float64  `json:"queue_wait_sum_seconds"`
	// DatagramsIn and DatagramsOut count UDP datagrams relayed; zero on a
	// TCP frontend.
	DatagramsIn  uint64 `json:"datagrams_in"`
	DatagramsOut uint64 `json:"datagrams_out"`
	// Drops counts UDP datagrams dropped, by reason: every key of
	// DropReasons on a UDP frontend, nil on a TCP one.
	Drops map[string]uint64 `json:"drops,omitempty"`
	// Closed counts ended client connections (UDP: flows) by termination
	// cause, clients refused before they were served included, each
	// exactly once. It holds every cause the frontend's protocol can end
	// with, zero or not; docs/operations.md lists them.
	Closed map[string]uint64 `json:"closed"`
	// Rates are the latest and peak per-second figures from the history
	// (docs/operations.md); nil before the daemon has two samples.
	Rates    *Rates         `json:"rates,omitempty"`
	Backends []BackendStats `json:"backends"`
}

// BackendStats describes one backend of a frontend. Name is unique within the
// frontend and is what the admin API addresses the backend by.
type BackendStats struct {
	Name            string `json:"name"`
	Address         string `json:"address"`
	Weight          int    `json:"weight"`           // configured or set at runtime
	EffectiveWeight int    `json:"effective_weight"` // after slow start
	State           string `json:"state"`            // StateReady, StateDrain or StateMaint
	Backup          bool   `json:"backup"`
	// MaxConnections is the backend's cap (0: none).
	MaxConnections int `json:"max_connections"`

	Health HealthStats `json:"health"`

	Active   int64  `json:"active"`
	Peak     int64  `json:"peak"` // the most Active ever, since the backend was added
	Total    uint64 `json:"total"`
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
	// DatagramsIn and DatagramsOut count UDP datagrams relayed to and from
	// the backend; ForeignDrops counts replies dropped for coming from
	// another address than the backend's. All zero behind TCP frontends.
	DatagramsIn  uint64 `json:"datagrams_in"`
	DatagramsOut uint64 `json:"datagrams_out"`
	ForeignDrops uint64 `json:"foreign_drops"`

	// ConnectFailures counts failed connects by reason; it holds every key
	// of ConnectFailureReasons, zero or not, so readers need no defaults.
	// Behind a UDP frontend it counts ICMP errors about flows that had no
	// reply yet (see docs/operations.md).
	ConnectFailures map[string]uint64 `json:"connect_failures"`
	// Resets counts relayed connections the backend reset: the same
	// figure as Closed["backend_reset"].
	Resets uint64 `json:"resets"`
	// Closed counts ended connections that had this backend, by
	// termination cause: every cause such a connection can end with.
	Closed     map[string]uint64 `json:"closed"`
	PipesInUse int64             `json:"pipes_in_use"` // splice pipes its connections hold now

	// ConnectP50 and ConnectP99 are estimated from ConnectBuckets with
	// Quantile, in seconds; 0 before the first connect.
	ConnectP50 float64 `json:"connect_p50_seconds"`
	ConnectP99 float64 `json:"connect_p99_seconds"`

	// ConnectBuckets, ConnectCount and ConnectSum are the connect-time
	// histogram in Prometheus form: cumulative counts by ascending finite
	// upper bound; ConnectCount includes connects above the last bound.
	ConnectBuckets []Bucket `json:"connect_buckets"`
	ConnectCount   uint64   `json:"connect_count"`
	ConnectSum     float64  `json:"connect_sum_seconds"`

	// Rates are as FrontendStats.Rates, for this backend.
	Rates *Rates `json:"rates,omitempty"`
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64 `json:"le"`    // seconds, inclusive
	Count      uint64  `json:"count"` // observations at or below UpperBound
}

// HealthStats is a backend's health as its checker last saw it.
type HealthStats struct {
	// Checked is false when the frontend tracks no health at all (check
	// "none" and passive_fall 0); the other fields then keep their zero
	// values except Up, which is true. With check "none" and passive_fall
	// set, health is passive only: the fields say what passive detection
	// last did.
	Checked bool `json:"checked"`
	// Check is the frontend's health.check; "none" with Checked set means
	// passive detection only, which sends no probe.
	Check        string    `json:"check,omitempty"`
	Up           bool      `json:"up"`
	LastOK       bool      `json:"last_ok"`      // result of the latest probe
	LastMessage  string    `json:"last_message"` // why the latest probe failed, or its summary
	LastDuration float64   `json:"last_duration_seconds"`
	LastCheck    time.Time `json:"last_check,omitzero"`
	// LastChange is the latest up/down transition, or when the backend
	// was added if it has had none.
	LastChange time.Time `json:"last_change,omitzero"`
	Successes  int       `json:"successes"` // consecutive, towards rise
	Failures   int       `json:"failures"`  // consecutive, towards fall
	// PassiveFailures counts the consecutive failures the data plane saw
	// since the last success, towards passive_fall.
	PassiveFailures int `json:"passive_failures"`

	// ChecksPassed and ChecksFailed count active probes by outcome;
	// CheckBuckets, CheckCount and CheckSum are the histogram of their
	// durations in Prometheus form (as ConnectBuckets).
	ChecksPassed uint64   `json:"checks_passed"`
	ChecksFailed uint64   `json:"checks_failed"`
	CheckBuckets []Bucket `json:"check_buckets,omitempty"`
	CheckCount   uint64   `json:"check_count"`
	CheckSum     float64  `json:"check_sum_seconds"`
	// TransitionsUp and TransitionsDown count the verdict's flips.
	TransitionsUp   uint64 `json:"transitions_up"`
	TransitionsDown uint64 `json:"transitions_down"`
	// Probes counts what probe_when_idle_only and keep-alive save; nil
	// where the frontend sends no probe (check "none", or not checked).
	// The probes run are ChecksPassed + ChecksFailed.
	Probes *ProbeStats `json:"probes,omitempty"`
}

// ProbeStats counts what a backend's active health probes saved since it
// joined its frontend; reloads that keep the backend keep counting.
type ProbeStats struct {
	// Skipped counts the probe times probe_when_idle_only let pass
	// because the backend's traffic had proved it since the previous one.
	Skipped uint64 `json:"skipped"`
	// Connections counts the connections the probes opened (UDP:
	// sockets); with http keep-alive, well below the probes run.
	Connections uint64 `json:"connections"`
}

// Conn is one live client connection.
type Conn struct {
	ID       uint64 `json:"id"`
	Frontend string `json:"frontend"`
	Client   string `json:"client"`
	// Via is the proxy that sent the client's address in a PROXY header
	// (accept_proxy); empty when the client connected directly.
	Via     string `json:"via,omitempty"`
	Backend string `json:"backend"` // backend name, empty while connecting
	// State is where the connection is: proxy_header (reading the
	// client's PROXY header), connecting, queued, starved
	// (waiting for a free fd), relaying, or closing (a socket failed and
	// the other peer's last bytes are being delivered); "flow" for UDP.
	State    string  `json:"state"`
	Age      float64 `json:"age_seconds"`
	BytesIn  uint64  `json:"bytes_in"`
	BytesOut uint64  `json:"bytes_out"`
}
